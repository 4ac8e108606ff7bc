package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// The administrator's pages: departments and their contacts, tokens
// (created and shown once, revoked), suspension and reinstatement with a
// reason, and the audit log with its verification.

type adminView struct {
	Departments []adminDepartment
	Tokens      []adminToken
	Sites       []siteRow
	Kinds       []string
	Roles       []string
	NewToken    string // shown once, just after it is created
	NewTokenFor string
	Form        map[string]string
	Section     string // the form whose errors are shown
}

type adminDepartment struct {
	allowlist.Department
	Contacts []allowlist.Contact
}

type adminToken struct {
	allowlist.Token
	DepartmentName string
	State          string
}

func (p *Pages) adminPage(c echo.Context, status int, v *adminView, errs []allowlist.FieldError) error {
	ctx := c.Request().Context()
	for _, d := range p.departmentList(c) {
		cs, err := p.svc.Departments.FindContacts(ctx, d.ID)
		if err != nil {
			return p.fail(c, err)
		}
		v.Departments = append(v.Departments, adminDepartment{Department: d, Contacts: cs})
	}
	tokens, err := p.svc.Tokens.FindTokens(ctx)
	if err != nil {
		return p.fail(c, err)
	}
	now := time.Now()
	for _, t := range tokens {
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked"
		case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			state = "expired"
		}
		v.Tokens = append(v.Tokens, adminToken{Token: t, DepartmentName: p.deptName(c, t.Department), State: state})
	}
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{})
	if err != nil {
		return p.fail(c, err)
	}
	for _, s := range sites {
		if s.Status != allowlist.StatusWithdrawn {
			v.Sites = append(v.Sites, p.row(c, s, ""))
		}
	}
	v.Kinds = allowlist.DepartmentKinds
	v.Roles = []string{allowlist.RoleOwner, allowlist.RoleReader, allowlist.RoleAdmin}
	if v.Form == nil {
		v.Form = map[string]string{}
	}
	return p.render(c, status, "admin", &page{Title: "Administration", Errors: errs, View: v})
}

func (p *Pages) handleAdmin(c echo.Context) error {
	v := &adminView{}
	v.NewToken, v.NewTokenFor = p.sessions.takeShown(sessionID(c))
	return p.adminPage(c, http.StatusOK, v, nil)
}

