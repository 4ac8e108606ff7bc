package allowlist

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Format describes one way of publishing a list.
type Format struct {
	Name        string
	ContentType string
	// For says which consumer the format is for, in a few words.
	For string
	// Params names the query parameters the format takes beside format.
	Params []string
	// render writes the list; body is its signed JSON form.
	render func(w *bytes.Buffer, l List, body []byte, o formatOptions) error
	opts   formatOptions
}

// formatOptions are a format's parameters, as Configure read them.
type formatOptions struct {
	upstreams []string // dnsmasq server addresses: IP or IP#PORT
	schema    int      // json: 2 adds the endpoints (see WithEndpoints)
	proxy     string   // pac: HOST:PORT for what is not proxy: direct
}

// Formats are the published formats, in the order documentation lists them.
var Formats = []Format{
	{Name: "json", ContentType: "application/json", For: "the signed canonical form; the resolver and scripts (schema=2 adds the endpoints)", Params: []string{"schema"}, render: func(w *bytes.Buffer, _ List, body []byte, _ formatOptions) error {
		w.Write(body)
		return nil
	}},
	{Name: "txt", ContentType: textPlain, For: "one pattern per line, for scripts and humans", render: renderTxt},
	{Name: "squid", ContentType: textPlain, For: "Squid dstdomain ACL file (acl allowed dstdomain \"/path\")", render: renderSquid},
	{Name: "rpz", ContentType: textPlain, For: "DNS Response Policy Zone of rpz-passthru records, listed before a catch-all blocking zone (BIND, Unbound, PowerDNS Recursor)", render: renderRPZ},
	{Name: "unbound", ContentType: textPlain, For: "Unbound transparent local-zones, to include in unbound.conf beside local-zone: \".\" always_nxdomain", render: renderUnbound},
	{Name: "dnsmasq", ContentType: textPlain, For: "dnsmasq configuration; with upstream=IP[#PORT] a complete default-deny (server= per name, address=/#/)", Params: []string{"upstream"}, render: renderDnsmasq},
	{Name: "hosts", ContentType: textPlain, For: "hosts-file syntax, for tools that import host lists", render: renderHosts},
	{Name: "pac", ContentType: "application/x-ns-proxy-autoconfig", For: "a proxy auto-config script: DIRECT for listed names; with proxy=HOST:PORT, DIRECT only for proxy: direct sites and the proxy for the rest", Params: []string{"proxy"}, render: renderPAC},
	{Name: "csv", ContentType: "text/csv; charset=utf-8", For: "pattern,site,category with a header row, for spreadsheets", render: renderCSV},
	{Name: "adblock", ContentType: textPlain, For: "allow rules (@@||name^, @@|host^) for AdGuard Home and other adblock-syntax filters", render: renderAdblock},
	{Name: "edl", ContentType: textPlain, For: "external domain list for Palo Alto Networks and Fortinet firewalls", render: renderEDL},
	{Name: "chrome", ContentType: "application/json", For: "Chrome/Edge managed policy: URLBlocklist [\"*\"] and the URLAllowlist (at most 1000 entries)", render: renderChrome},
	{Name: "edl-ip", ContentType: textPlain, For: "external IP list for Palo Alto Networks and Fortinet firewalls: one prefix a line, the site and ports after it", render: renderEDLIP},
	{Name: "nft", ContentType: textPlain, For: "an nftables table: sets of prefix . protocol . port for IPv4 and IPv6, and a chain that accepts them", render: renderNft},
	{Name: "squid-tls-bypass", ContentType: textPlain, For: "Squid ssl::server_name ACL file of the sites whose TLS is not to be inspected (ssl_bump splice)", render: renderSquidBypass},
	{Name: "endpoints", ContentType: "application/json", For: "one record per site for firewall tooling: domains, networks, handling, notes", render: renderEndpoints},
}

const textPlain = "text/plain; charset=utf-8"

