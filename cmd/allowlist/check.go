package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cross-gov/allowlist/allowlist"
	"github.com/cross-gov/allowlist/api"
	"github.com/cross-gov/allowlist/resolver"
)

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check DOMAIN|URL|TOOL|IP [--port udp/3478] [--department ID] [--registry URL] [--ca-file PEM]\n\nDOMAIN is a host name (meet.jit.si), URL a web address (https://meet.jit.si/x),\nTOOL a tool's name as the catalogue has it (\"Microsoft Teams\"),\nIP an IPv4 or IPv6 address, checked against the list's networks", stderr)
	dept := fs.String("department", "", "check your department's list instead of common")
	port := fs.String("port", "", "with an IP address: protocol/port, such as udp/3478 or tcp/443")
	registry := fs.String("registry", envOr("ALLOWLIST_REGISTRY", "http://127.0.0.1:8080"), "registry URL ($ALLOWLIST_REGISTRY)")
	token := fs.String("token", os.Getenv("ALLOWLIST_TOKEN"), "optional token ($ALLOWLIST_TOKEN); owners also see contacts")
	caFile := fs.String("ca-file", os.Getenv("ALLOWLIST_CA_FILE"), "https registry: trust only these PEM CA certificates ($ALLOWLIST_CA_FILE)")
	pos, err := parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(pos) != 1 {
		return &exitError{code: 2, err: errors.New("give one domain, web address or tool name (quote a name with spaces)")}
	}
	tlsConfig, err := resolver.RegistryTLS(*caFile)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--ca-file: %w", err)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	base := registryBase(*registry)
	target := pos[0]
	_, ipErr := netip.ParseAddr(strings.TrimSpace(target))
	isIP := ipErr == nil
	if *port != "" && !isIP {
		return &exitError{code: 2, err: errors.New("--port goes with an IP address, as in: check 52.112.1.1 --port udp/3478")}
	}
	if !isIP && !strings.Contains(target, ".") || strings.Contains(strings.TrimSpace(target), " ") {
		site, err := findTool(client, base, target)
		if allowlist.ErrorCode(err) == allowlist.ENOTFOUND {
			// Not in the catalogue, so on no list: say so, and how to ask.
			fmt.Fprintf(stdout, "%q is not in the catalogue, so it is on no list.\n", shown(target))
			fmt.Fprintf(stdout, "  If you know its web address, check that instead, such as: allowlist check meet.example.org\n")
			fmt.Fprintf(stdout, "  To ask for it, fill in the request form at %s/request?%s\n", base, url.Values{"tool": {target}}.Encode())
			return &exitError{code: 1}
		}
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if target = allowlist.ToolHost(site); target == "" {
			return &exitError{code: 2, err: fmt.Errorf("%s has no domains to check", shown(site.Name))}
		}
		fmt.Fprintf(stdout, "%s (%s): checking %s\n", shown(site.Name), site.Status, shown(target))
	}
	q := url.Values{"domain": {target}}
	if isIP {
		q = url.Values{"ip": {strings.TrimSpace(target)}}
		if *port != "" {
			q.Set("port", *port)
		}
	}
	if *dept != "" {
		q.Set("department", *dept)
	}
	r, err := askCheck(client, base, *token, q)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	printCheck(stdout, r)
	if !r.Allowed {
		return &exitError{code: 1}
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// shown makes text from the registry safe for a terminal: control
// characters and bidirectional overrides (which the registry refuses on
// input, but an older database or another server may hold) are printed
// as escapes, never as themselves.
func shown(s string) string {
	var b strings.Builder
	for _, r := range s {
		if allowlist.UnsafeText(string(r)) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// findTool finds a site by name or id in the catalogue, case-insensitively:
// an exact match, else the only tool whose name contains the text.
func findTool(client *http.Client, base, name string) (allowlist.Site, error) {
	resp, err := client.Get(base + "/v1/sites?" + url.Values{"q": {name}}.Encode())
	if err != nil {
		return allowlist.Site{}, unreachable(err, base)
	}
	defer resp.Body.Close()
	var sites []allowlist.Site
	if resp.StatusCode != http.StatusOK {
		return allowlist.Site{}, fmt.Errorf("registry answered HTTP %d looking for the tool", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&sites); err != nil {
		return allowlist.Site{}, fmt.Errorf("unreadable answer: %w", err)
	}
	site, err := allowlist.PickTool(sites, name)
	if allowlist.ErrorCode(err) == allowlist.ENOTFOUND {
		return site, err
	}
	if err != nil {
		return site, fmt.Errorf("%s; give the full name or a web address", shown(allowlist.ErrorMessage(err)))
	}
	return site, nil
}

// registryBase is the registry's address as given, without a trailing
// slash; 127.0.0.1:9090 means http://127.0.0.1:9090.
func registryBase(s string) string {
	base := strings.TrimRight(s, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return base
}

// unreachable is a failed request to the registry at base, with what to
// do about it.
func unreachable(err error, base string) error {
	return fmt.Errorf("%w\nIs the registry running at %s? Give its address with --registry or ALLOWLIST_REGISTRY", err, base)
}

// askCheck asks the registry's GET /v1/check with the query q, and turns
// a refusal into an error that says what the registry said.
func askCheck(client *http.Client, base, token string, q url.Values) (api.CheckResult, error) {
	req, err := http.NewRequest("GET", base+"/v1/check?"+q.Encode(), nil)
	if err != nil {
		return api.CheckResult{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return api.CheckResult{}, unreachable(err, base)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var p api.Problem
		if json.Unmarshal(body, &p) == nil && p.Detail != "" {
			msg := p.Detail
			if len(p.Errors) > 0 {
				parts := make([]string, len(p.Errors))
				for i, f := range p.Errors {
					parts[i] = f.Field + ": " + f.Message
				}
				msg = strings.Join(parts, "; ")
			}
			return api.CheckResult{}, fmt.Errorf("%s (HTTP %d)", shown(msg), resp.StatusCode)
		}
		return api.CheckResult{}, fmt.Errorf("registry answered HTTP %d", resp.StatusCode)
	}
	var r api.CheckResult
	if err := json.Unmarshal(body, &r); err != nil {
		return api.CheckResult{}, fmt.Errorf("unreadable answer: %w", err)
	}
	return r, nil
}

// printCheck writes the answer as people read it: allowed or not, what
// matched and who approved it, or why not.
func printCheck(stdout io.Writer, r api.CheckResult) {
	what := r.Domain
	if r.IP != "" {
		what = r.IP
		if r.Port != "" {
			what += " " + r.Port
		}
	}
	if r.Allowed {
		fmt.Fprintf(stdout, "%s is ALLOWED on list %s (version %d)\n", shown(what), shown(r.Scope), r.Version)
		matched := r.Match.Pattern
		if n := r.Match.Network; n != nil {
			matched = n.Prefix + " " + n.Protocol + "/" + n.Ports
		}
		fmt.Fprintf(stdout, "  matched %s, site %s (%s, %s)\n", shown(matched), shown(r.Match.Site.Name), shown(r.Match.Site.ID), shown(r.Match.Site.Category))
		if h := r.Match.Handling; h != nil {
			fmt.Fprintf(stdout, "  handling: tls_inspection %s, proxy %s\n", shown(h.TLSInspection), shown(h.Proxy))
		}
		var approvers []string
		for _, so := range r.Signoffs {
			if so.Decision == "approve" {
				approvers = append(approvers, so.Department)
			}
		}
		if len(approvers) > 0 {
			fmt.Fprintf(stdout, "  approved by: %s\n", shown(strings.Join(approvers, ", ")))
		}
	} else {
		fmt.Fprintf(stdout, "%s is NOT on list %s (version %d)\n", shown(what), shown(r.Scope), r.Version)
		if w := r.WhyNot; w != nil {
			fmt.Fprintf(stdout, "  why not: %s\n", shown(w.Message))
			if w.RequestURL != "" && strings.Contains(w.Message, w.RequestURL) {
				return // the reason already says where to ask
			}
		}
	}
	fmt.Fprintf(stdout, "  %s\n", shown(r.HowToRequest))
}
