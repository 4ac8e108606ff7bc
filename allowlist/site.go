package allowlist

import (
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Roles a token can carry.
const (
	RoleAdmin  = "admin"  // runs the registry
	RoleOwner  = "owner"  // a filtering owner, bound to one department
	RoleReader = "reader" // a proxy or resolver pulling lists
)

// Site statuses.
const (
	StatusProposed  = "proposed"
	StatusApproved  = "approved"
	StatusSuspended = "suspended"
	StatusWithdrawn = "withdrawn"
)

// Sign-off decisions.
const (
	DecisionApprove = "approve"
	DecisionObject  = "object"
)

// ScopeCommon is the scope every department shares.
const ScopeCommon = "common"

// Categories are the kinds of collaboration tool the registry lists.
var Categories = []string{"video-conferencing", "document-editing", "wiki", "file-storage", "project-management", "messaging", "other"}

// DepartmentKinds are the kinds of organisation the registry knows.
var DepartmentKinds = []string{"ministerial-department", "non-ministerial-department", "arms-length-body", "local-authority", "devolved-administration", "other"}

var (
	departmentID = regexp.MustCompile(`^[a-z0-9-]{2,32}$`)
	siteID       = regexp.MustCompile(`^[a-z0-9-]{2,64}$`)
)

// ValidDepartmentID reports whether id is a well-formed department slug
// that does not collide with the reserved scope name "common".
func ValidDepartmentID(id string) bool { return departmentID.MatchString(id) && id != ScopeCommon }

// ValidSiteID reports whether id is a well-formed site slug.
func ValidSiteID(id string) bool { return siteID.MatchString(id) }

// Department is an organisation whose filtering owners sign off sites.
type Department struct {
	ID        string    `json:"id" yaml:"id"`
	Name      string    `json:"name" yaml:"name"`
	Kind      string    `json:"kind" yaml:"kind"`
	CreatedAt time.Time `json:"created_at" yaml:"-"`
}

// Contact is an entry in the filtering owners' directory. Contacts are
// never shown to anonymous callers or readers.
type Contact struct {
	ID         int64  `json:"id" yaml:"-"`
	Department string `json:"department" yaml:"-"`
	Name       string `json:"name" yaml:"name"`
	Email      string `json:"email" yaml:"email"`
	Role       string `json:"role" yaml:"role"`
}

// Owner is the person or team responsible for a site. Email is a contact.
type Owner struct {
	Name  string `json:"name" yaml:"name"`
	Email string `json:"email,omitempty" yaml:"email"`
}

// Signoff is one department's decision on a site. Revision is the site
// revision (its set of domains) the decision was made on.
type Signoff struct {
	Department string    `json:"department" yaml:"department"`
	Decision   string    `json:"decision" yaml:"decision"`
	By         string    `json:"by,omitempty" yaml:"by"`
	Comment    string    `json:"comment" yaml:"comment,omitempty"`
	At         time.Time `json:"at" yaml:"at"`
	Revision   int       `json:"revision" yaml:"revision"`
}

// Site is a collaboration tool with the domain patterns it needs.
//
// Domains is the current revision's set; History holds every revision's
// set, so the sign-off rules can tell which domains each decision covered.
type Site struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Category    string    `json:"category"`
	Description string    `json:"description"`
	Homepage    string    `json:"homepage"`
	Domains     []string  `json:"domains"`
	Networks    []Network `json:"networks"`
	Handling    Handling  `json:"handling"`
	Notes       string    `json:"notes"`
	Owner       Owner     `json:"owner"`
	Status      string    `json:"status"`
	ProposedBy  string    `json:"proposed_by"`
	Revision    int       `json:"revision"`
	Published   []string  `json:"published_domains"`
	// PublishedEndpoints is what common lists of Networks and Handling.
	PublishedEndpoints Endpoints `json:"published_endpoints"`
	Signoffs           []Signoff `json:"signoffs"`
	Reason             string    `json:"suspended_reason,omitempty"`
	// Consensus is the revision that joined common by lazy consensus
	// (0: none). It counts while no department objects.
	Consensus int       `json:"consensus_revision,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	History map[int][]string `json:"-"`
	// EndpointHistory holds the networks and handling of each revision
	// that has any; a revision missing from it has none (the defaults).
	EndpointHistory map[int]Endpoints `json:"-"`
}

// ValidCategory reports whether c is one of Categories.
func ValidCategory(c string) bool { return contains(Categories, c) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// NormalizeDomains parses each pattern, and returns them normalised, sorted
// and without duplicates, or an EINVALID error naming each bad entry as
// field "domains[i]".
func NormalizeDomains(in []string) ([]string, error) {
	var fields []FieldError
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for i, d := range in {
		p, err := ParsePattern(d)
		if err != nil {
			fields = append(fields, FieldError{Field: fieldIndex("domains", i), Message: ErrorMessage(err)})
			continue
		}
		if s := p.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(in) == 0 {
		fields = append(fields, FieldError{Field: "domains", Message: "at least one domain pattern is required"})
	}
	if len(fields) > 0 {
		return nil, Invalid(fields...)
	}
	sort.Strings(out)
	return out, nil
}

func fieldIndex(name string, i int) string {
	return name + "[" + strconv.Itoa(i) + "]"
}

// PickTool finds the tool a person means by name among sites (as a
// catalogue search returned them): a site whose name or id is the text,
// case-insensitively; failing that, the only one whose name contains it.
// Withdrawn sites are never picked. ENOTFOUND, or EINVALID naming the
// candidates when the text could mean several.
func PickTool(sites []Site, name string) (Site, error) {
	var partial []Site
	lower := strings.ToLower(strings.TrimSpace(name))
	for _, s := range sites {
		if s.Status == StatusWithdrawn {
			continue
		}
		if strings.ToLower(s.Name) == lower || s.ID == lower {
			return s, nil
		}
		if strings.Contains(strings.ToLower(s.Name), lower) {
			partial = append(partial, s)
		}
	}
	switch len(partial) {
	case 1:
		return partial[0], nil
	case 0:
		return Site{}, Errorf(ENOTFOUND, "no tool called %q in the catalogue", name)
	}
	names := make([]string, len(partial))
	for i, s := range partial {
		names[i] = s.Name
	}
	return Site{}, Errorf(EINVALID, "%q could be any of: %s", name, strings.Join(names, ", "))
}

// ToolHost is the name to check when staff name a tool: its home page's
// host when one of its domains covers it (the address people use), else
// the domain that shares the most words with the tool's name (Microsoft
// Teams: teams.microsoft.com, not lync.com), else its first domain. The
// domains are the published ones when the site has any. "" when it has no
// domains.
func ToolHost(s Site) string {
	domains := s.Published
	if len(domains) == 0 {
		domains = s.Domains
	}
	if len(domains) == 0 {
		return ""
	}
	if u, err := url.Parse(s.Homepage); err == nil && u.Hostname() != "" {
		host := strings.ToLower(u.Hostname())
		for _, d := range domains {
			if (Pattern{Name: strings.TrimPrefix(d, "*."), Wildcard: strings.HasPrefix(d, "*.")}).Covers(host) {
				return host
			}
		}
	}
	words := strings.FieldsFunc(strings.ToLower(s.Name), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	best, score := domains[0], 0
	for _, d := range domains {
		n := 0
		for _, label := range strings.Split(strings.TrimPrefix(d, "*."), ".") {
			if len(label) >= 3 && slices.Contains(words, label) {
				n++
			}
		}
		if n > score {
			best, score = d, n
		}
	}
	return strings.TrimPrefix(best, "*.")
}
