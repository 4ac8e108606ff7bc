package allowlist

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func goodUsageReport(now time.Time) UsageReport {
	return UsageReport{
		ReportID:    "0123456789abcdef0123456789abcdef",
		Department:  "hmrc",
		Scope:       "hmrc",
		ListVersion: 42,
		Mode:        ModeEnforce,
		PeriodStart: now.Add(-15 * time.Minute),
		PeriodEnd:   now,
		K:           5,
		Entries:     []UsageEntry{{Pattern: "*.wiki.example.org", Hits: 1200}, {Pattern: "meet.example.org", Hits: 10}},
		Refused:     []UsageRefused{{Domain: "example.com", Queries: 150, Clients: 10}},
	}
}

// TestUsageReportValidate: each rule of the wire contract refuses a report
// with an EINVALID error naming exactly the field at fault.
func TestUsageReportValidate(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	if err := goodUsageReport(now).Validate(now, 5); err != nil {
		t.Fatalf("good report refused: %v", err)
	}
	tests := []struct {
		name  string
		k     int // registry k; 0 = default
		edit  func(*UsageReport)
		field string // "" = accepted
	}{
		{"scope common", 5, func(r *UsageReport) { r.Scope = ScopeCommon }, ""},
		{"mode monitor", 5, func(r *UsageReport) { r.Mode = ModeMonitor }, ""},
		{"mode route", 5, func(r *UsageReport) { r.Mode = ModeRoute }, ""},
		{"no entries or refused", 5, func(r *UsageReport) { r.Entries, r.Refused = nil, nil }, ""},
		{"period of 24h", 5, func(r *UsageReport) { r.PeriodStart = r.PeriodEnd.Add(-24 * time.Hour) }, ""},
		{"end 4m ahead (clock skew)", 5, func(r *UsageReport) { r.PeriodEnd = now.Add(4 * time.Minute) }, ""},
		{"IDN refused domain as A-label", 5, func(r *UsageReport) { r.Refused[0].Domain = "xn--bcher-kva.de" }, ""},
		{"refused below a private suffix", 5, func(r *UsageReport) { r.Refused[0].Domain = "someone.github.io" }, "refused[0].domain"},
		{"entry hits at the cap", 5, func(r *UsageReport) { r.Entries[0].Hits = UsageMaxCount }, ""},
		{"refused queries and clients at the caps", 5, func(r *UsageReport) { r.Refused[0].Queries, r.Refused[0].Clients = UsageMaxCount, UsageMaxClients }, ""},
		{"default registry k", 0, func(r *UsageReport) { r.Refused[0].Clients = 5 }, ""},

		{"report_id short", 5, func(r *UsageReport) { r.ReportID = "abc" }, "report_id"},
		{"report_id upper case", 5, func(r *UsageReport) { r.ReportID = strings.ToUpper(r.ReportID) }, "report_id"},
		{"report_id not hex", 5, func(r *UsageReport) { r.ReportID = "0123456789abcdef0123456789abcdeg" }, "report_id"},
		{"department missing", 5, func(r *UsageReport) { r.Department, r.Scope = "", ScopeCommon }, "department"},
		{"department common", 5, func(r *UsageReport) { r.Department = ScopeCommon; r.Scope = ScopeCommon }, "department"},
		{"scope of another department", 5, func(r *UsageReport) { r.Scope = "dwp" }, "scope"},
		{"list_version 0", 5, func(r *UsageReport) { r.ListVersion = 0 }, "list_version"},
		{"mode unknown", 5, func(r *UsageReport) { r.Mode = "block" }, "mode"},
		{"period_start missing", 5, func(r *UsageReport) { r.PeriodStart = time.Time{} }, "period_start"},
		{"period_end missing", 5, func(r *UsageReport) { r.PeriodEnd = time.Time{} }, "period_end"},
		{"period_end before start", 5, func(r *UsageReport) { r.PeriodEnd = r.PeriodStart.Add(-time.Second) }, "period_end"},
		{"period_end equal to start", 5, func(r *UsageReport) { r.PeriodEnd = r.PeriodStart }, "period_end"},
		{"period over 24h", 5, func(r *UsageReport) { r.PeriodStart = r.PeriodEnd.Add(-24*time.Hour - time.Second) }, "period_end"},
		{"period_end 6m ahead", 5, func(r *UsageReport) { r.PeriodEnd = now.Add(6 * time.Minute) }, "period_end"},
		{"k 1", 5, func(r *UsageReport) { r.K = 1 }, "k"},
		{"entry pattern not normalised", 5, func(r *UsageReport) { r.Entries[0].Pattern = "*.Wiki.Example.org" }, "entries[0].pattern"},
		{"entry pattern trailing dot", 5, func(r *UsageReport) { r.Entries[1].Pattern = "meet.example.org." }, "entries[1].pattern"},
		{"entry pattern a URL", 5, func(r *UsageReport) { r.Entries[1].Pattern = "https://meet.example.org/" }, "entries[1].pattern"},
		{"entry pattern twice", 5, func(r *UsageReport) { r.Entries[1].Pattern = r.Entries[0].Pattern }, "entries[1].pattern"},
		{"entry hits 0", 5, func(r *UsageReport) { r.Entries[1].Hits = 0 }, "entries[1].hits"},
		{"entry hits not rounded", 5, func(r *UsageReport) { r.Entries[0].Hits = 1201 }, "entries[0].hits"},
		{"entry hits over the cap", 5, func(r *UsageReport) { r.Entries[0].Hits = UsageMaxCount + 10 }, "entries[0].hits"},
		{"entry hits near MaxInt64", 5, func(r *UsageReport) { r.Entries[0].Hits = 9223372036854775790 }, "entries[0].hits"},
		{"refused queries over the cap", 5, func(r *UsageReport) { r.Refused[0].Queries = 6e18 }, "refused[0].queries"},
		{"refused clients over the cap", 5, func(r *UsageReport) { r.Refused[0].Clients = UsageMaxClients + 5 }, "refused[0].clients"},
		{"entry hits negative", 5, func(r *UsageReport) { r.Entries[0].Hits = -10 }, "entries[0].hits"},
		{"refused subdomain", 5, func(r *UsageReport) { r.Refused[0].Domain = "www.example.com" }, "refused[0].domain"},
		{"refused public suffix", 5, func(r *UsageReport) { r.Refused[0].Domain = "co.uk" }, "refused[0].domain"},
		{"refused bare TLD", 5, func(r *UsageReport) { r.Refused[0].Domain = "com" }, "refused[0].domain"},
		{"refused localhost", 5, func(r *UsageReport) { r.Refused[0].Domain = "localhost" }, "refused[0].domain"},
		{"refused arpa", 5, func(r *UsageReport) { r.Refused[0].Domain = "in-addr.arpa" }, "refused[0].domain"},
		{"refused reverse name", 5, func(r *UsageReport) { r.Refused[0].Domain = "10.in-addr.arpa" }, "refused[0].domain"},
		{"refused IP address", 5, func(r *UsageReport) { r.Refused[0].Domain = "192.0.2.1" }, "refused[0].domain"},
		{"refused upper case", 5, func(r *UsageReport) { r.Refused[0].Domain = "Example.com" }, "refused[0].domain"},
		{"refused Unicode", 5, func(r *UsageReport) { r.Refused[0].Domain = "bücher.de" }, "refused[0].domain"},
		{"refused wildcard", 5, func(r *UsageReport) { r.Refused[0].Domain = "*.example.com" }, "refused[0].domain"},
		{"refused twice", 5, func(r *UsageReport) { r.Refused = append(r.Refused, r.Refused[0]) }, "refused[1].domain"},
		{"refused queries 0", 5, func(r *UsageReport) { r.Refused[0].Queries = 0 }, "refused[0].queries"},
		{"refused queries not rounded", 5, func(r *UsageReport) { r.Refused[0].Queries = 151 }, "refused[0].queries"},
		{"refused clients not rounded", 5, func(r *UsageReport) { r.Refused[0].Clients = 6 }, "refused[0].clients"},
		{"refused clients below report k", 5, func(r *UsageReport) { r.K = 15; r.Refused[0].Clients = 10 }, "refused[0].clients"},
		{"refused clients 0", 5, func(r *UsageReport) { r.Refused[0].Clients = 0 }, "refused[0].clients"},
		{"refused clients below k 2 floor", 0, func(r *UsageReport) { r.K = 2; r.Refused[0].Clients = 0 }, "refused[0].clients"},
		{"too many entries", 5, func(r *UsageReport) { r.Entries = make([]UsageEntry, UsageMaxEntries+1) }, "entries"},
		{"too many refused", 5, func(r *UsageReport) { r.Refused = make([]UsageRefused, UsageMaxRefused+1) }, "refused"},
	}
	for _, tt := range tests {
		r := goodUsageReport(now)
		tt.edit(&r)
		err := r.Validate(now, tt.k)
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tt.name, err)
			}
			continue
		}
		if ErrorCode(err) != EINVALID {
			t.Errorf("%s: got %v, want EINVALID", tt.name, err)
			continue
		}
		if f := err.(*Error).Fields; len(f) != 1 || f[0].Field != tt.field {
			t.Errorf("%s: fields %+v, want exactly %q", tt.name, f, tt.field)
		}
	}
}

