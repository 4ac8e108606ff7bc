package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/labstack/echo/v4"
)

// Usage reports from departments' resolvers (docs/privacy.md): POST
// /v1/usage takes them from a reader token bound to a department; GET
// /v1/departments/{id}/usage shows one department's to its owners and
// admins; GET /v1/usage shows cross-government totals, to anyone only the
// refused domains that reached the k threshold.

// MaxUsageBody is the largest usage report accepted (4 MiB: 50,000
// entries and 1,000 refused domains fit).
const MaxUsageBody = 4 << 20

// maxUsageRange is the longest range of days a usage view covers.
const maxUsageRange = 400

var errNoUsage = allowlist.Errorf(allowlist.ENOTIMPLEMENTED, "this registry's store does not keep usage reports")

func (s *Server) usageStore() (allowlist.UsageStore, error) {
	u, ok := s.reg.(allowlist.UsageStore)
	if !ok {
		return nil, errNoUsage
	}
	return u, nil
}

// UsageK is the registry's distinct-client threshold for refused domains
// (config usage_k, default 5).
func (s *Server) UsageK() int {
	if s.cfg.UsageK > 0 {
		return s.cfg.UsageK
	}
	return allowlist.UsageDefaultK
}

// UsageView answers the GET usage routes. Anyone but an admin asking for
// cross-government totals gets only the refused domains that two
// departments or more reported and whose clients, summed over them, reach
// k (allowlist.PublicFilter), and never how many departments reported
// them.
type UsageView struct {
	Department string                   `json:"department,omitempty"`
	From       string                   `json:"from"`
	To         string                   `json:"to"`
	K          int                      `json:"k"`
	Reports    *int                     `json:"reports,omitempty"`
	Refused    []allowlist.RefusedUsage `json:"refused"`
	Entries    []allowlist.EntryUsage   `json:"entries,omitempty"`
	Days       []allowlist.UsageDay     `json:"days,omitempty"`
}

func (s *Server) handleUsageReport(c echo.Context) error {
	u, err := s.usageStore()
	if err != nil {
		return err
	}
	if wait, ok := s.reports.take(actorOf(c).TokenID); !ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		return allowlist.Errorf(allowlist.ETOOMANY, "too many usage reports from this token; a resolver sends one per period")
	}
	var r allowlist.UsageReport
	if err := decodeLimit(c, &r, MaxUsageBody); err != nil {
		return err
	}
	rc, fresh, err := u.RecordUsage(c.Request().Context(), actorOf(c), r, s.Now(), s.UsageK())
	if err != nil {
		return err
	}
	if fresh {
		return c.JSON(http.StatusAccepted, rc)
	}
	return c.JSON(http.StatusOK, rc)
}

func (s *Server) handleUsage(c echo.Context) error {
	return s.usage(c, "", actorOf(c).Role == allowlist.RoleAdmin)
}

func (s *Server) handleDepartmentUsage(c echo.Context) error {
	return s.usage(c, c.Param("id"), true)
}

func (s *Server) usage(c echo.Context, department string, whole bool) error {
	u, err := s.usageStore()
	if err != nil {
		return err
	}
	f, err := UsageRange(c.QueryParam("from"), c.QueryParam("to"), s.Now())
	if err != nil {
		return err
	}
	f.Department = department
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > allowlist.MaxPage {
			return allowlist.Invalid(allowlist.FieldError{Field: "limit", Message: "must be a number from 1 to " + strconv.Itoa(allowlist.MaxPage)})
		}
		f.Limit = n
	}
	if !whole {
		f = allowlist.PublicFilter(f, s.UsageK())
	}
	sum, err := u.FindUsage(c.Request().Context(), f)
	if err != nil {
		return err
	}
	v := UsageView{Department: department, From: usageDate(f.From), To: usageDate(f.To.AddDate(0, 0, -1)), K: s.UsageK()}
	if whole {
		v.Reports, v.Refused, v.Entries, v.Days = &sum.Reports, sum.Refused, sum.Entries, sum.Days
	} else {
		v.Refused = allowlist.PublicRefused(sum.Refused, v.K)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, v)
}

func usageDate(t time.Time) string { return t.UTC().Format(allowlist.UsageDayLayout) }

// UsageRange reads a range of days, from and to included (YYYY-MM-DD),
// into a filter; by default from the first of now's month to now's day.
// EINVALID naming the field.
func UsageRange(from, to string, now time.Time) (allowlist.UsageFilter, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	f := allowlist.UsageFilter{From: allowlist.MonthStart(now), To: today.AddDate(0, 0, 1)}
	if from != "" {
		t, err := time.Parse(allowlist.UsageDayLayout, from)
		if err != nil {
			return f, allowlist.Invalid(allowlist.FieldError{Field: "from", Message: "must be a date such as 2026-12-01"})
		}
		f.From = t
	}
	if to != "" {
		t, err := time.Parse(allowlist.UsageDayLayout, to)
		if err != nil {
			return f, allowlist.Invalid(allowlist.FieldError{Field: "to", Message: "must be a date such as 2026-12-31"})
		}
		f.To = t.AddDate(0, 0, 1)
	}
	switch {
	case !f.From.Before(f.To):
		return f, allowlist.Invalid(allowlist.FieldError{Field: "to", Message: "must not be before from"})
	case f.To.Sub(f.From) > maxUsageRange*24*time.Hour:
		return f, allowlist.Invalid(allowlist.FieldError{Field: "from", Message: "a range is at most " + strconv.Itoa(maxUsageRange) + " days"})
	}
	return f, nil
}