// FindFormat returns the named format, or an EINVALID error listing the
// known ones.
func FindFormat(name string) (Format, error) {
	if name == "" {
		name = "json"
	}
	var names []string
	for _, f := range Formats {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return Format{}, Invalid(FieldError{Field: "format", Message: "unknown format; one of " + strings.Join(names, ", ")})
}

// maxUpstreams bounds the upstream parameter: each one adds a line for
// every name.
const maxUpstreams = 4

// Configure returns f with its parameters read by param (a URL query's
// Get). A parameter the format does not take is refused, so that a
// mistyped request never quietly yields a file other than the one asked
// for.
func (f Format) Configure(param func(string) string) (Format, error) {
	f, err := f.configureEndpoints(param)
	if err != nil {
		return f, err
	}
	up := strings.TrimSpace(param("upstream"))
	if up == "" {
		return f, nil
	}
	if !slices.Contains(f.Params, "upstream") {
		return f, Invalid(FieldError{Field: "upstream", Message: "only format=dnsmasq takes an upstream"})
	}
	var ups []string
	for _, s := range strings.Split(up, ",") {
		u, err := parseUpstream(strings.TrimSpace(s))
		if err != nil {
			return f, err
		}
		if !slices.Contains(ups, u) {
			ups = append(ups, u)
		}
	}
	if len(ups) > maxUpstreams {
		return f, Invalid(FieldError{Field: "upstream", Message: fmt.Sprintf("at most %d upstreams", maxUpstreams)})
	}
	f.opts.upstreams = ups
	return f, nil
}

// parseUpstream reads one resolver address, an IP address with an
// optional port (IP, IP#PORT as dnsmasq writes it, IPv4:PORT or
// [IPv6]:PORT), into dnsmasq's form.
func parseUpstream(s string) (string, error) {
	bad := Invalid(FieldError{Field: "upstream", Message: "want a resolver's IP address with an optional port: 192.0.2.53, 192.0.2.53#5353, 192.0.2.53:5353 or [2001:db8::53]:5353"})
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(s); err == nil {
		ap = netip.AddrPortFrom(a, 53)
	} else if i := strings.LastIndexByte(s, '#'); i > 0 {
		a, err1 := netip.ParseAddr(s[:i])
		p, err2 := strconv.ParseUint(s[i+1:], 10, 16)
		if err1 != nil || err2 != nil {
			return "", bad
		}
		ap = netip.AddrPortFrom(a, uint16(p))
	} else if ap, err = netip.ParseAddrPort(s); err != nil {
		return "", bad
	}
	a := ap.Addr()
	if a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() || ap.Port() == 0 {
		return "", bad
	}
	a = a.Unmap()
	if ap.Port() == 53 {
		return a.String(), nil
	}
	return a.String() + "#" + strconv.Itoa(int(ap.Port())), nil
}

// Key names f with its parameters: formats with the same key render a
// version to the same bytes.
func (f Format) Key() string {
	k := f.Name
	if len(f.opts.upstreams) > 0 {
		k += ";upstream=" + strings.Join(f.opts.upstreams, "+")
	}
	if f.opts.schema == 2 {
		k += ";schema=2"
	}
	if f.opts.proxy != "" {
		k += ";proxy=" + f.opts.proxy
	}
	return k
}

// Render returns the list in format f. body must be the list's signed
// JSON. It fails, with an EINVALID error, only when the format cannot
// hold the list (a browser policy past its entry cap).
func (f Format) Render(l List, body []byte) ([]byte, error) {
	var w bytes.Buffer
	if err := f.render(&w, l, body, f.opts); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

func header(w *bytes.Buffer, c string, l List, f string) {
	fmt.Fprintf(w, "%s Cross-government allow-list, format %s\n", c, f)
	fmt.Fprintf(w, "%s scope=%s version=%d generated=%s entries=%d\n", c, l.Scope, l.Version, l.GeneratedAt.UTC().Format("2006-01-02T15:04:05Z"), len(l.Entries))
	fmt.Fprintf(w, "%s sha256=%s (of the canonical entries; verify the JSON form's signature)\n", c, l.SHA256)
}

func renderTxt(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "#", l, "txt")
	for _, e := range l.Entries {
		w.WriteString(e.Pattern)
		w.WriteByte('\n')
	}
	return nil
}

// subtrees reduces the list to the set of names whose whole subtree is
// allowed, for formats that cannot say "exactly this host". Exact entries
// are widened; the widened ones, and entries already covered by a wider
// one, are returned apart. The result is sorted and has no name below
// another.
func subtrees(l List) (names, widened []string) {
	set, wild := map[string]bool{}, map[string]bool{}
	for _, e := range l.Entries {
		name, ok := list.CutWildcard(e.Pattern)
		set[name] = true
		wild[name] = wild[name] || ok
	}
	for _, e := range l.Entries {
		if name, ok := list.CutWildcard(e.Pattern); !ok && !wild[name] && !coveredByAncestor(name, wild) {
			widened = append(widened, name)
		}
	}
	for n := range set {
		if !coveredByAncestor(n, set) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, widened
}

// coveredByAncestor reports whether a proper parent of name is in set.
func coveredByAncestor(name string, set map[string]bool) bool {
	for s := name; ; {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return false
		}
		s = s[i+1:]
		if set[s] {
			return true
		}
	}
}

// reduced is a list without the entries that a wildcard entry covers: an
// exact name at or below a listed subtree, or a subtree below another.
// What is left allows the same names, and no name in it lies at or below
// a subtree it lists, which formats with "most specific rule wins" or DNS
// wildcard semantics need. Names are sorted and unique.
type reduced struct {
	names []string        // every name left, exact or subtree
	wild  map[string]bool // which of them are subtrees
}

func reduce(entries []Entry) reduced {
	r := reduced{wild: map[string]bool{}}
	for _, e := range entries {
		if name, ok := list.CutWildcard(e.Pattern); ok {
			r.wild[name] = true
		}
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name, ok := list.CutWildcard(e.Pattern)
		if coveredByAncestor(name, r.wild) || (!ok && r.wild[name]) || seen[name] {
			continue
		}
		seen[name] = true
		r.names = append(r.names, name)
	}
	for n := range r.wild {
		if !seen[n] {
			delete(r.wild, n) // covered by a wider subtree
		}
	}
	sort.Strings(r.names)
	return r
}

func widenedNote(w *bytes.Buffer, c string, widened []string) {
	if len(widened) == 0 {
		return
	}
	fmt.Fprintf(w, "%s This format cannot allow a single host without the names below it.\n", c)
	fmt.Fprintf(w, "%s These %d exact entries are widened to their whole subtree:\n", c, len(widened))
	for _, n := range widened {
		fmt.Fprintf(w, "%s   %s\n", c, n)
	}
}

// renderSquid writes a dstdomain file: ".example.org" for a subtree and
// "host.example.org" for one host. Squid warns about, and ignores, an entry
// that overlaps another, so entries below a listed subtree are left out.
func renderSquid(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "#", l, "squid")
	w.WriteString("# Load as: acl allowed dstdomain \"/path/to/this/file\"\n")
	w.WriteString("#          http_access allow allowed\n#          http_access deny all\n")
	r := reduce(l.Entries)
	lines := make([]string, 0, len(r.names))
	for _, n := range r.names {
		if r.wild[n] {
			n = "." + n
		}
		lines = append(lines, n)
	}
	sort.Strings(lines)
	for _, s := range lines {
		w.WriteString(s)
		w.WriteByte('\n')
	}
	return nil
}

