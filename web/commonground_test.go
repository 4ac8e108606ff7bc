package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCommonGroundPage asks the page without a browser: the form's
// repeated checkboxes are sent to the one stable address, the answer
// escapes user text and shows no contact, and mistakes are 422 with the
// field named.
func TestCommonGroundPage(t *testing.T) {
	e := newEnv(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(e.url + "/common-ground?departments=dept-b&departments=DEPT-A&departments=dept-b&category=")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != "/common-ground?departments=dept-b,dept-a" {
		t.Errorf("form answer: %d to %q", resp.StatusCode, got)
	}
	code, body := get(t, http.DefaultClient, e.url+"/common-ground?departments=dept-b,dept-a")
	if code != 200 || !strings.Contains(body, `data-tool="evil"`) || !strings.Contains(body, "You can all use it") {
		t.Errorf("answer: %d\n%s", code, body)
	}
	if rawMarkup.MatchString(body) {
		t.Errorf("user text rendered as markup: %s", rawMarkup.FindString(body))
	}
	for _, secret := range []string{"@example.org", "Owner dept-a"} {
		if strings.Contains(body, secret) {
			t.Errorf("the answer shows %q", secret)
		}
	}
	if !strings.Contains(body, e.url+"/common-ground?departments=dept-b,dept-a") {
		t.Error("no link to the answer")
	}
	for _, c := range []struct{ path, want string }{
		{"/common-ground?category=wiki", `href="#departments"`},
		{"/common-ground?departments=dept-a,%3Cscript%3E", "Select organisations from the list"},
		{"/common-ground?departments=dept-a&category=games", `href="#category"`},
	} {
		code, body := get(t, http.DefaultClient, e.url+c.path)
		if code != 422 || !strings.Contains(body, c.want) || rawMarkup.MatchString(body) || strings.Contains(body, "<script>") {
			t.Errorf("%s: %d, want 422 with %q", c.path, code, c.want)
		}
	}
	if code, body := get(t, http.DefaultClient, e.url+"/common-ground"); code != 200 || strings.Contains(body, "The answer") {
		t.Errorf("empty form: %d", code)
	}
}
