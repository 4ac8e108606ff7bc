package allowlist

import "testing"

func TestPickTool(t *testing.T) {
	sites := []Site{
		{ID: "microsoft-teams", Name: "Microsoft Teams", Status: StatusApproved},
		{ID: "zoom", Name: "Zoom", Status: StatusProposed},
		{ID: "zoom-old", Name: "Zoom Classic", Status: StatusWithdrawn},
		{ID: "google-meet", Name: "Google Meet", Status: StatusApproved},
		{ID: "jitsi-meet", Name: "Jitsi Meet", Status: StatusApproved},
	}
	for _, c := range []struct{ q, want, code string }{
		{"Microsoft Teams", "microsoft-teams", ""},
		{"microsoft teams", "microsoft-teams", ""},
		{"MICROSOFT-TEAMS", "microsoft-teams", ""},
		{"teams", "microsoft-teams", ""},
		{"zoom", "zoom", ""},            // exact beats the withdrawn partial
		{"Zoom Classic", "", ENOTFOUND}, // withdrawn
		{"meet", "", EINVALID},          // two candidates
		{"Jitsi", "jitsi-meet", ""},
		{"nothing like it", "", ENOTFOUND},
	} {
		s, err := PickTool(sites, c.q)
		if ErrorCode(err) != c.code && !(c.code == "" && err == nil) {
			t.Errorf("%q: %v, want %s", c.q, err, c.code)
			continue
		}
		if s.ID != c.want {
			t.Errorf("%q: picked %q, want %q", c.q, s.ID, c.want)
		}
	}
}

// TestToolHost: a tool named by staff is checked at the address people
// use, its home page, when its domains cover it; else at the domain that
// shares words with its name; else at its first domain.
func TestToolHost(t *testing.T) {
	for _, c := range []struct {
		name, homepage string
		domains        []string
		want           string
	}{
		{"Microsoft Teams", "https://teams.microsoft.com/", []string{"*.lync.com", "*.teams.microsoft.com", "teams.microsoft.com"}, "teams.microsoft.com"},
		{"Microsoft Teams", "https://www.microsoft.com/microsoft-teams", []string{"*.lync.com", "*.skype.com", "*.teams.cdn.office.net", "*.teams.microsoft.com"}, "teams.microsoft.com"},
		{"Webex", "https://www.webex.com", []string{"*.wbx2.com", "*.webex.com"}, "www.webex.com"},
		{"Wiki", "https://evil.example.net", []string{"*.wiki.example.org"}, "wiki.example.org"},
		{"Jitsi Meet", "", []string{"meet.jit.si"}, "meet.jit.si"},
		{"Google Docs", "https://elsewhere.example", []string{"*.googleusercontent.com", "docs.google.com"}, "docs.google.com"},
		{"A B", "", []string{"*.a.example", "b.example"}, "a.example"}, // words under 3 letters do not count
		{"Nothing", "", nil, ""},
	} {
		if got := ToolHost(Site{Name: c.name, Homepage: c.homepage, Domains: c.domains}); got != c.want {
			t.Errorf("%s %s %v: %s, want %s", c.name, c.homepage, c.domains, got, c.want)
		}
	}
	if got := ToolHost(Site{Name: "Zoom", Domains: []string{"*.zoom.us", "*.zoomgov.com"}, Published: []string{"*.zoomgov.com"}}); got != "zoomgov.com" {
		t.Errorf("published domains first: %s", got)
	}
}