// RPZOwners returns the owner names, relative to the zone's origin, of
// the rpz-passthru records that allow exactly the names the entries allow,
// without duplicates, sorted by name with a wildcard after its name. A
// subtree needs two records, one for its name and one for the wildcard
// below it.
//
// An entry that a wildcard entry covers (an exact name at or below a
// listed subtree, or a narrower subtree) is left out. Inside a policy
// zone the ordinary DNS rules apply: a name that exists below "*.w" hides
// the wildcard for itself and for the names below it (which then match
// nothing in this zone and fall through to the blocking zone), and the
// names between it and w become empty non-terminals, which match nothing
// either. With the covered entries gone, no owner lies below a wildcard.
//
// The zone-file renderer and zone transfers both call it, so a transfer
// serves the same records as ?format=rpz.
func RPZOwners(entries []Entry) []string {
	r := reduce(entries)
	owners := make([]string, 0, len(r.names)+len(r.wild))
	for _, n := range r.names {
		owners = append(owners, n)
		if r.wild[n] {
			owners = append(owners, "*."+n)
		}
	}
	return owners
}

// The SOA timers of an RPZ zone, over HTTP and by zone transfer alike: a
// policy feed is checked every five minutes (NOTIFY makes it sooner), and a
// secondary that cannot reach the registry keeps its copy for a week
// rather than dropping every allowed name.
const (
	RPZTTL     = 300
	RPZRefresh = 300
	RPZRetry   = 60
	RPZExpire  = 604800
	RPZMinimum = 300
)

