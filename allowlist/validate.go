package allowlist

import (
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits for free text, in characters.
const (
	maxName = 200
	maxText = 4000
	// MaxDomainsPerSite bounds one site's patterns.
	MaxDomainsPerSite = 200
)

type checker struct{ fields []FieldError }

func (c *checker) add(field, msg string) { c.fields = append(c.fields, FieldError{field, msg}) }

// text checks free text that may run over several lines (descriptions,
// reasons, comments): tabs and line breaks are allowed, other control
// characters and bidirectional overrides are not.
func (c *checker) text(field, v string, required bool, max int) {
	c.free(field, v, required, max, func(r rune) bool { return r == '\n' || r == '\r' || r == '\t' })
}

// line checks free text shown on one line (names, tool names, roles):
// no control characters at all, not even tabs or line breaks.
func (c *checker) line(field, v string, required bool, max int) {
	c.free(field, v, required, max, func(rune) bool { return false })
}

func (c *checker) free(field, v string, required bool, max int, allowed func(rune) bool) {
	switch {
	case required && strings.TrimSpace(v) == "":
		c.add(field, "is required")
	case !utf8.ValidString(v):
		c.add(field, "is not valid UTF-8")
	case utf8.RuneCountInString(v) > max:
		c.add(field, "is longer than "+itoa(max)+" characters")
	case strings.ContainsFunc(v, func(r rune) bool { return unsafeRune(r) && !allowed(r) }):
		c.add(field, "contains control characters or bidirectional overrides; remove them")
	}
}

// unsafeRune is a character that can hide or disguise text where it is
// shown: C0 and C1 controls, DEL, line and paragraph separators, the
// bidirectional embeddings, overrides and isolates (U+202A-U+202E,
// U+2066-U+2069, as in "Trojan Source", CVE-2021-42574), the invisible
// directional marks (U+200E, U+200F, U+061C), the zero-width space and
// byte-order mark (U+200B, U+FEFF) and the tag characters (U+E0000-U+E007F).
// The zero-width joiner and non-joiner stay allowed: Persian, the Indic
// scripts and emoji need them.
func unsafeRune(r rune) bool {
	switch r {
	case '\u2028', '\u2029', '\u200b', '\u200e', '\u200f', '\u061c', '\ufeff':
		return true
	}
	return unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') ||
		(r >= 0xe0000 && r <= 0xe007f)
}

// UnsafeText says whether s holds a character that can hide or disguise
// text where it is shown (see unsafeRune); for fields checked outside
// this file's validators.
func UnsafeText(s string) bool { return strings.ContainsFunc(s, unsafeRune) }

func (c *checker) email(field, v string, required bool) {
	if v == "" {
		if required {
			c.add(field, "is required")
		}
		return
	}
	if a, err := mail.ParseAddress(v); err != nil || a.Address != v || len(v) > 254 || strings.ContainsFunc(v, unsafeRune) {
		c.add(field, "is not an email address")
	}
}

func (c *checker) url(field, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || !utf8.ValidString(v) || strings.ContainsFunc(v, unsafeRune) || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(v) > 2000 {
		c.add(field, "is not an http(s) URL")
	}
}

func (c *checker) err() error {
	if len(c.fields) == 0 {
		return nil
	}
	return Invalid(c.fields...)
}

func itoa(i int) string { return strconv.Itoa(i) }

// ValidateDepartment checks a new department. EINVALID.
func ValidateDepartment(d Department) error {
	var c checker
	if !ValidDepartmentID(d.ID) {
		c.add("id", "must be 2 to 32 of a-z, 0-9 and -, and not \"common\"")
	}
	c.line("name", d.Name, true, maxName)
	if !contains(DepartmentKinds, d.Kind) {
		c.add("kind", "must be one of "+strings.Join(DepartmentKinds, ", "))
	}
	return c.err()
}

// ValidateContact checks a new contact. EINVALID.
func ValidateContact(ct Contact) error {
	var c checker
	c.line("name", ct.Name, true, maxName)
	c.email("email", ct.Email, true)
	c.line("role", ct.Role, false, maxName)
	return c.err()
}

// NormalizeSite checks a proposal and returns it with its domains
// normalised. EINVALID naming each bad field.
func NormalizeSite(in SiteInput) (SiteInput, error) {
	var c checker
	if !ValidSiteID(in.ID) {
		c.add("id", "must be 2 to 64 of a-z, 0-9 and -")
	}
	c.line("name", in.Name, true, maxName)
	if !ValidCategory(in.Category) {
		c.add("category", "must be one of "+strings.Join(Categories, ", "))
	}
	c.text("description", in.Description, false, maxText)
	c.url("homepage", in.Homepage)
	c.line("owner.name", in.Owner.Name, true, maxName)
	c.email("owner.email", in.Owner.Email, false)
	if len(in.Domains) > MaxDomainsPerSite {
		c.add("domains", "at most "+itoa(MaxDomainsPerSite)+" patterns per site")
	} else if d, err := NormalizeDomains(in.Domains); err != nil {
		c.fields = append(c.fields, err.(*Error).Fields...)
	} else {
		in.Domains = d
	}
	if n, fields := NormalizeNetworks("networks", in.Networks); fields != nil {
		c.fields = append(c.fields, fields...)
	} else {
		in.Networks = n
	}
	if h, fields := NormalizeHandling(in.Handling); fields != nil {
		c.fields = append(c.fields, fields...)
	} else {
		in.Handling = h
	}
	c.text("notes", in.Notes, false, maxText)
	return in, c.err()
}

// ValidateSignoff checks a decision. EINVALID.
func ValidateSignoff(decision, comment string) error {
	var c checker
	if decision != DecisionApprove && decision != DecisionObject {
		c.add("decision", "must be approve or object")
	}
	c.text("comment", comment, false, maxText)
	return c.err()
}

// ValidateReason checks a suspension reason. EINVALID.
func ValidateReason(reason string) error {
	var c checker
	c.text("reason", reason, true, maxText)
	return c.err()
}

// ValidateOptionalReason checks a reason that may be left out. EINVALID.
func ValidateOptionalReason(reason string) error {
	var c checker
	c.text("reason", reason, false, maxText)
	return c.err()
}

// ValidateRequest checks a staff request. EINVALID.
func ValidateRequest(r Request) error {
	var c checker
	c.line("tool", r.Tool, true, maxName)
	c.url("url", r.URL)
	c.text("reason", r.Reason, true, maxText)
	if !ValidDepartmentID(r.Department) {
		c.add("department", "must be a department id")
	}
	c.email("email", r.Email, false)
	return c.err()
}

// ValidateToken checks a new token's role and department. EINVALID.
func ValidateToken(t Token) error {
	var c checker
	switch t.Role {
	case RoleAdmin:
		if t.Department != "" {
			c.add("department", "an admin token belongs to no department")
		}
	case RoleReader:
		// A reader may belong to a department: its resolver then sends
		// that department's usage reports (POST /v1/usage).
		if t.Department != "" && !ValidDepartmentID(t.Department) {
			c.add("department", "must be a department id")
		}
	case RoleOwner:
		if !ValidDepartmentID(t.Department) {
			c.add("department", "an owner token needs a department id")
		}
	default:
		c.add("role", "must be admin, owner or reader")
	}
	c.line("name", t.Name, true, maxName)
	return c.err()
}
