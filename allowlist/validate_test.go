package allowlist

import "testing"

// TestFreeTextRefusesHiddenCharacters: every free-text field refuses
// control characters and bidirectional overrides with a field error;
// multi-line fields keep their line breaks and tabs.
func TestFreeTextRefusesHiddenCharacters(t *testing.T) {
	site := func(f func(*SiteInput)) error {
		in := SiteInput{ID: "wiki", Name: "Wiki", Category: "wiki", Domains: []string{"wiki.example.org"}, Owner: Owner{Name: "Team"}}
		f(&in)
		_, err := NormalizeSite(in)
		return err
	}
	bad := map[string]string{
		"newline": "a\nb", "tab": "a\tb", "carriage return": "a\rb", "NUL": "a\x00b", "escape": "a\x1b[31mb",
		"DEL": "a\x7fb", "C1 NEL": "a\u0085b", "C1 CSI": "a\u009bb", "RLO": "evil\u202egpj.exe", "LRE": "a\u202ab",
		"PDF": "a\u202cb", "RLI": "a\u2067b", "PDI": "a\u2069b", "line separator": "a\u2028b", "invalid UTF-8": "a\xffb",
		"RLM": "Ev\u200fe", "LRM": "Zo\u200eom", "ALM": "a\u061cb", "zero-width space": "Zo\u200bom", "BOM": "a\ufeffb", "tag": "a\U000e0041b",
	}
	multiLineOK := map[string]bool{"newline": true, "tab": true, "carriage return": true}
	fields := map[string]func(string) error{
		"name":        func(v string) error { return site(func(in *SiteInput) { in.Name = v }) },
		"owner.name":  func(v string) error { return site(func(in *SiteInput) { in.Owner.Name = v }) },
		"description": func(v string) error { return site(func(in *SiteInput) { in.Description = v }) },
		"homepage":    func(v string) error { return site(func(in *SiteInput) { in.Homepage = "https://example.org/" + v }) },
		"department":  func(v string) error { return ValidateDepartment(Department{ID: "dept", Name: v, Kind: "other"}) },
		"contact":     func(v string) error { return ValidateContact(Contact{Name: v, Email: "a@example.org"}) },
		"role":        func(v string) error { return ValidateContact(Contact{Name: "A", Email: "a@example.org", Role: v}) },
		"comment":     func(v string) error { return ValidateSignoff(DecisionApprove, v) },
		"reason":      func(v string) error { return ValidateReason(v) },
		"tool":        func(v string) error { return ValidateRequest(Request{Tool: v, Reason: "r", Department: "dept"}) },
		"request":     func(v string) error { return ValidateRequest(Request{Tool: "t", Reason: v, Department: "dept"}) },
		"token":       func(v string) error { return ValidateToken(Token{Role: RoleReader, Name: v}) },
		"email":       func(v string) error { return ValidateContact(Contact{Name: "A", Email: "ev" + v + "e@example.org"}) },
		"owner email": func(v string) error { return site(func(in *SiteInput) { in.Owner.Email = "a" + v + "@example.org" }) },
	}
	multiLine := map[string]bool{"description": true, "comment": true, "reason": true, "request": true}
	for field, check := range fields {
		plain := "Plain text, with ünïcödé, عربي and می\u200cخواهم"
		if field == "email" || field == "owner email" {
			plain = "" // ev.e@example.org below
		}
		if err := check(plain); err != nil {
			t.Errorf("%s: plain text refused: %v", field, err)
		}
		for name, v := range bad {
			err := check(v)
			if multiLine[field] && multiLineOK[name] {
				if err != nil {
					t.Errorf("%s: %s refused in multi-line text: %v", field, name, err)
				}
				continue
			}
			if ErrorCode(err) != EINVALID {
				t.Errorf("%s with %s: %v, want EINVALID", field, name, err)
				continue
			}
			if e := err.(*Error); len(e.Fields) != 1 || e.Fields[0].Message == "" {
				t.Errorf("%s with %s: want one field error, got %+v", field, name, e.Fields)
			}
		}
	}
}

// TestValidateTokenDepartment: owners need a department, readers may have
// one (a resolver sending usage reports), admins may not.
func TestValidateTokenDepartment(t *testing.T) {
	for _, tt := range []struct {
		role, dept string
		ok         bool
	}{
		{RoleOwner, "hmrc", true}, {RoleOwner, "", false}, {RoleOwner, "Bad Id", false},
		{RoleReader, "", true}, {RoleReader, "hmrc", true}, {RoleReader, "common", false}, {RoleReader, "Bad Id", false},
		{RoleAdmin, "", true}, {RoleAdmin, "hmrc", false},
	} {
		err := ValidateToken(Token{Role: tt.role, Department: tt.dept, Name: "n"})
		if (err == nil) != tt.ok {
			t.Errorf("%s token of %q: %v, want ok=%v", tt.role, tt.dept, err, tt.ok)
		}
		if err != nil && err.(*Error).Fields[0].Field != "department" {
			t.Errorf("%s token of %q: %v names the wrong field", tt.role, tt.dept, err)
		}
	}
}