// renderRPZ writes a response policy zone whose records are rpz-passthru:
// listed names are resolved normally, and the zone must come before a
// blocking zone that catches everything else. The SOA serial is the
// version.
func renderRPZ(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, ";", l, "rpz")
	fmt.Fprintf(w, `; A passthru-only policy zone: it blocks nothing by itself. For
; default-deny, list it FIRST in the server's policy order and a blocking
; catch-all zone (one record: "* CNAME .") AFTER it; the first zone that
; matches a name decides. For example, in BIND:
;   response-policy { zone "%[1]s.rpz.allowlist"; zone "catchall.rpz"; };
; Unbound: an rpz: clause for this zone, then one for the catch-all zone.
; PowerDNS Recursor: rpzFile() for this zone, then for the catch-all zone.
; Entries below a wildcard entry are left out: the wildcard allows them,
; and a record below it would hide it by the DNS wildcard rules.
`, l.Scope)
	fmt.Fprintf(w, "$TTL %d\n", RPZTTL)
	fmt.Fprintf(w, "@ IN SOA localhost. hostmaster.localhost. %d %d %d %d %d\n", uint32(l.Version), RPZRefresh, RPZRetry, RPZExpire, RPZMinimum)
	w.WriteString("@ IN NS localhost.\n")
	for _, o := range RPZOwners(l.Entries) {
		fmt.Fprintf(w, "%s CNAME rpz-passthru.\n", o)
	}
	return nil
}

func renderUnbound(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "#", l, "unbound")
	names, widened := subtrees(l)
	widenedNote(w, "#", widened)
	w.WriteString("# Listed zones resolve normally. For default-deny, include this file in\n")
	w.WriteString("# unbound.conf beside a default that refuses everything else:\n")
	w.WriteString("#   server:\n#     local-zone: \".\" always_nxdomain\n#   include: \"/path/to/this/file\"\n")
	w.WriteString("# (the rpz format allows exact hosts exactly, in Unbound too).\n")
	w.WriteString("server:\n")
	for _, n := range names {
		fmt.Fprintf(w, "    local-zone: \"%s.\" transparent\n", n)
	}
	return nil
}

