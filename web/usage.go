package web

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/labstack/echo/v4"
)

// Usage reports on the pages (docs/privacy.md): the owner's page lists
// what its department's resolvers refused this month, each with a button
// that starts a proposal (or a link to the site already in the registry);
// the catalogue shows each listed site's hits this month, its last hit,
// and flags it for review when no reporting resolver hit it for 90 days;
// the dashboard plots the cross-government daily totals. An owner sees
// only its own department's report; anyone sees only totals.

// trendDays is how many days the dashboard's usage charts cover.
const trendDays = 30

// usageStore is the store's usage reports, if it keeps them.
func (p *Pages) usageStore() (allowlist.UsageStore, bool) {
	u, ok := p.reg.(allowlist.UsageStore)
	return u, ok
}

// usageK is the registry's distinct-client threshold (config usage_k).
func (p *Pages) usageK() int {
	if c, ok := p.check.(interface{ UsageK() int }); ok {
		return c.UsageK()
	}
	return allowlist.UsageDefaultK
}

// ownerUsageView is the owner page's "what staff tried to reach" section.
type ownerUsageView struct {
	CSRF       string
	Since      string
	K, Reports int
	Rows       []refusedRow
}

// refusedRow is a refused domain, with the site that already covers it.
type refusedRow struct {
	allowlist.RefusedUsage
	SiteID, SiteName string
}

