package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cross-gov/allowlist/allowlist"
)

// TestCheckYourRequest: a request sent from the page gets a reference,
// whose status page shows progress and the owners' answer, never an
// e-mail; the signed-in owner answers it on the owners' page.
func TestCheckYourRequest(t *testing.T) {
	e := newEnv(t)
	jar, _ := cookiejar.New(nil)
	staff := &http.Client{Jar: jar}
	_, body := get(t, staff, e.url+"/request?tool=Miro")
	csrf := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(body)
	resp, err := staff.PostForm(e.url+"/request", url.Values{"_csrf": {csrf[1]}, "tool": {"Miro"}, "url": {"miro.com"}, "reason": {"workshops"},
		"department": {"dept-b"}, "email": {"staff.member@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b := string(raw)
	ref := regexp.MustCompile(`id="reference">(req_[a-z0-9]+)<`).FindStringSubmatch(b)
	if resp.StatusCode != http.StatusCreated || ref == nil {
		t.Fatalf("request page: %d\n%s", resp.StatusCode, b)
	}
	code, page := get(t, http.DefaultClient, e.url+"/requests/"+ref[1])
	if code != 200 || !strings.Contains(page, `id="status">received<`) || strings.Contains(page, "staff.member@example.org") {
		t.Fatalf("status page: %d\n%s", code, page)
	}
	if code, _ := get(t, http.DefaultClient, e.url+"/requests/req_nosuchreference"); code != 404 {
		t.Errorf("unknown reference: %d", code)
	}
	nofollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, _ = nofollow.Get(e.url + "/requests?reference=" + ref[1])
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/requests/"+ref[1] {
		t.Errorf("lookup: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The owner of dept-b declines it with a reason on the owners' page.
	ojar, _ := cookiejar.New(nil)
	owner := &http.Client{Jar: ojar}
	signIn(t, e, owner)
	_, op := get(t, owner, e.url+"/owner/waiting")
	if !strings.Contains(op, "miro.com") || !strings.Contains(op, "staff.member@example.org") {
		t.Fatalf("owners' page lacks the request:\n%s", op)
	}
	rs, _ := e.db.FindRequests(context.Background(), "dept-b")
	var id string
	for _, r := range rs {
		if r.Tool == "Miro" {
			id = strconv.FormatInt(r.ID, 10)
		}
	}
	csrf = regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindStringSubmatch(op)
	resp, err = owner.PostForm(e.url+"/owner/requests/answer", url.Values{"_csrf": {csrf[1]}, "id": {id}, "status": {"declined"}, "answer": {"We already offer Mural for workshops."}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, page = get(t, http.DefaultClient, e.url+"/requests/"+ref[1])
	if !strings.Contains(page, `id="status">declined<`) || !strings.Contains(page, "We already offer Mural") {
		t.Fatalf("after the answer:\n%s", page)
	}
	r, _ := e.db.FindRequestByReference(context.Background(), ref[1])
	if r.Status != allowlist.RequestDeclined {
		t.Fatalf("stored %+v", r)
	}
}
