package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
)

// reasonText is how the CLI says why a department's list lacks a site.
var reasonText = map[string]string{
	allowlist.ReasonNotProposed:  "not proposed (withdrawn)",
	allowlist.ReasonAwaiting:     "has not decided",
	allowlist.ReasonObjected:     "objected",
	allowlist.ReasonSuspended:    "suspended",
	allowlist.ReasonNotPublished: "approved, not yet on the version read",
}

func runCommonGround(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("common-ground", "common-ground DEPARTMENT... [--category C] [--registry URL] [--json]", stderr)
	category := fs.String("category", "", "only this category: "+strings.Join(allowlist.Categories, ", "))
	registry := fs.String("registry", envOr("ALLOWLIST_REGISTRY", "http://127.0.0.1:8080"), "registry URL ($ALLOWLIST_REGISTRY)")
	asJSON := fs.Bool("json", false, "print the registry's JSON answer as it is")
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(pos) == 0 {
		return &exitError{code: 2, err: errors.New("name one or more department ids, such as: dsit hmrc gla")}
	}
	q := url.Values{"departments": {strings.Join(pos, ",")}}
	if *category != "" {
		q.Set("category", *category)
	}
	body, err := registryGet(registryBase(*registry), "/v1/common-ground?"+q.Encode())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var g allowlist.Ground
	if err := json.Unmarshal(body, &g); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("unreadable answer: %w", err)}
	}
	if *asJSON {
		stdout.Write(body)
	} else {
		printGround(stdout, g)
	}
	if len(g.AllowedForAll) == 0 {
		return &exitError{code: 1}
	}
	return nil
}

// registryGet fetches path from the registry at base anonymously and
// returns the body of a 200 answer, or an error saying what the registry
// objected to.
func registryGet(base, path string) ([]byte, error) {
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + path)
	if err != nil {
		return nil, unreachable(err, base)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	var p api.Problem
	if json.Unmarshal(body, &p) == nil && p.Detail != "" {
		return nil, fmt.Errorf("%s (HTTP %d)", p.Detail, resp.StatusCode)
	}
	return nil, fmt.Errorf("registry answered HTTP %d", resp.StatusCode)
}

func printGround(w io.Writer, g allowlist.Ground) {
	names := map[string]string{}
	var ids []string
	for _, d := range g.Departments {
		names[d.ID] = d.Name
		ids = append(ids, d.ID)
	}
	what := "tool"
	if g.Category != "" {
		what = g.Category + " tool"
	}
	fmt.Fprintf(w, "Which %s can %s all use?\n\nLists read:\n", what, strings.Join(ids, ", "))
	for _, d := range g.Departments {
		from := "its own list"
		if d.Scope == allowlist.ScopeCommon {
			from = "the common list (its own list is the same)"
		}
		fmt.Fprintf(w, "  %s: %s, version %d (%s)\n", shown(d.ID), from, d.Version, shown(d.Name))
	}
	groups := []struct {
		title string
		sites []allowlist.GroundSite
	}{{"Allowed for all", g.AllowedForAll}, {"One decision away", g.OneDecisionAway}, {"Others", g.Others}}
	for _, grp := range groups {
		fmt.Fprintf(w, "\n%s (%d):\n", grp.title, len(grp.sites))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range grp.sites {
			var why []string
			suspended := false
			for _, c := range s.Departments {
				if c.Allowed || (c.Reason == allowlist.ReasonAwaiting && c.Department == s.WaitingFor) {
					continue
				}
				if c.Reason == allowlist.ReasonSuspended {
					// The registry's administrators suspended it, not the department.
					if !suspended {
						suspended = true
						text := "suspended for every organisation"
						if c.Comment != "" {
							text += " (" + c.Comment + ")"
						}
						why = append(why, text)
					}
					continue
				}
				text := c.Department + " " + reasonText[c.Reason]
				if c.Comment != "" {
					text += " (" + c.Comment + ")"
				}
				why = append(why, text)
			}
			detail := fmt.Sprintf("allowed by %d of %d", s.AllowedBy, len(s.Departments))
			if s.WaitingFor != "" {
				detail = "waiting for " + names[s.WaitingFor] + " to decide"
			}
			if len(why) > 0 {
				detail += "; " + strings.Join(why, "; ")
			}
			fmt.Fprintf(tw, "  %s (%s)\t%s\t%s\n", shown(s.Name), shown(s.ID), shown(s.Category), shown(detail))
		}
		tw.Flush()
	}
}