// renderDnsmasq writes dnsmasq configuration. With upstreams it is a
// complete default-deny: no-resolv, each listed name forwarded to the
// upstreams, the names below an exact entry answered NXDOMAIN
// (address=/*.host/), and address=/#/ answering NXDOMAIN, for every query
// type, for every other name. dnsmasq picks the most specific domain
// rule. Without upstreams it keeps the old form, server=/name/#, which
// routes listed names but cannot deny the rest; its header says so.
func renderDnsmasq(w *bytes.Buffer, l List, _ []byte, o formatOptions) error {
	header(w, "#", l, "dnsmasq")
	if len(o.upstreams) == 0 {
		names, widened := subtrees(l)
		widenedNote(w, "#", widened)
		w.WriteString(`# NOT a default-deny file: it was fetched without an upstream. Each line
# sends a subtree to dnsmasq's standard servers (#), and dnsmasq sends
# every other name to those same servers, so nothing is refused.
# For default-deny, fetch it again with upstream=IP or upstream=IP#PORT
# (your recursive resolver) added to the URL, and load that file alone.
`)
		for _, n := range names {
			fmt.Fprintf(w, "server=/%s/#\n", n)
		}
		return nil
	}
	fmt.Fprintf(w, `# Default-deny for every query type, forwarding listed names to %[1]s.
# Load it as dnsmasq's whole forwarding configuration:
#   dnsmasq --conf-file=/path/to/this/file   (or conf-file= in dnsmasq.conf)
# and keep other server=, address=, local= and resolv-file= lines out of
# your configuration: a server= line without a domain makes dnsmasq
# forward every unlisted name, and address=/#/ then refuses nothing.
# Names in /etc/hosts and DHCP leases still answer (add no-hosts to stop).
# An exact entry allows that name only: address=/*.name/ answers NXDOMAIN
# below it. Every other name gets NXDOMAIN from address=/#/.
no-resolv
`, strings.Join(o.upstreams, ", "))
	r := reduce(l.Entries)
	for _, n := range r.names {
		for _, u := range o.upstreams {
			fmt.Fprintf(w, "server=/%s/%s\n", n, u)
		}
		if !r.wild[n] {
			fmt.Fprintf(w, "address=/*.%s/\n", n)
		}
	}
	w.WriteString("address=/#/\n")
	return nil
}

// renderHosts writes hosts-file lines. Hosts files cannot express a
// subtree, so a wildcard entry is listed by its base name only; the
// header names those narrowed entries.
func renderHosts(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "#", l, "hosts")
	var narrowed []string
	seen := map[string]bool{}
	var names []string
	for _, e := range l.Entries {
		name, wild := list.CutWildcard(e.Pattern)
		if wild {
			narrowed = append(narrowed, e.Pattern)
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(narrowed) > 0 {
		fmt.Fprintf(w, "# Hosts files cannot list a subtree: these %d wildcard entries appear\n# by their base name only, without the names below them:\n", len(narrowed))
		for _, n := range narrowed {
			fmt.Fprintf(w, "#   %s\n", n)
		}
	}
	w.WriteString("# The address is a placeholder: importers read the names.\n")
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "0.0.0.0 %s\n", n)
	}
	return nil
}

func renderPAC(w *bytes.Buffer, l List, _ []byte, o formatOptions) error {
	if o.proxy != "" {
		return renderPACProxy(w, l, o.proxy)
	}
	header(w, "//", l, "pac")
	exact, wild := map[string]int{}, map[string]int{}
	for _, e := range l.Entries {
		if name, ok := list.CutWildcard(e.Pattern); ok {
			wild[name] = 1
		} else {
			exact[name] = 1
		}
	}
	w.WriteString("// Listed names go DIRECT. Set OTHERWISE to your department's proxy.\n")
	writePAC(w, "DIRECT", "PROXY proxy.invalid:3128", exact, wild)
	return nil
}

