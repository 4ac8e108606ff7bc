package web_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// TestProposeIsOneTransaction: proposing on the page is one change, the
// site with the owner's approval or nothing. With the approval made to
// fail in the database (a trigger refuses every new decision, as a
// failure between the two halves would), the page says there is a
// problem and leaves no site, no audit entry and no new list version;
// without it, the site is proposed and approved at once.
func TestProposeIsOneTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	signIn(t, e, c)
	raw, err := sql.Open("sqlite3", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_decisions BEFORE INSERT ON signoffs BEGIN SELECT RAISE(ABORT, 'decisions refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	audit := len(mustAudit(t, e))
	before, err := e.db.FindVersion(ctx, "dept-b", allowlist.Latest)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"name": {"Jitsi"}, "id": {"jitsi"}, "category": {"video-conferencing"}, "domains": {"meet.jit.si"},
		"owner_name": {"Jitsi team"}, "tls_inspection": {"allow"}, "proxy": {"proxy"}}
	propose := func() (int, string) {
		form.Set("_csrf", formToken(t, c, e.url+"/owner/propose"))
		resp, err := c.PostForm(e.url+"/owner/propose", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := propose(); code != http.StatusInternalServerError || !strings.Contains(body, "Try again later") {
		t.Fatalf("proposal with decisions refused: %d\n%s", code, body)
	}
	if _, err := e.db.FindSite(ctx, "jitsi"); allowlist.ErrorCode(err) != allowlist.ENOTFOUND {
		t.Fatalf("the proposal's first half stayed without its approval: %v", err)
	}
	if n := len(mustAudit(t, e)); n != audit {
		t.Errorf("%d audit entries after a failed proposal, had %d", n, audit)
	}
	if v, _ := e.db.FindVersion(ctx, "dept-b", allowlist.Latest); v.Version != before.Version {
		t.Errorf("dept-b moved to %d after a failed proposal", v.Version)
	}
	if _, err := raw.Exec(`DROP TRIGGER refuse_decisions`); err != nil {
		t.Fatal(err)
	}
	if code, body := propose(); code != http.StatusOK || !strings.Contains(body, "You proposed Jitsi and approved it for Department dept-b.") {
		t.Fatalf("proposal: %d\n%s", code, body)
	}
	site, err := e.db.FindSite(ctx, "jitsi")
	if err != nil || site.ProposedBy != "dept-b" || len(site.Signoffs) != 1 || site.Signoffs[0].Department != "dept-b" || site.Signoffs[0].Decision != allowlist.DecisionApprove {
		t.Fatalf("stored %+v %v", site, err)
	}
}

func mustAudit(t *testing.T, e *env) []allowlist.AuditEntry {
	t.Helper()
	a, err := e.db.FindAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