// ownerUsage is what department's resolvers refused this month, the most
// asked first (nil when the store keeps no usage).
func (p *Pages) ownerUsage(c echo.Context, department string) *ownerUsageView {
	u, ok := p.usageStore()
	if !ok {
		return nil
	}
	ctx := c.Request().Context()
	f, _ := api.UsageRange("", "", p.now()) // this month so far
	f.Department, f.Limit = department, 20
	sum, err := u.FindUsage(ctx, f)
	if err != nil {
		p.log.Warn("usage", "department", department, "err", err)
		return nil
	}
	v := &ownerUsageView{Since: f.From.Format("2 January 2006"), K: p.usageK(), Reports: sum.Reports}
	v.CSRF, _ = c.Get(ctxCSRF).(string)
	for _, r := range sum.Refused {
		row := refusedRow{RefusedUsage: r}
		if s, ok := p.siteFor(ctx, r.Domain); ok {
			row.SiteID, row.SiteName = s.ID, s.Name
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// siteFor finds the site (not withdrawn) whose domains cover domain or a
// name below it.
func (p *Pages) siteFor(ctx context.Context, domain string) (allowlist.Site, bool) {
	if g, ok := p.reg.(allowlist.Governance); ok {
		if s, err := g.FindSiteByName(ctx, domain); err == nil && s.Status != allowlist.StatusWithdrawn {
			return s, true
		}
	}
	sites, err := p.svc.Sites.FindSites(ctx, allowlist.SiteFilter{Q: domain})
	if err != nil {
		return allowlist.Site{}, false
	}
	for _, s := range sites {
		for _, d := range s.Domains {
			if s.Status != allowlist.StatusWithdrawn && (allowlist.Pattern{Name: domain, Wildcard: true}).Covers(strings.TrimPrefix(d, "*.")) {
				return s, true
			}
		}
	}
	return allowlist.Site{}, false
}

// handleUsagePropose is the propose button of a refused domain: the
// propose form filled in for it, or the site when the registry has one.
func (p *Pages) handleUsagePropose(c echo.Context) error {
	a := p.actor(c)
	ctx := c.Request().Context()
	domain := strings.TrimSpace(c.FormValue("domain"))
	if !allowlist.RegistrableDomain(domain) {
		return p.refuse(c, allowlist.EINVALID, "", "Give a site's name, such as example.com.")
	}
	if s, ok := p.siteFor(ctx, domain); ok {
		return c.Redirect(http.StatusSeeOther, "/owner/sites/"+s.ID)
	}
	id := strings.ReplaceAll(domain, ".", "-")
	if len(id) > 64 {
		id = strings.TrimRight(id[:64], "-")
	}
	form := map[string]string{"name": domain, "id": id, "category": "other", "domains": domain + "\n*." + domain,
		"homepage": "https://" + domain + "/", "tls_inspection": allowlist.TLSAllow, "proxy": allowlist.ProxyUse}
	return p.render(c, http.StatusOK, "propose", &page{Title: "Propose a site", ProposeFields: proposeFields, Categories: allowlist.Categories,
		Form: form, DepartmentName: p.deptName(c, a.Department)})
}

// siteUsage is a catalogue row's use by reporting resolvers.
type siteUsage struct {
	Listed bool // on some list: resolvers can hit it
	// Withheld: the hits are not shown, as they would be one
	// department's own (docs/privacy.md).
	Withheld bool
	Hits     int64
	LastHit  string
	Stale    bool
}

// catalogueUsage is each site's use this month, by site id (nil when no
// resolver has reported yet).
func (p *Pages) catalogueUsage(ctx context.Context, sites []allowlist.Site) map[string]siteUsage {
	u, ok := p.usageStore()
	if !ok {
		return nil
	}
	now := p.now()
	hits, first, err := u.FindSiteUsage(ctx, allowlist.MonthStart(now))
	if err != nil {
		p.log.Warn("usage", "err", err)
		return nil
	}
	if len(first) == 0 {
		return nil
	}
	out := make(map[string]siteUsage, len(sites))
	for _, s := range sites {
		listed := s.Status != allowlist.StatusSuspended && s.Status != allowlist.StatusWithdrawn &&
			(s.Status == allowlist.StatusApproved || len(allowlist.Sponsors(s)) > 0)
		h := hits[s.ID]
		su := siteUsage{Listed: listed, Hits: h.Hits}
		switch {
		case oneDepartmentsUse(s, h):
			su.Withheld, su.Hits = true, 0
		case !h.LastHit.IsZero():
			su.LastHit = h.LastHit.Format("2 Jan 2006")
		}
		su.Stale = listed && allowlist.UsageStale(h.LastHit, allowlist.UsageSince(s, first), now)
		out[s.ID] = su
	}
	return out
}

// oneDepartmentsUse reports whether a site's hits this month would show
// one department's own use: the site is not on the common list and its
// hits came from one department only. Such figures are withheld from
// everyone else, in the catalogue and on the site's page (privacy.md).
func oneDepartmentsUse(s allowlist.Site, h allowlist.SiteUsage) bool {
	return s.Status != allowlist.StatusApproved && h.Departments < 2 && h.Hits > 0
}

// usageTrends is the dashboard's usage section: cross-government daily
// totals over the last 30 days, as charts and a table.
type usageTrends struct {
	Refused, Hits chart
	Days          []allowlist.UsageDay
}

func (p *Pages) usageTrends(ctx context.Context) *usageTrends {
	u, ok := p.usageStore()
	if !ok {
		return nil
	}
	to := p.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -trendDays)
	days, err := u.UsageDays(ctx, from, to)
	if err != nil {
		p.log.Warn("usage", "err", err)
		return nil
	}
	if len(days) == 0 {
		return nil
	}
	byDay := map[string]allowlist.UsageDay{}
	for _, d := range days {
		byDay[d.Day] = d
	}
	v := &usageTrends{}
	refused, hits := make([]int, trendDays), make([]int, trendDays)
	rLabels, hLabels := make([]string, trendDays), make([]string, trendDays)
	for i := range trendDays {
		day := from.AddDate(0, 0, i)
		d := byDay[day.Format(allowlist.UsageDayLayout)]
		d.Day = day.Format(allowlist.UsageDayLayout)
		v.Days = append(v.Days, d)
		refused[i], hits[i] = d.RefusedDomains, int(d.Hits)
		label := day.Format("2 Jan")
		rLabels[i] = label + ": " + strconv.Itoa(d.RefusedDomains) + " sites refused"
		hLabels[i] = label + ": " + strconv.FormatInt(d.Hits, 10) + " hits"
	}
	first, last := from.Format("2 Jan"), to.AddDate(0, 0, -1).Format("2 Jan")
	v.Refused = barChart(refused, rLabels)
	v.Refused.ID, v.Refused.Title, v.Refused.XLabel, v.Refused.YLabel = "refused-chart", "Sites refused each day, all organisations", "Day", "Sites refused"
	v.Refused.Desc = "Different sites that departments' resolvers refused each day from " + first + " to " + last + ". The table below gives every figure."
	v.Hits = barChart(hits, hLabels)
	v.Hits.ID, v.Hits.Title, v.Hits.XLabel, v.Hits.YLabel = "hits-chart", "Hits on listed sites each day, all organisations", "Day", "Hits"
	v.Hits.Desc = "Look-ups of names on the lists each day from " + first + " to " + last + ", rounded up to tens. The table below gives every figure."
	for _, ch := range []*chart{&v.Refused, &v.Hits} {
		ch.XFirst, ch.XLast = first, last
	}
	return v
}

// entryRow is one of a site's entries as resolvers used it.
type entryRow struct {
	Pattern, LastHit string
	Hits             int64
	Stale            bool
	// Withheld: the figures would show one department's own use
	// (oneDepartmentsUse), so they are not shown.
	Withheld bool
}

// entryUsage is each of the site's current entries' use by reporting
// resolvers (nil when none has reported yet).
func (p *Pages) entryUsage(ctx context.Context, s allowlist.Site) []entryRow {
	u, ok := p.usageStore()
	if !ok {
		return nil
	}
	now := p.now()
	used, first, err := u.FindEntryUsage(ctx, s.ID, allowlist.MonthStart(now))
	if err != nil {
		p.log.Warn("usage", "site", s.ID, "err", err)
	}
	if err != nil || len(first) == 0 {
		return nil
	}
	byPattern := map[string]allowlist.EntryUsage{}
	for _, e := range used {
		byPattern[e.Pattern] = e
	}
	withheld := false
	if s.Status != allowlist.StatusApproved {
		sites, _, err := u.FindSiteUsage(ctx, allowlist.MonthStart(now))
		if err != nil {
			p.log.Warn("usage", "site", s.ID, "err", err)
			return nil
		}
		withheld = oneDepartmentsUse(s, sites[s.ID])
	}
	since := allowlist.UsageSince(s, first)
	var out []entryRow
	for _, d := range s.Domains {
		e := byPattern[d]
		r := entryRow{Pattern: d, Hits: e.Hits, Stale: allowlist.UsageStale(e.LastHit, since, now), Withheld: withheld}
		if withheld {
			r.Hits = 0
		} else if !e.LastHit.IsZero() {
			r.LastHit = e.LastHit.Format("2 Jan 2006")
		}
		out = append(out, r)
	}
	return out
}
