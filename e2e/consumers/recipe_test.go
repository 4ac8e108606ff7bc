package consumers

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/allowlist/list"

	"github.com/cross-gov/allowlist/e2e/realproc"
)

// TestVerifyRecipe runs the jq and openssl recipe of docs/formats.md, as
// the page prints it, on a signed list and on tampered copies.
func TestVerifyRecipe(t *testing.T) {
	realproc.Need(t, "jq")
	realproc.Need(t, "openssl")
	doc := readFile(t, "../../docs/formats.md")
	_, rest, ok := strings.Cut(doc, "<!-- verify-recipe -->\n```\n")
	recipe, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/formats.md has no verify-recipe block")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(pub)
	// Unsorted on purpose: the recipe must sort as the registry does.
	_, body := allowlist.NewList("dept-a", 12, time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC), entries)
	sig := list.Sign(priv, body)
	verify := func(body []byte, sig string) (string, error) {
		dir := t.TempDir()
		writeFile(t, dir, "list.json", string(body))
		cmd := exec.Command("bash", "-c", "set -eu\n"+recipe)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LIST=list.json", "SIG="+sig, "KEY="+key)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(body, sig); err != nil || !strings.Contains(out, "sha256 OK") || !strings.Contains(out, "Signature Verified Successfully") {
		t.Fatalf("a good list failed the recipe: %v\n%s", err, out)
	}
	empty, emptyBody := allowlist.NewList("common", 0, time.Unix(0, 0), nil)
	if out, err := verify(emptyBody, list.Sign(priv, emptyBody)); err != nil || !strings.Contains(out, "sha256 OK") {
		t.Fatalf("the empty list %s failed the recipe: %v\n%s", empty.SHA256, err, out)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	for name, c := range map[string]struct {
		body []byte
		sig  string
		want string
	}{
		"entry changed, sha256 kept": {bytes.Replace(body, []byte(`"category":"wiki"`), []byte(`"category":"other"`), 1), sig, "sha256 MISMATCH"},
		"entry and sha256 changed":   {reHash(t, bytes.Replace(body, []byte(`"zoom.us","site":"zoom-web"`), []byte(`"zoom.us","site":"zoom-evil"`), 1)), sig, "Signature Verification Failure"},
		"version changed":            {bytes.Replace(body, []byte(`"version":12`), []byte(`"version":13`), 1), sig, "Signature Verification Failure"},
		"another key's signature":    {body, list.Sign(otherPriv, body), "Signature Verification Failure"},
	} {
		if out, err := verify(c.body, c.sig); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: the recipe said %v\n%s", name, err, out)
		}
	}
}

// reHash rewrites a body's sha256 field to match its (changed) entries.
func reHash(t *testing.T, body []byte) []byte {
	t.Helper()
	_, entries, ok := list.Split(body)
	if !ok {
		t.Fatal("not a list body")
	}
	var parsed []allowlist.Entry
	if err := json.Unmarshal(entries, &parsed); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(body, []byte(`"sha256":"`)) + len(`"sha256":"`)
	out := append([]byte(nil), body...)
	copy(out[i:i+64], list.EntriesSHA256(parsed))
	return out
}
