package allowlist

import (
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	label64 := strings.Repeat("a", 64)
	// 4 labels of 63 plus dots = 255; trim to build names of exact lengths.
	name253 := strings.Repeat("a", 61) + "." + label63 + "." + label63 + "." + label63[:61] + ".org" // 61+1+63+1+63+1+61+4 = 255? adjusted below
	name253 = name253[len(name253)-253:]
	if name253[0] == '.' {
		t.Fatal("bad fixture")
	}
	name254 := "b" + name253

	tests := []struct {
		in      string
		want    string // normalised form; empty means an error is expected
		errPart string // a piece of the expected error message
	}{
		// Accepted, and how they are normalised.
		{"example.org", "example.org", ""},
		{"meet.example.org", "meet.example.org", ""},
		{"*.example.org", "*.example.org", ""},
		{"EXAMPLE.Org", "example.org", ""},
		{"Meet.Example.ORG", "meet.example.org", ""},
		{"*.EXAMPLE.org", "*.example.org", ""},
		{"example.org.", "example.org", ""},
		{"*.example.org.", "*.example.org", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"BÜCHER.example", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"*.bücher.example", "*.xn--bcher-kva.example", ""},
		{"münchen.de", "xn--mnchen-3ya.de", ""},
		{"example。gov。uk", "example.gov.uk", ""}, // ideographic full stops (UTS #46)
		{"ｅｘａｍｐｌｅ.org", "example.org", ""},       // full-width letters
		{"example.gov.uk", "example.gov.uk", ""},
		{"*.example.gov.uk", "*.example.gov.uk", ""},
		{"a-b.example.org", "a-b.example.org", ""},
		{"1password.example", "1password.example", ""},
		{label63 + ".example.org", label63 + ".example.org", ""},
		{name253, name253, ""},
		{"zoom.us", "zoom.us", ""},
		{"*.zoom.us", "*.zoom.us", ""},
		{"straße.example", "xn--strae-oqa.example", ""}, // non-transitional: ß kept

		// Refused.
		{"", "", "required"},
		{"*", "", "wildcard"},
		{"*.", "", "wildcard"},
		{"com", "", "single label"},
		{"localhost", "", "single label"},
		{"co.uk", "", "public suffix"},
		{"gov.uk", "", "public suffix"},
		{"*.com", "", "wildcard too broad"},
		{"*.gov.uk", "", "wildcard too broad"},
		{"*.co.uk", "", "wildcard too broad"},
		{"*.uk", "", "wildcard too broad"},
		{"foo.*.example.org", "", "first label"},
		{"*foo.example.org", "", "first label"},
		{"**.example.org", "", "first label"},
		{"*.*.example.org", "", "first label"},
		{"?.example.org", "", "URL"},
		{"example.org..", "", "empty label"},
		{".example.org", "", "empty label"},
		{"a..b.example.org", "", "empty label"},
		{name254, "", "253"},
		{"*." + name253, "", "253"},
		{label64 + ".example.org", "", "63"},
		{"192.0.2.10", "", "IP literal"},
		{"[2001:db8::1]", "", "IP literal"},
		{"2001:db8::1", "", "IP literal"},
		{"10.0.0.0/8", "", "URL"},
		{"1.2.3.4.5", "", "IP literal"},
		{"exa_mple.example.org", "", "not a valid host name"},
		{"_dmarc.example.org", "", "not a valid host name"},
		{"exa mple.example.org", "", "spaces"},
		{" example.org", "", "spaces"},
		{"example.org\n", "", "spaces"},
		{"exam\u200bple.org", "", "invisible"},
		{"exam\u202eple.org", "", "invisible"},
		{"-example.org", "", "not a valid host name"},
		{"example-.org", "", "not a valid host name"},
		{"https://example.org/path", "", "not a URL"},
		{"example.org:443", "", "not a URL"},
		{"user@example.org", "", "not a URL"},
		{"xn--zz.example", "", "not a valid host name"},
		{"xn--.example", "", ""},
		{"\u0430pple.com", "", "mixes scripts"},   // Cyrillic а + Latin
		{"xn--pple-43d.com", "", "mixes scripts"}, // the same, as an A-label
		{"x.\u3382.org", "", "mixes scripts"},     // ㎂ maps to Greek μ + Latin a
		{"x.example.org'; DROP TABLE sites;--", "", ""},
		{"\xff.example.org", "", "UTF-8"},
		{"exa\x00mple.org", "", "invisible"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePattern(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParsePattern(%q) = %q, want an error", tt.in, got)
				}
				if ErrorCode(err) != EINVALID {
					t.Errorf("code = %q, want %q", ErrorCode(err), EINVALID)
				}
				if tt.errPart != "" && !strings.Contains(err.Error(), tt.errPart) {
					t.Errorf("error %q does not mention %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tt.in, err)
			}
			if got.String() != tt.want {
				t.Errorf("ParsePattern(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if len(tests) < 40 {
		t.Fatalf("only %d cases", len(tests))
	}
}

func TestPatternCovers(t *testing.T) {
	w := mustParsePattern("*.example.org")
	e := mustParsePattern("meet.example.org")
	for _, tt := range []struct {
		p    Pattern
		name string
		want bool
	}{
		{w, "example.org", true},
		{w, "a.example.org", true},
		{w, "a.b.example.org", true},
		{w, "badexample.org", false},
		{w, "example.org.evil.net", false},
		{e, "meet.example.org", true},
		{e, "a.meet.example.org", false},
		{e, "example.org", false},
	} {
		if got := tt.p.Covers(tt.name); got != tt.want {
			t.Errorf("%s.Covers(%q) = %v, want %v", tt.p, tt.name, got, tt.want)
		}
	}
}

// FuzzParsePattern proves that normalising never panics and is idempotent:
// whatever it accepts, it accepts again unchanged.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"example.org", "*.EXAMPLE.org.", "bücher.example", "xn--bcher-kva.example", "a..b", "*", "*.co.uk", "example。gov。uk", "\u0430pple.com", "1.2.3.4", "0。㎂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The ASCII fast path must give what the IDNA profile gives.
		if rest := strings.TrimPrefix(s, "*."); plainASCII(rest) {
			if viaIDNA, err := profile.ToASCII(rest); err != nil || viaIDNA != rest {
				t.Fatalf("plainASCII(%q) but IDNA gives %q, %v", rest, viaIDNA, err)
			}
		}
		p, err := ParsePattern(s)
		// The check a resolver runs on each list entry agrees with it.
		if name, wild, ok := normalPattern(s); ok != (err == nil && p.String() == s) || ok && (Pattern{name, wild}) != p {
			t.Fatalf("normalPattern(%q) = %q, %v, %v; ParsePattern gives %q, %v", s, name, wild, ok, p, err)
		}
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("ParsePattern(%q) error code %q", s, ErrorCode(err))
			}
			return
		}
		again, err := ParsePattern(p.String())
		if err != nil {
			t.Fatalf("ParsePattern(%q) = %q, which is then refused: %v", s, p, err)
		}
		if again != p {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, p, again)
		}
		if len(p.Name) > maxNameOctets || strings.ToLower(p.Name) != p.Name {
			t.Fatalf("bad normal form %q", p.Name)
		}
	})
}