// adminDone finishes a form: on success a message and back to the page,
// on a fixable error the page again with the fields marked.
func (p *Pages) adminDone(c echo.Context, err error, section, done string, form map[string]string) error {
	if err == nil {
		p.setFlash(c, done)
		return c.Redirect(http.StatusSeeOther, "/admin#"+section)
	}
	var ae *allowlist.Error
	if errors.As(err, &ae) && (ae.Code == allowlist.EINVALID || ae.Code == allowlist.ECONFLICT || ae.Code == allowlist.ENOTFOUND) {
		fields := []allowlist.FieldError{}
		for _, f := range ae.Fields {
			id := section + "-" + f.Field
			if section == "sites" {
				id = section // each site has its own reason field: the summary goes to the table's heading
			}
			fields = append(fields, allowlist.FieldError{Field: id, Message: capital(f.Field) + " " + f.Message})
		}
		if len(fields) == 0 {
			fields = []allowlist.FieldError{{Field: section, Message: ae.Message}}
		}
		return p.adminPage(c, statusOf(allowlist.EINVALID), &adminView{Form: form, Section: section}, fields)
	}
	return p.fail(c, err)
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func formOf(c echo.Context, keys ...string) map[string]string {
	f := map[string]string{}
	for _, k := range keys {
		f[k] = strings.TrimSpace(c.FormValue(k))
	}
	return f
}

func (p *Pages) handleAdminDepartment(c echo.Context) error {
	f := formOf(c, "id", "name", "kind")
	_, err := p.svc.Departments.CreateDepartment(c.Request().Context(), p.actor(c), allowlist.Department{ID: f["id"], Name: f["name"], Kind: f["kind"]})
	return p.adminDone(c, err, "departments", "Added "+f["name"]+".", f)
}

func (p *Pages) handleAdminContact(c echo.Context) error {
	f := formOf(c, "department", "name", "email", "role")
	_, err := p.svc.Departments.CreateContact(c.Request().Context(), p.actor(c), allowlist.Contact{Department: f["department"], Name: f["name"], Email: f["email"], Role: f["role"]})
	return p.adminDone(c, err, "contacts", "Added "+f["name"]+" to "+p.deptName(c, f["department"])+"'s contacts.", f)
}

func (p *Pages) handleAdminToken(c echo.Context) error {
	ctx := c.Request().Context()
	f := formOf(c, "role", "department", "name", "days")
	t := allowlist.Token{Role: f["role"], Department: f["department"], Name: f["name"]}
	if t.Role == allowlist.RoleAdmin {
		t.Department = ""
	}
	if f["days"] != "" {
		days, err := strconv.Atoi(f["days"])
		if err != nil || days < 1 || days > 3650 {
			return p.adminPage(c, statusOf(allowlist.EINVALID), &adminView{Form: f, Section: "tokens"},
				[]allowlist.FieldError{{Field: "tokens-days", Message: "Enter a number of days from 1 to 3650, or leave it empty for no expiry"}})
		}
		e := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		t.ExpiresAt = &e
	}
	t, secret, err := p.svc.Tokens.CreateToken(ctx, p.actor(c), t)
	if err != nil {
		return p.adminDone(c, err, "tokens", "", f)
	}
	// The token is shown on the next page only (no-store), then forgotten;
	// redirecting means a reload does not create another.
	p.sessions.showOnce(sessionID(c), secret, p.tokenWho(c, t))
	return c.Redirect(http.StatusSeeOther, "/admin#tokens")
}

// tokenWho says whose a token is: its name, role and department.
func (p *Pages) tokenWho(c echo.Context, t allowlist.Token) string {
	what := t.Name + " (" + t.Role
	if t.Department != "" {
		what += ", " + p.deptName(c, t.Department)
	}
	return what + ")"
}

// kindTitles are the kinds of organisation in words.
var kindTitles = map[string]string{
	"ministerial-department": "Ministerial department", "non-ministerial-department": "Non-ministerial department",
	"arms-length-body": "Arm's-length body", "local-authority": "Local authority", "devolved-administration": "Devolved administration", "other": "Other",
}

// kindTitle is a kind of organisation in words; a kind without a title
// reads as its identifier with spaces.
func kindTitle(kind string) string {
	if t, ok := kindTitles[kind]; ok {
		return t
	}
	return capital(strings.ReplaceAll(kind, "-", " "))
}

func (p *Pages) handleAdminRevoke(c echo.Context) error {
	id, err := strconv.ParseInt(c.FormValue("id"), 10, 64)
	if err != nil {
		return p.fail(c, allowlist.Errorf(allowlist.ENOTFOUND, "no such token"))
	}
	ctx := c.Request().Context()
	tokens, err := p.svc.Tokens.FindTokens(ctx)
	if err != nil {
		return p.fail(c, err)
	}
	what := "token " + strconv.FormatInt(id, 10)
	for _, t := range tokens {
		if t.ID == id {
			what = p.tokenWho(c, t)
		}
	}
	err = p.svc.Tokens.RevokeToken(ctx, p.actor(c), id)
	return p.adminDone(c, err, "tokens", "Revoked the token for "+what+". It stops working at once, on the API and the pages.", nil)
}

func (p *Pages) handleAdminSuspend(c echo.Context) error {
	f := formOf(c, "site", "reason")
	s, err := p.svc.Sites.SuspendSite(c.Request().Context(), p.actor(c), f["site"], f["reason"])
	return p.adminDone(c, err, "sites", "Suspended "+s.Name+": it leaves every list in the next version.", f)
}

func (p *Pages) handleAdminReinstate(c echo.Context) error {
	s, err := p.svc.Sites.ReinstateSite(c.Request().Context(), p.actor(c), c.FormValue("site"), strings.TrimSpace(c.FormValue("reason")))
	return p.adminDone(c, err, "sites", "Reinstated "+s.Name+".", nil)
}

// auditShown is how many audit entries the audit page shows.
const auditShown = 200

type auditView struct {
	Entries  []allowlist.AuditEntry
	Intact   bool
	Checked  int64
	BrokenAt int64
}

func (p *Pages) handleAdminAudit(c echo.Context) error {
	ctx := c.Request().Context()
	seq, ok, err := p.svc.Audit.VerifyAudit(ctx)
	if err != nil {
		return p.fail(c, err)
	}
	v := &auditView{Intact: ok}
	if ok {
		v.Checked = seq
	} else {
		v.BrokenAt = seq
	}
	// The latest auditShown entries, newest first; or, when the chain is
	// broken, those around the break.
	after := max(0, v.Checked-auditShown)
	if !ok {
		after = max(0, v.BrokenAt-auditShown/2)
	}
	entries, err := p.svc.Audit.FindAudit(ctx, after, auditShown)
	if err != nil {
		return p.fail(c, err)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		e.Detail = readableJSON(e.Detail)
		if d := []rune(e.Detail); len(d) > auditDetailShown {
			e.Detail = string(d[:auditDetailShown]) + "…"
		}
		v.Entries = append(v.Entries, e)
	}
	return p.render(c, http.StatusOK, "audit", &page{Title: "Audit log", View: v})
}

// readableJSON is the stored JSON s without the escapes that keep JSON
// safe to put in HTML as it is (\u003c, \u003e, \u0026): the page escapes
// it itself, and a reason then reads as it was typed. Everything else, key
// order and numbers included, stays as stored. An escaped backslash is
// matched first, so that "\\u003c" (a backslash, then the letters) stays.
var readableJSON = strings.NewReplacer(`\\`, `\\`, `\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace

// auditDetailShown is how much of an entry's detail (a reason, what
// changed) the audit page shows; GET /v1/audit has all of it.
const auditDetailShown = 200

// inputView is one text field of an administration form.
type inputView struct {
	ID, Name, Label, Hint, Value, Error string
}

// adminInput builds a field of the form named section from the page.
func adminInput(pg *page, section, name, label, hint string) inputView {
	v, _ := pg.View.(*adminView)
	in := inputView{ID: section + "-" + name, Name: name, Label: label, Hint: hint, Error: pg.FieldError(section + "-" + name)}
	if v != nil && v.Section == section {
		in.Value = v.Form[name]
	}
	return in
}

func (p *Pages) handleAccessibility(c echo.Context) error {
	return p.render(c, http.StatusOK, "accessibility", &page{Title: "Accessibility statement"})
}
