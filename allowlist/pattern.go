package allowlist

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Pattern is a normalised domain pattern: either exactly one host name, or
// (Wildcard) a name together with every name below it.
//
// Name is always lower-case ASCII (IDN labels are A-labels), without a
// trailing dot and without the "*." prefix.
type Pattern struct {
	Name     string
	Wildcard bool
}

// String returns the pattern in its published form: "host.example.org" or
// "*.example.org".
func (p Pattern) String() string {
	if p.Wildcard {
		return "*." + p.Name
	}
	return p.Name
}

// Covers reports whether the pattern allows the normalised host name.
func (p Pattern) Covers(name string) bool {
	if name == p.Name {
		return true
	}
	return p.Wildcard && len(name) > len(p.Name) && strings.HasSuffix(name, p.Name) && name[len(name)-len(p.Name)-1] == '.'
}

// Limits from RFC 1035 §2.3.4, in the presentation form without the final dot.
const (
	maxNameOctets  = 253
	maxLabelOctets = 63
)

// profile converts user input to A-labels following UTS #46 non-transitional
// processing: it maps case and full-width forms, rejects code points that
// are not allowed in host names (STD3: underscores, spaces, symbols),
// checks hyphen placement, joiners, and the bidi rule, and validates
// existing A-labels (an invalid "xn--" label is refused).
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.VerifyDNSLength(false), // lengths are checked below with clearer messages
)

// display turns the pattern into something safe to echo in an error message.
func display(s string) string {
	const max = 80
	q := []rune{}
	for _, r := range s {
		if len(q) >= max {
			q = append(q, '…')
			break
		}
		if unicode.IsPrint(r) && r != utf8.RuneError {
			q = append(q, r)
		} else {
			q = append(q, '?')
		}
	}
	return string(q)
}

func patternError(msg string) *Error {
	return &Error{Code: EINVALID, Message: msg}
}

// ParsePattern normalises and validates a domain pattern as the contract
// says: lower-case, IDN to A-labels, one trailing dot dropped; refused are
// names that are not host names, names over 253 octets or with labels over
// 63, IP literals, "*" alone, a wildcard anywhere but a whole first label,
// labels mixing Latin with Cyrillic or Greek (homographs), and anything
// that is, or is a wildcard over, a public suffix. Errors are EINVALID.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, patternError("domain is required")
	}
	if !utf8.ValidString(s) {
		return Pattern{}, patternError("domain is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return Pattern{}, patternError("domain contains spaces, control or invisible characters")
		}
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/:@?#[]") {
		if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
			return Pattern{}, patternError("IP literals are not supported, give a host name")
		}
		return Pattern{}, patternError("give a host name such as meet.example.org, not a URL, port or address")
	}
	rest, wildcard := strings.CutPrefix(s, "*.")
	if s == "*" || s == "*." {
		return Pattern{}, patternError("a wildcard must be over a name below a public suffix, such as *.example.org")
	}
	if strings.ContainsAny(rest, "*?") {
		return Pattern{}, patternError("a wildcard is only allowed as the whole first label, as in *.example.org")
	}
	rest = strings.TrimSuffix(rest, ".")
	if rest == "" {
		return Pattern{}, patternError("domain is empty")
	}
	if _, err := netip.ParseAddr(rest); err == nil {
		return Pattern{}, patternError("IP literals are not supported, give a host name")
	}
	// Empty labels are checked before IDNA, which would otherwise report
	// them in less helpful words.
	for _, l := range strings.Split(rest, ".") {
		if l == "" {
			return Pattern{}, patternError("domain has an empty label (two dots in a row, or a leading dot)")
		}
	}
	name := rest
	if !plainASCII(rest) {
		if err := checkMixedScript(rest); err != nil {
			return Pattern{}, err
		}
		var err error
		name, err = profile.ToASCII(rest)
		if err != nil {
			return Pattern{}, patternError("not a valid host name: " + display(rest) + " (letters, digits and inner hyphens only; internationalised names must be valid)")
		}
		// Mapping can itself join scripts: the compatibility character ㎂
		// becomes "μa", Greek and Latin in one label. Check what will be
		// published, not only what was typed.
		if err := checkMixedScript(name); err != nil {
			return Pattern{}, err
		}
	}
	// Mapping may have produced new dots (full-width stops) or emptied labels.
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return Pattern{}, patternError("domain has an empty label")
		}
		if len(l) > maxLabelOctets {
			return Pattern{}, patternError("a label is longer than 63 octets")
		}
	}
	if len(name) > maxNameOctets || (wildcard && len(name)+2 > maxNameOctets) {
		return Pattern{}, patternError("domain is longer than 253 octets")
	}
	suffix, _ := publicsuffix.PublicSuffix(name)
	if wildcard && (len(labels) < 2 || suffix == name) {
		return Pattern{}, patternError("wildcard too broad: " + name + " is a public suffix")
	}
	if len(labels) < 2 {
		return Pattern{}, patternError("a single label is not a host name on the internet; give a full name such as meet.example.org")
	}
	if isNumeric(labels[len(labels)-1]) {
		return Pattern{}, patternError("IP literals are not supported, give a host name")
	}
	if suffix == name {
		return Pattern{}, patternError(name + " is a public suffix, not a site")
	}
	return Pattern{Name: name, Wildcard: wildcard}, nil
}

// mustParsePattern is ParsePattern for tests and literals; it panics on error.
func mustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// plainASCII reports whether name is already in the form IDNA would give
// it: lower-case letters, digits and inner hyphens, with no A-label (which
// would need its punycode checked) and no "--" in the third and fourth
// places. Such names skip the IDNA profile, which matters when a resolver
// verifies a list of a million entries. FuzzParsePattern checks that both
// paths agree.
func plainASCII(name string) bool {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			c := name[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		l := name[start:i]
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' || (len(l) >= 4 && l[2] == '-' && l[3] == '-') {
			return false
		}
		start = i + 1
	}
	return true
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// confusable scripts: a label mixing any two of these is a classic homograph
// ("аpple" with a Cyrillic а). Mixing, say, Han and Hiragana is normal and
// allowed.
var confusableScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek}

func checkMixedScript(name string) error {
	for _, label := range strings.Split(name, ".") {
		if strings.HasPrefix(strings.ToLower(label), "xn--") {
			if u, err := idna.Punycode.ToUnicode(label); err == nil {
				label = u
			}
		}
		seen := -1
		for _, r := range label {
			if r < utf8.RuneSelf && !unicode.IsLetter(r) {
				continue
			}
			for i, t := range confusableScripts {
				if unicode.Is(t, r) {
					if seen >= 0 && seen != i {
						return patternError("label " + display(label) + " mixes scripts (a possible look-alike of another name)")
					}
					seen = i
				}
			}
		}
	}
	return nil
}
