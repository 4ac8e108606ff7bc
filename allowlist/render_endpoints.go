package allowlist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// configureEndpoints reads the parameters of the endpoint-aware formats:
// schema (json) and proxy (pac).
func (f Format) configureEndpoints(param func(string) string) (Format, error) {
	if s := strings.TrimSpace(param("schema")); s != "" {
		if !slices.Contains(f.Params, "schema") {
			return f, Invalid(FieldError{Field: "schema", Message: "only format=json takes a schema"})
		}
		switch s {
		case "1":
		case "2":
			f.opts.schema = 2
		default:
			return f, Invalid(FieldError{Field: "schema", Message: "must be 1 (domains only, what resolvers read) or 2 (with endpoints)"})
		}
	}
	if p := strings.TrimSpace(param("proxy")); p != "" {
		if !slices.Contains(f.Params, "proxy") {
			return f, Invalid(FieldError{Field: "proxy", Message: "only format=pac takes a proxy"})
		}
		hp, err := parseProxy(p)
		if err != nil {
			return f, err
		}
		f.opts.proxy = hp
	}
	return f, nil
}

// Schema returns the list JSON schema the format asks for: 1 or 2.
func (f Format) Schema() int {
	if f.opts.schema == 2 {
		return 2
	}
	return 1
}

// parseProxy reads HOST:PORT for a PAC "PROXY" answer: a host name or IP
// address (IPv6 in brackets) and a port.
func parseProxy(s string) (string, error) {
	bad := Invalid(FieldError{Field: "proxy", Message: "want HOST:PORT, such as proxy.example.gov.uk:3128 or [2001:db8::1]:8080"})
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", bad
	}
	if _, ok := parsePort(port); !ok {
		return "", bad
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", bad
		}
		return net.JoinHostPort(a.String(), port), nil
	}
	p, err := ParsePattern(host)
	if err != nil || p.Wildcard {
		// Host names with one label (an intranet "proxy") are fine too.
		if host == "" || strings.ContainsFunc(host, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.')
		}) {
			return "", bad
		}
		return strings.ToLower(host) + ":" + port, nil
	}
	return p.Name + ":" + port, nil
}

// endpointLines is each network of the list as a firewall line needs it:
// a prefix, a protocol, one port range, and the site.
type endpointLine struct {
	prefix   netip.Prefix
	protocol string
	ports    PortRange
	site     string
}

func endpointLines(l List) []endpointLine {
	var out []endpointLine
	for _, e := range l.Endpoints {
		for _, n := range e.Networks {
			p, err := netip.ParsePrefix(n.Prefix)
			rs, why := ParsePorts(n.Ports)
			if err != nil || why != "" {
				continue // cannot happen for a list the registry wrote
			}
			for _, r := range rs {
				out = append(out, endpointLine{p, n.Protocol, r, e.Site})
			}
		}
	}
	return out
}

func portsString(r PortRange) string { return FormatPorts([]PortRange{r}) }

