package consumers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// askChromium starts Debian's Chromium through chromedriver with the file
// as its one managed policy (/etc/chromium/policies/managed), and loads
// http://NAME:PORT/ for each name, every name resolving to the origin.
// The policy directory is a tmpfs mounted in a private mount namespace
// of the browser alone (unshare), so the machine's own /etc/chromium and
// any other browser running are left as they are.
func askChromium(t *testing.T, e *env, file string) func(string) (verdict, string) {
	driver := realproc.Need(t, "chromedriver")
	chromium := realproc.Need(t, "chromium")
	unshare := realproc.Need(t, "unshare")
	if _, err := os.Stat("/etc/chromium"); err != nil {
		if err := os.MkdirAll("/etc/chromium", 0o755); err != nil {
			t.Fatalf("no /etc/chromium to mount the policy on: %v", err)
		}
	}
	wrapper := writeFile(t, e.dir, "chromium-with-policy", fmt.Sprintf(`#!/bin/sh
exec %s --mount --propagation private /bin/sh -c 'mount -t tmpfs tmpfs /etc/chromium && mkdir -p /etc/chromium/policies/managed && cp "$0" /etc/chromium/policies/managed/allowlist.json && exec "$@"' %q %q "$@"
`, unshare, file, chromium))
	os.Chmod(wrapper, 0o755)
	port := realproc.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := start(t, e.dir, driver, fmt.Sprintf("--port=%d", port))
	p.waitFor(t, "chromedriver", func() error {
		_, err := webdriver("GET", base+"/status", nil)
		return err
	})
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{"binary": wrapper, "args": []string{
			"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--no-proxy-server", "--host-resolver-rules=MAP * 127.0.0.1", "--user-data-dir=" + e.dir + "/profile"}},
	}}}
	res, err := webdriver("POST", base+"/session", caps)
	if err != nil {
		t.Fatalf("chromedriver session: %v", err)
	}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	json.Unmarshal(res, &session)
	if session.SessionID == "" {
		t.Fatalf("chromedriver session: %s", res)
	}
	sess := base + "/session/" + session.SessionID
	t.Cleanup(func() { webdriver("DELETE", sess, nil) })
	return func(name string) (verdict, string) {
		_, navErr := webdriver("POST", sess+"/url", map[string]string{"url": fmt.Sprintf("http://%s:%d/", name, e.origin)})
		src, err := webdriver("GET", sess+"/source", nil)
		page := string(src)
		if navErr != nil {
			page += " " + navErr.Error()
		}
		switch {
		case err != nil:
			return "error", err.Error()
		case strings.Contains(page, "ERR_BLOCKED_BY_ADMINISTRATOR"), strings.Contains(page, "Your organization doesn’t allow you to view this site"):
			return denied, "blocked by the administrator's policy"
		case strings.Contains(page, "origin-ok"):
			return allowed, "loaded"
		}
		return "error", tail(page, 300)
	}
}

// webdriver makes one W3C WebDriver call and returns its value.
func webdriver(method, url string, body any) (json.RawMessage, error) {
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		return out.Value, fmt.Errorf("%s %s: %s %s", method, url, res.Status, out.Value)
	}
	return out.Value, nil
}
