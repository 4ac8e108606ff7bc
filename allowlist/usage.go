package allowlist

import (
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// Usage reports: what a department's resolver saw in one period, sent to
// POST /v1/usage. A report holds counts only: no client address, no query
// time finer than the period, no name below the registrable domain for
// names the list does not allow. docs/privacy.md says what each field is
// and why none of them identifies a person.

// Limits of one usage report.
const (
	// UsageMaxPeriod is the longest period one report may cover.
	UsageMaxPeriod = 24 * time.Hour
	// UsageMaxSkew is how far in the future a period may end (clocks differ).
	UsageMaxSkew = 5 * time.Minute
	// UsageMaxEntries bounds the entries of one report (the most hit first).
	UsageMaxEntries = 50000
	// UsageMaxRefused bounds the refused domains of one report (the most asked first).
	UsageMaxRefused = 1000
	// UsageMaxRefusedPerDay bounds the refused domains the registry keeps
	// for one department and one day: once a department's reports of a
	// day have brought this many, further domains that day are left out
	// (and counted in the receipt's ignored_refused).
	UsageMaxRefusedPerDay = 5000
	// UsageMinK is the smallest distinct-client threshold a resolver may use.
	UsageMinK = 2
	// UsagePublicDepartments is how many departments must have reported a
	// refused domain before anyone may see it: one department's resolver
	// token could otherwise put any name it likes in the public totals.
	UsagePublicDepartments = 2
	// UsageDefaultK is the registry's own threshold when none is configured.
	UsageDefaultK = 5
	// UsageHitsStep is what hits and queries are rounded up to a multiple of.
	UsageHitsStep = 10
	// UsageClientsStep is what clients are rounded down to a multiple of.
	UsageClientsStep = 5
	// UsageMaxCount bounds one entry's hits and one refused domain's
	// queries in a report: a million million look-ups, far above what any
	// resolver answers in 24 hours, and far below what overflows a sum.
	UsageMaxCount = 1_000_000_000_000
	// UsageMaxClients bounds one refused domain's distinct clients.
	UsageMaxClients = 1_000_000
	// UsageMaxTotal is where the registry's stored counts and their sums
	// saturate: a day's count for one department never grows past it, and
	// no total shown is larger, however many reports arrive.
	UsageMaxTotal = 1_000_000_000_000_000
	// usageMaxFieldErrors bounds the field errors one refusal lists, so that
	// a report of 50,000 bad entries gets a short answer.
	usageMaxFieldErrors = 20
)

// Resolver modes a report may name.
const (
	ModeEnforce = "enforce"
	ModeRoute   = "route"
	ModeMonitor = "monitor"
)

// UsageReport is one period of one department's resolver.
type UsageReport struct {
	// ReportID is 32 lower-case hex characters, random per report: sending
	// the same report again counts it once.
	ReportID    string    `json:"report_id"`
	Department  string    `json:"department"`
	Scope       string    `json:"scope"`
	ListVersion int64     `json:"list_version"`
	Mode        string    `json:"mode"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// K is the resolver's distinct-client threshold for refused domains.
	K       int            `json:"k"`
	Entries []UsageEntry   `json:"entries"`
	Refused []UsageRefused `json:"refused"`
}

// UsageEntry is a list entry hit in the period; Hits is rounded up to a
// multiple of 10.
type UsageEntry struct {
	Pattern string `json:"pattern"`
	Hits    int64  `json:"hits"`
}

// UsageRefused is a registrable domain the department's list does not
// allow, asked for by at least k distinct clients in the period. Queries is
// rounded up to a multiple of 10, Clients down to a multiple of 5.
type UsageRefused struct {
	Domain  string `json:"domain"`
	Queries int64  `json:"queries"`
	Clients int    `json:"clients"`
}

// UsageReceipt is the registry's answer to a report.
type UsageReceipt struct {
	ReportID       string `json:"report_id"`
	Entries        int    `json:"entries"`
	IgnoredEntries int    `json:"ignored_entries"`
	Refused        int    `json:"refused"`
	// IgnoredRefused is how many refused domains were left out: asked by
	// fewer clients than the registry's own threshold, or beyond the
	// UsageMaxRefusedPerDay the department's day may hold.
	IgnoredRefused int `json:"ignored_refused"`
}

// UsageK is the threshold a report is held to: the larger of the
// resolver's and the registry's.
func UsageK(reportK, registryK int) int {
	return max(reportK, registryK, UsageMinK)
}

// Validate checks a report received at now against the registry's own
// threshold registryK (0: UsageDefaultK). It returns EINVALID naming each
// field at fault (at most 20 of them), such as "refused[3].clients".
func (r UsageReport) Validate(now time.Time, registryK int) error {
	if registryK <= 0 {
		registryK = UsageDefaultK
	}
	var c checker
	if !validReportID(r.ReportID) {
		c.add("report_id", "must be 32 lower-case hex characters")
	}
	if !ValidDepartmentID(r.Department) {
		c.add("department", "must be a department id")
	}
	if r.Scope != ScopeCommon && (r.Scope != r.Department || !ValidDepartmentID(r.Scope)) {
		c.add("scope", "must be \"common\" or the report's department")
	}
	if r.ListVersion < 1 {
		c.add("list_version", "must be a published version (1 or more)")
	}
	switch r.Mode {
	case ModeEnforce, ModeRoute, ModeMonitor:
	default:
		c.add("mode", "must be enforce, route or monitor")
	}
	switch {
	case r.PeriodStart.IsZero():
		c.add("period_start", "is required")
	case r.PeriodEnd.IsZero():
		c.add("period_end", "is required")
	case !r.PeriodEnd.After(r.PeriodStart):
		c.add("period_end", "must be after period_start")
	case r.PeriodEnd.Sub(r.PeriodStart) > UsageMaxPeriod:
		c.add("period_end", "a period is at most 24 hours")
	case r.PeriodEnd.After(now.Add(UsageMaxSkew)):
		c.add("period_end", "is in the future")
	}
	if r.K < UsageMinK {
		c.add("k", "must be at least 2")
	}
	// A domain under the report's own k breaks the resolver's promise and
	// refuses the report; one under only the registry's larger usage_k is
	// left out when the report is kept (AboveThreshold), so a resolver
	// set to a smaller k than the registry still delivers the rest.
	k := max(r.K, UsageMinK)

	if len(r.Entries) > UsageMaxEntries {
		c.add("entries", "at most "+itoa(UsageMaxEntries)+" entries per report")
	} else {
		seen := make(map[string]bool, len(r.Entries))
		for i, e := range r.Entries {
			if len(c.fields) >= usageMaxFieldErrors {
				break
			}
			f := "entries[" + itoa(i) + "]"
			if p, err := ParsePattern(e.Pattern); err != nil || p.String() != e.Pattern {
				c.add(f+".pattern", "must be a list entry in list form, such as example.org or *.example.org")
			} else if seen[e.Pattern] {
				c.add(f+".pattern", "appears twice")
			}
			seen[e.Pattern] = true
			c.roundedUp(f+".hits", e.Hits, "hits")
		}
	}

	if len(r.Refused) > UsageMaxRefused {
		c.add("refused", "at most "+itoa(UsageMaxRefused)+" domains per report")
	} else {
		seen := make(map[string]bool, len(r.Refused))
		for i, d := range r.Refused {
			if len(c.fields) >= usageMaxFieldErrors {
				break
			}
			f := "refused[" + itoa(i) + "]"
			if !RegistrableDomain(d.Domain) {
				c.add(f+".domain", "must be a registrable domain in lower-case ASCII, such as example.com")
			} else if seen[d.Domain] {
				c.add(f+".domain", "appears twice")
			}
			seen[d.Domain] = true
			c.roundedUp(f+".queries", d.Queries, "queries")
			switch {
			case d.Clients%UsageClientsStep != 0:
				c.add(f+".clients", "must be a multiple of 5 (clients rounded down)")
			case d.Clients > UsageMaxClients:
				c.add(f+".clients", "must be at most "+itoa(UsageMaxClients))
			case d.Clients < k:
				c.add(f+".clients", "is below the report's own threshold of "+itoa(k)+" distinct clients")
			}
		}
	}
	return c.err()
}

// AboveThreshold returns the report's refused domains that reach the
// threshold UsageK(r.K, registryK), and how many were left out.
func (r UsageReport) AboveThreshold(registryK int) ([]UsageRefused, int) {
	if registryK <= 0 {
		registryK = UsageDefaultK
	}
	k := UsageK(r.K, registryK)
	kept := make([]UsageRefused, 0, len(r.Refused))
	for _, d := range r.Refused {
		if d.Clients >= k {
			kept = append(kept, d)
		}
	}
	return kept, len(r.Refused) - len(kept)
}

// RegistrableDomainOf returns the registrable domain of a DNS name (one
// label below its public suffix: meet.example.co.uk -> example.co.uk), and
// false for a name that has none a usage report may carry. The name may
// be in upper case and end in a dot; the answer is lower-case ASCII with
// A-labels. The suffix must be an ICANN suffix on the public suffix list:
// a name under a private suffix (someone.github.io) counts as the ICANN
// one's (github.io), and a name under a suffix not on the list (foo.corp,
// which the list's default rule would take as a TLD) has none. So has a
// name under a special-use or non-delegated name (RFC 6761 and the like:
// test, invalid, example, localhost, local, onion, internal, alt, arpa
// and home.arpa), a bare suffix, an IP address or a wildcard. Both the
// resolver, counting refused names, and the registry, checking reports,
// use it, so a resolver never sends a domain the registry refuses.
func RegistrableDomainOf(name string) (string, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	p, err := ParsePattern(name)
	if err != nil || p.Wildcard || p.Name != name || !strings.Contains(name, ".") {
		return "", false
	}
	for _, l := range specialUseNames {
		if (Pattern{Name: l, Wildcard: true}).Covers(name) {
			return "", false
		}
	}
	suffix, icann := publicsuffix.PublicSuffix(name)
	if !icann {
		return "", false // a private suffix, or one not on the list
	}
	if len(name) <= len(suffix) {
		return "", false // a bare suffix
	}
	rest := name[:len(name)-len(suffix)-1]
	return rest[strings.LastIndexByte(rest, '.')+1:] + "." + suffix, true
}

// specialUseNames are names with no registrable domain below them for
// usage reports: special-use names (RFC 6761, RFC 7686 onion, RFC 8375
// home.arpa, RFC 9476 alt) and names reserved for private use (internal,
// local for mDNS); arpa holds reverse look-ups only.
var specialUseNames = []string{"test", "invalid", "example", "localhost", "local", "onion", "internal", "alt", "arpa"}

// RegistrableDomain says whether s is its own registrable domain, already
// in its normalised form: RegistrableDomainOf(s) returns s.
func RegistrableDomain(s string) bool {
	d, ok := RegistrableDomainOf(s)
	return ok && d == s
}

func validReportID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// roundedUp checks a count a resolver rounds up to tens: positive, a
// multiple of UsageHitsStep, and at most UsageMaxCount.
func (c *checker) roundedUp(field string, n int64, what string) {
	switch {
	case n < UsageHitsStep || n%UsageHitsStep != 0:
		c.add(field, "must be a positive multiple of 10 ("+what+" rounded up)")
	case n > UsageMaxCount:
		c.add(field, "must be at most "+itoa(UsageMaxCount))
	}
}