// TestUsageReportValidateBoundsErrors: a report of thousands of bad items
// gets a short list of field errors, not one per item.
func TestUsageReportValidateBoundsErrors(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	r := goodUsageReport(now)
	r.Entries = make([]UsageEntry, 5000)
	err := r.Validate(now, 5)
	if f := err.(*Error).Fields; len(f) > usageMaxFieldErrors+1 || len(f) < 2 {
		t.Fatalf("%d field errors, want between 2 and %d", len(f), usageMaxFieldErrors+1)
	}
}

// TestUsageReportJSON: the wire names are the contract's, and a report has
// no field that could carry a client address.
func TestUsageReportJSON(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 15, 0, 0, time.UTC)
	b, err := json.Marshal(goodUsageReport(now))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"report_id", "department", "scope", "list_version", "mode", "period_start", "period_end", "k", "entries", "refused"}
	if len(m) != len(want) {
		t.Errorf("report has %d fields, want %d: %s", len(m), len(want), b)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q: %s", k, b)
		}
	}
	if got := string(b); !strings.Contains(got, `"entries":[{"pattern":"*.wiki.example.org","hits":1200}`) ||
		!strings.Contains(got, `"refused":[{"domain":"example.com","queries":150,"clients":10}]`) ||
		!strings.Contains(got, `"period_start":"2026-12-03T10:00:00Z"`) {
		t.Errorf("wire form differs from the contract: %s", got)
	}
	// The contract's receipt, and ignored_refused (the day's cap).
	rc, _ := json.Marshal(UsageReceipt{ReportID: "x", Entries: 1, IgnoredEntries: 2, Refused: 3, IgnoredRefused: 4})
	if string(rc) != `{"report_id":"x","entries":1,"ignored_entries":2,"refused":3,"ignored_refused":4}` {
		t.Errorf("receipt: %s", rc)
	}
}