// renderEDLIP writes an external IP list: one prefix a line, each once,
// followed by a space and what it is for (sites, protocol/ports), which
// the firewalls read as a comment.
func renderEDLIP(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	notes := map[netip.Prefix][]string{}
	var order []netip.Prefix
	for _, e := range endpointLines(l) {
		if _, ok := notes[e.prefix]; !ok {
			order = append(order, e.prefix)
		}
		note := e.site + " " + e.protocol + "/" + portsString(e.ports)
		if !slices.Contains(notes[e.prefix], note) {
			notes[e.prefix] = append(notes[e.prefix], note)
		}
	}
	slices.SortFunc(order, comparePrefixes)
	for _, p := range order {
		fmt.Fprintf(w, "%s %s\n", p, strings.Join(notes[p], "; "))
	}
	return nil
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// renderNft writes an nftables table "allowlist" with two sets of
// address . protocol . port intervals (IPv4 and IPv6) and a chain
// "endpoints" that accepts what they hold. Ports that an element for the
// same protocol and a wider (or the same) prefix already holds are left
// out of the narrower one: nft refuses overlapping intervals.
func renderNft(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	header(w, "#", l, "nft")
	w.WriteString("# Load with: nft -f FILE   (each load replaces the sets and the chain endpoints,\n")
	w.WriteString("# in one transaction; other chains of the table, such as your base chain, stay)\n")
	w.WriteString("# Then, once, jump to its chain from a base chain of this table, after a rule\n")
	w.WriteString("# that lets replies back (the sets match only the way out), e.g.\n")
	w.WriteString("#   nft add chain inet allowlist forward '{ type filter hook forward priority 0; policy drop; }'\n")
	w.WriteString("#   nft add rule inet allowlist forward ct state established,related accept\n")
	w.WriteString("#   nft add rule inet allowlist forward jump endpoints\n")
	lines := endpointLines(l)
	slices.SortFunc(lines, func(a, b endpointLine) int {
		if c := comparePrefixes(a.prefix, b.prefix); c != 0 {
			return c
		}
		if c := strings.Compare(a.protocol, b.protocol); c != 0 {
			return c
		}
		return int(a.ports.Lo) - int(b.ports.Lo)
	})
	var kept []endpointLine
	for _, e := range lines {
		// A wider (or the same) prefix kept before, with the same
		// protocol, already holds these ports: keep only the rest.
		// Sorted by address then length, a prefix's containers come first.
		rest := []PortRange{e.ports}
		for _, k := range kept {
			if k.protocol == e.protocol && k.prefix.Bits() <= e.prefix.Bits() && k.prefix.Contains(e.prefix.Addr()) {
				rest = subtractPorts(rest, k.ports)
			}
		}
		for _, r := range rest {
			kept = append(kept, endpointLine{e.prefix, e.protocol, r, e.site})
		}
	}
	families := []struct {
		name, typ string
		v4        bool
	}{{"endpoints_v4", "ipv4_addr", true}, {"endpoints_v6", "ipv6_addr", false}}
	// The table, its sets and the chain are declared (created if missing,
	// left as they are if present), emptied, and filled again: a reload
	// never deletes the table, so the base chain a firewall adds to it,
	// with its policy, survives every new version. nft -f applies the
	// whole file as one transaction.
	w.WriteString("table inet allowlist {\n")
	for _, fam := range families {
		fmt.Fprintf(w, "\tset %s {\n\t\ttype %s . inet_proto . inet_service\n\t\tflags interval\n\t}\n", fam.name, fam.typ)
	}
	w.WriteString("\tchain endpoints {\n\t}\n}\n")
	w.WriteString("flush chain inet allowlist endpoints\n")
	for _, fam := range families {
		fmt.Fprintf(w, "flush set inet allowlist %s\n", fam.name)
	}
	w.WriteString("table inet allowlist {\n")
	for _, fam := range families {
		fmt.Fprintf(w, "\tset %s {\n\t\ttype %s . inet_proto . inet_service\n\t\tflags interval\n", fam.name, fam.typ)
		var elems []string
		for _, e := range kept {
			if e.prefix.Addr().Is4() == fam.v4 {
				elems = append(elems, fmt.Sprintf("\t\t\t%s . %s . %s comment %s", e.prefix, e.protocol, portsString(e.ports), strconv.Quote(e.site)))
			}
		}
		if len(elems) > 0 {
			fmt.Fprintf(w, "\t\telements = {\n%s\n\t\t}\n", strings.Join(elems, ",\n"))
		}
		w.WriteString("\t}\n")
	}
	w.WriteString("\tchain endpoints {\n")
	w.WriteString("\t\tip daddr . meta l4proto . th dport @endpoints_v4 accept\n")
	w.WriteString("\t\tip6 daddr . meta l4proto . th dport @endpoints_v6 accept\n")
	w.WriteString("\t}\n}\n")
	return nil
}

// handlingSites returns the ids of the list's sites whose handling
// passes test.
func handlingSites(l List, test func(Handling) bool) map[string]bool {
	out := map[string]bool{}
	for _, e := range l.Endpoints {
		if test(e.Handling) {
			out[e.Site] = true
		}
	}
	return out
}

// renderSquidBypass writes, as a dstdomain file does, the names of the
// sites whose handling says tls_inspection: bypass, for an
// ssl::server_name ACL that ssl_bump splices.
func renderSquidBypass(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	bypass := handlingSites(l, func(h Handling) bool { return h.TLSInspection == TLSBypass })
	header(w, "#", l, "squid-tls-bypass")
	w.WriteString("# Load as: acl tls_bypass ssl::server_name \"/path/to/this/file\"\n")
	w.WriteString("#          ssl_bump peek step1\n#          ssl_bump splice tls_bypass\n#          ssl_bump bump all\n")
	var entries []Entry
	for _, e := range l.Entries {
		if bypass[e.Site] {
			entries = append(entries, e)
		}
	}
	r := reduce(entries)
	for _, n := range r.names {
		if r.wild[n] {
			n = "." + n
		}
		w.WriteString(n)
		w.WriteByte('\n')
	}
	return nil
}

// renderPACProxy writes a PAC script that sends the names of proxy:
// direct sites DIRECT and everything else to the proxy.
func renderPACProxy(w *bytes.Buffer, l List, proxy string) error {
	direct := handlingSites(l, func(h Handling) bool { return h.Proxy == ProxyDirect })
	header(w, "//", l, "pac")
	exact, wild := map[string]int{}, map[string]int{}
	for _, e := range l.Entries {
		if !direct[e.Site] {
			continue
		}
		if name, ok := list.CutWildcard(e.Pattern); ok {
			wild[name] = 1
		} else {
			exact[name] = 1
		}
	}
	w.WriteString("// Names of sites whose handling says proxy: direct go DIRECT; all else goes to the proxy.\n")
	writePAC(w, "DIRECT", "PROXY "+proxy, exact, wild)
	return nil
}

// EndpointRecord is one site in the endpoints format.
type EndpointRecord struct {
	Site     string    `json:"site"`
	Category string    `json:"category"`
	Domains  []string  `json:"domains"`
	Networks []Network `json:"networks"`
	Handling Handling  `json:"handling"`
	Notes    string    `json:"notes,omitempty"`
}

// EndpointsDocument is the endpoints format.
type EndpointsDocument struct {
	Scope       string           `json:"scope"`
	Version     int64            `json:"version"`
	GeneratedAt string           `json:"generated_at"`
	SHA256      string           `json:"sha256"`
	Sites       []EndpointRecord `json:"sites"`
}

// renderEndpoints writes one record per site of the list, with its
// domains and, where it has them, networks, handling and notes.
func renderEndpoints(w *bytes.Buffer, l List, _ []byte, _ formatOptions) error {
	doc := EndpointsDocument{Scope: l.Scope, Version: l.Version, GeneratedAt: l.GeneratedAt.UTC().Format("2006-01-02T15:04:05Z"), SHA256: l.SHA256, Sites: []EndpointRecord{}}
	index := map[string]int{}
	record := func(site, category string) *EndpointRecord {
		i, ok := index[site]
		if !ok {
			i = len(doc.Sites)
			index[site] = i
			doc.Sites = append(doc.Sites, EndpointRecord{Site: site, Category: category, Domains: []string{}, Networks: []Network{},
				Handling: Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}})
		}
		return &doc.Sites[i]
	}
	for _, e := range l.Entries {
		r := record(e.Site, e.Category)
		r.Domains = append(r.Domains, e.Pattern)
	}
	for _, e := range l.Endpoints {
		r := record(e.Site, e.Category)
		r.Handling, r.Notes = e.Handling, e.Notes
		r.Networks = append(r.Networks, e.Networks...)
	}
	slices.SortFunc(doc.Sites, func(a, b EndpointRecord) int { return strings.Compare(a.Site, b.Site) })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// subtractPorts returns the ports of rs that are not in cut.
func subtractPorts(rs []PortRange, cut PortRange) []PortRange {
	var out []PortRange
	for _, r := range rs {
		if r.Hi < cut.Lo || cut.Hi < r.Lo {
			out = append(out, r)
			continue
		}
		if r.Lo < cut.Lo {
			out = append(out, PortRange{r.Lo, cut.Lo - 1})
		}
		if cut.Hi < r.Hi {
			out = append(out, PortRange{cut.Hi + 1, r.Hi})
		}
	}
	return out
}
