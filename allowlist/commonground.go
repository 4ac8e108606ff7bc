package allowlist

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Why a department's list does not carry a site (GroundCell.Reason).
const (
	// ReasonNotProposed: the site's proposal was withdrawn; nobody is
	// asking for it any more.
	ReasonNotProposed = "not-proposed"
	// ReasonAwaiting: proposed, and this department has not decided; its
	// approval alone would put the site on its list.
	ReasonAwaiting = "awaiting-decision"
	// ReasonObjected: this department objected.
	ReasonObjected = "objected"
	// ReasonSuspended: the site is suspended and on no list.
	ReasonSuspended = "suspended"
	// ReasonNotPublished: this department approved, but the list version
	// read does not carry the site yet (a version published by another
	// registry process that this one has not read).
	ReasonNotPublished = "not-published"
)

// GroundList is the published list a department's column is read from:
// the department's own scope, or common for a department whose list is
// common's (see GroundScope).
type GroundList struct {
	Department Department
	Scope      string
	Version    int64
	Entries    []Entry
}

// GroundColumn says which list, at which version, a department's column
// was read from.
type GroundColumn struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Scope   string `json:"scope"`
	Version int64  `json:"version"`
}

// GroundCell is one department's answer for one site: allowed, with the
// patterns its list carries and the list's version; or why not.
type GroundCell struct {
	Department string   `json:"department"`
	Allowed    bool     `json:"allowed"`
	Version    int64    `json:"version"`
	Patterns   []string `json:"patterns,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	// Comment is the department's objection, or the suspension reason.
	Comment string `json:"comment,omitempty"`
	// At is when the department objected.
	At *time.Time `json:"at,omitempty"`
}

// GroundSite is a site with one cell per department, in the order the
// departments were asked for. Contacts never appear in it.
type GroundSite struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Homepage string `json:"homepage,omitempty"`
	Status   string `json:"status"`
	// AllowedBy is how many of the departments' lists carry the site.
	AllowedBy int `json:"allowed_by"`
	// Approvals is how many departments approved the site (any, not only
	// those asked about); Quorum is how many put it on common.
	Approvals int `json:"approvals"`
	Quorum    int `json:"quorum"`
	// WaitingFor is, for a site one decision away, the department whose
	// approval would make it allowed for all.
	WaitingFor  string       `json:"waiting_for,omitempty"`
	Departments []GroundCell `json:"departments"`
}

// Ground answers "which tool can we all use?" for a set of departments.
type Ground struct {
	Category    string         `json:"category,omitempty"`
	Departments []GroundColumn `json:"departments"`
	// AllowedForAll: every department's list carries the site.
	AllowedForAll []GroundSite `json:"allowed_for_all"`
	// OneDecisionAway: every list but one carries it, and that one
	// department has not decided yet.
	OneDecisionAway []GroundSite `json:"one_decision_away"`
	// Others: the rest, what stands in the way named per department.
	Others []GroundSite `json:"others"`
}

// GroundScope returns the scope a department's column is read from, given
// the content hashes (sha256) of its published list and of common's: a
// department whose list is common's, entry for entry (it made no decision
// that changes it), runs no list of its own and is read from common;
// otherwise from its own scope.
func GroundScope(department, ownSHA256, commonSHA256 string) string {
	if ownSHA256 == commonSHA256 {
		return ScopeCommon
	}
	return department
}

// CommonGround judges each site of category ("" for all) against each
// department's published list: a site is allowed for a department when
// that list carries it, with the patterns it carries (so a site whose
// widened domains wait for a quorum counts with its published ones).
// Where a list does not carry a site, the site and the department's
// decision say why. Sites allowed for all come first, then those one
// decision away, then the rest, each ordered by how many departments
// allow them, then by name.
func CommonGround(sites []Site, lists []GroundList, category string, quorum int) Ground {
	g := Ground{Category: category, Departments: make([]GroundColumn, len(lists)),
		AllowedForAll: []GroundSite{}, OneDecisionAway: []GroundSite{}, Others: []GroundSite{}}
	wanted := map[string]bool{}
	for _, s := range sites {
		if category == "" || s.Category == category {
			wanted[s.ID] = true
		}
	}
	// Per list, the patterns it carries for each site asked about; columns
	// read from the same list (common, usually) share one index.
	carried := make([]map[string][]string, len(lists))
	indexed := map[GroundColumn]map[string][]string{}
	for i, l := range lists {
		g.Departments[i] = GroundColumn{ID: l.Department.ID, Name: l.Department.Name, Scope: l.Scope, Version: l.Version}
		key := GroundColumn{Scope: l.Scope, Version: l.Version}
		if carried[i] = indexed[key]; carried[i] != nil {
			continue
		}
		carried[i] = map[string][]string{}
		for _, e := range l.Entries {
			if wanted[e.Site] {
				carried[i][e.Site] = append(carried[i][e.Site], e.Pattern)
			}
		}
		indexed[key] = carried[i]
	}
	for _, s := range sites {
		if !wanted[s.ID] {
			continue
		}
		gs := GroundSite{ID: s.ID, Name: s.Name, Category: s.Category, Homepage: s.Homepage, Status: s.Status,
			Quorum: quorum, Departments: make([]GroundCell, len(lists))}
		for _, so := range firstSignoffs(s) {
			if so.Decision == DecisionApprove {
				gs.Approvals++
			}
		}
		var waiting []string
		for i, l := range lists {
			cell := GroundCell{Department: l.Department.ID, Version: l.Version}
			if patterns, ok := carried[i][s.ID]; ok {
				cell.Allowed, cell.Patterns = true, patterns
				gs.AllowedBy++
			} else {
				cell.Reason, cell.Comment, cell.At = whyNot(s, l.Department.ID)
				if cell.Reason == ReasonAwaiting {
					waiting = append(waiting, l.Department.ID)
				}
			}
			gs.Departments[i] = cell
		}
		switch missing := len(lists) - gs.AllowedBy; {
		case missing == 0:
			g.AllowedForAll = append(g.AllowedForAll, gs)
		case missing == 1 && len(waiting) == 1:
			gs.WaitingFor = waiting[0]
			g.OneDecisionAway = append(g.OneDecisionAway, gs)
		default:
			g.Others = append(g.Others, gs)
		}
	}
	for _, group := range [][]GroundSite{g.AllowedForAll, g.OneDecisionAway, g.Others} {
		slices.SortStableFunc(group, func(a, b GroundSite) int {
			if c := cmp.Compare(b.AllowedBy, a.AllowedBy); c != 0 {
				return c
			}
			if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return g
}

// whyNot says why a department's list does not carry a site: the site is
// suspended or withdrawn, or the department objected, or has not decided.
// A department's first sign-off is the one that counts, as in Scopes.
func whyNot(s Site, department string) (reason, comment string, at *time.Time) {
	switch s.Status {
	case StatusSuspended:
		return ReasonSuspended, s.Reason, nil
	case StatusWithdrawn:
		return ReasonNotProposed, "", nil
	}
	for _, so := range firstSignoffs(s) {
		if so.Department != department {
			continue
		}
		if so.Decision == DecisionObject {
			if !so.At.IsZero() {
				when := so.At.UTC()
				at = &when
			}
			return ReasonObjected, so.Comment, at
		}
		return ReasonNotPublished, "", nil
	}
	return ReasonAwaiting, "", nil
}

// firstSignoffs returns each department's first sign-off on s.
func firstSignoffs(s Site) []Signoff {
	out := make([]Signoff, 0, len(s.Signoffs))
	for k, so := range s.Signoffs {
		if !slices.ContainsFunc(s.Signoffs[:k], func(o Signoff) bool { return o.Department == so.Department }) {
			out = append(out, so)
		}
	}
	return out
}