// TestRegistrableDomainOf: a name's registrable domain under an ICANN
// suffix on the list; none under special-use names, private-use names,
// private suffixes or suffixes the list does not hold (its default rule would take any
// unknown TLD for a real one).
func TestRegistrableDomainOf(t *testing.T) {
	for name, want := range map[string]string{
		"example.com": "example.com", "meet.example.com": "example.com", "Meet.Example.COM.": "example.com",
		"a.b.example.co.uk": "example.co.uk", "someone.github.io": "", "github.io": "", "a.b.ck": "a.b.ck",
		"www.gov.uk": "www.gov.uk", "xn--bcher-kva.de": "xn--bcher-kva.de",
		"foo.internal": "", "foo.local": "", "foo.onion": "", "a.foo.onion": "", "foo.test": "", "foo.invalid": "",
		"foo.example": "", "foo.localhost": "", "localhost": "", "foo.alt": "", "x.home.arpa": "", "10.in-addr.arpa": "",
		"foo.bar-like": "", "foo.corp": "", "foo.lan": "", "com": "", "co.uk": "", "192.0.2.1": "", "*.example.com": "",
		"": "", ".": "", "bücher.de": "", "exa mple.com": "",
	} {
		got, ok := RegistrableDomainOf(name)
		if got != want || ok != (want != "") {
			t.Errorf("RegistrableDomainOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
		if want != "" && !RegistrableDomain(want) {
			t.Errorf("RegistrableDomain(%q) = false", want)
		}
	}
	for _, s := range []string{"meet.example.com", "Example.com", "example.com.", "someone.github.io", "foo.test", "foo.bar-like"} {
		if RegistrableDomain(s) {
			t.Errorf("RegistrableDomain(%q) = true", s)
		}
	}
}

// A domain under only the registry's larger k is left out, not refused.
func TestUsageAboveThreshold(t *testing.T) {
	r := UsageReport{K: 5, Refused: []UsageRefused{{Domain: "a.com", Clients: 15}, {Domain: "b.com", Clients: 10}, {Domain: "c.com", Clients: 5}}}
	if err := r.Validate(time.Now(), 15); err != nil && strings.Contains(err.Error(), "clients") {
		t.Errorf("clients under the registry's k refuse the report: %v", err)
	}
	kept, left := r.AboveThreshold(15)
	if len(kept) != 1 || kept[0].Domain != "a.com" || left != 2 {
		t.Errorf("AboveThreshold(15) = %+v, %d", kept, left)
	}
	if kept, left := r.AboveThreshold(0); len(kept) != 3 || left != 0 {
		t.Errorf("AboveThreshold(default 5) = %+v, %d", kept, left)
	}
}
