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