// writePAC writes a PAC script's variables and its FindProxyForURL: the
// names in exact, and those at or below a name in wild, get allowed;
// everything else gets otherwise.
func writePAC(w *bytes.Buffer, allowed, otherwise string, exact, wild map[string]int) {
	aj, _ := json.Marshal(allowed)
	oj, _ := json.Marshal(otherwise)
	ej, _ := json.Marshal(exact)
	wj, _ := json.Marshal(wild)
	fmt.Fprintf(w, "var ALLOWED = %s;\nvar OTHERWISE = %s;\n", aj, oj)
	fmt.Fprintf(w, "var exact = %s;\nvar wild = %s;\n", ej, wj)
	w.WriteString(`function FindProxyForURL(url, host) {
  var h = host.toLowerCase();
  if (h.charAt(h.length - 1) === ".") h = h.substring(0, h.length - 1);
  if (Object.prototype.hasOwnProperty.call(exact, h)) return ALLOWED;
  for (;;) {
    if (Object.prototype.hasOwnProperty.call(wild, h)) return ALLOWED;
    var i = h.indexOf(".");
    if (i < 0) return OTHERWISE;
    h = h.substring(i + 1);
  }
}
`)
}

func renderCSV(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	c := csv.NewWriter(w)
	c.Write([]string{"pattern", "site", "category"})
	for _, e := range l.Entries {
		c.Write([]string{e.Pattern, e.Site, e.Category})
	}
	c.Flush()
	return c.Error()
}

// renderAdblock writes allow (exception) rules in the adblock syntax that
// AdGuard Home's filter engine reads: @@||name^ allows a name and every
// name below it, @@|host^ that host alone. The file blocks nothing: the
// blocking rule for everything else is the subscriber's, one line.
func renderAdblock(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "!", l, "adblock")
	fmt.Fprintf(w, "! Title: Cross-government allow-list (%s)\n! Version: %d\n", l.Scope, l.Version)
	w.WriteString(`! Allow rules only. For default-deny, add this blocking rule of your own
! (AdGuard Home: Filters > Custom filtering rules):
!   /.*/
! and subscribe to this file as a filter list (or a DNS allowlist).
`)
	r := reduce(l.Entries)
	for _, n := range r.names {
		if r.wild[n] {
			fmt.Fprintf(w, "@@||%s^\n", n)
		} else {
			fmt.Fprintf(w, "@@|%s^\n", n)
		}
	}
	return nil
}

// renderEDL writes an external domain list as Palo Alto Networks and
// Fortinet firewalls read it: one name per line, "*.name" for the names
// below it. There "*.name" does not include name itself, so a subtree
// takes both lines. The file has no comments: not every firewall skips
// them.
func renderEDL(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	r := reduce(l.Entries)
	for _, n := range r.names {
		w.WriteString(n)
		w.WriteByte('\n')
		if r.wild[n] {
			fmt.Fprintf(w, "*.%s\n", n)
		}
	}
	return nil
}

// ChromeMaxEntries is the most entries Chrome and Edge read from
// URLAllowlist; they ignore the rest.
const ChromeMaxEntries = 1000

// renderChrome writes a managed browser policy: URLBlocklist ["*"] and a
// URLAllowlist where "name" allows a name and every name below it, and
// ".host" (a leading dot) that host alone, on any scheme, port and path.
// A list that needs more entries than the browser reads is refused: a
// file the browser would silently cut would allow less than the list.
func renderChrome(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	r := reduce(l.Entries)
	if len(r.names) > ChromeMaxEntries {
		return Invalid(FieldError{Field: "format", Message: fmt.Sprintf(
			"the chrome format holds at most %d entries (Chrome and Edge ignore the rest of URLAllowlist) and this list needs %d; use a proxy format (pac, squid) or a DNS format instead",
			ChromeMaxEntries, len(r.names))})
	}
	allow := make([]string, 0, len(r.names))
	for _, n := range r.names {
		if !r.wild[n] {
			n = "." + n
		}
		allow = append(allow, n)
	}
	out, err := json.MarshalIndent(struct {
		Blocklist []string `json:"URLBlocklist"`
		Allowlist []string `json:"URLAllowlist"`
	}{[]string{"*"}, allow}, "", "  ")
	if err != nil {
		return err
	}
	w.Write(out)
	w.WriteByte('\n')
	return nil
}
