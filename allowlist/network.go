package allowlist

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cross-gov/allowlist/allowlist/list"
)

// Network is an address range a site needs, with a protocol and ports:
// what a firewall must let through beside the site's domain names.
type Network struct {
	Prefix   string `json:"prefix" yaml:"prefix"`
	Protocol string `json:"protocol" yaml:"protocol"`
	Ports    string `json:"ports" yaml:"ports"`
}

// Handling says how proxies and TLS inspection should treat a site.
// The strict values (allow, proxy) are the defaults; bypass and direct
// relax them.
type Handling struct {
	TLSInspection string `json:"tls_inspection" yaml:"tls_inspection"`
	Proxy         string `json:"proxy" yaml:"proxy"`
}

// Handling values.
const (
	TLSAllow    = "allow"  // TLS inspection may intercept the site
	TLSBypass   = "bypass" // splice, never intercept
	ProxyUse    = "proxy"  // through the department's proxy
	ProxyDirect = "direct" // straight out, around the proxy
)

// Protocols a network may name.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
)

// MaxNetworksPerSite bounds one site's networks.
const MaxNetworksPerSite = 200

// Endpoints are one revision's networks and handling: what the sign-off
// rules compare, as they compare domains.
type Endpoints struct {
	Networks []Network `json:"networks"`
	Handling Handling  `json:"handling"`
}

// Relaxed reports whether the endpoints say anything a list must carry:
// a network, or handling other than the defaults.
func (e Endpoints) Relaxed() bool {
	return len(e.Networks) > 0 || e.Handling.TLSInspection == TLSBypass || e.Handling.Proxy == ProxyDirect
}

// Endpoint is one site's record in a published list's endpoints: the
// networks and handling the scope's sign-offs allow, and the site's notes.
type Endpoint struct {
	Site     string    `json:"site"`
	Category string    `json:"category"`
	Networks []Network `json:"networks"`
	Handling Handling  `json:"handling"`
	Notes    string    `json:"notes,omitempty"`
}

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// ParsePorts reads "3478-3481,443" into sorted, merged ranges. Ports are
// 1-65535; a range's low end is not above its high end.
func ParsePorts(s string) ([]PortRange, string) {
	if strings.TrimSpace(s) == "" {
		return nil, "is required: ports such as 443 or 3478-3481,443"
	}
	var out []PortRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, okA := parsePort(lo)
		b := a
		okB := true
		if isRange {
			b, okB = parsePort(hi)
		}
		switch {
		case !okA || !okB:
			return nil, strconv.Quote(part) + " is not a port (1-65535) or range of ports (3478-3481)"
		case a > b:
			return nil, strconv.Quote(part) + " runs backwards; write the low port first"
		}
		out = append(out, PortRange{a, b})
	}
	slices.SortFunc(out, func(x, y PortRange) int { return int(x.Lo) - int(y.Lo) })
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if int(r.Lo) <= int(last.Hi)+1 {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged, ""
}

func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" || s[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// FormatPorts writes ranges as ParsePorts reads them.
func FormatPorts(rs []PortRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.Lo)))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.Hi)))
		}
	}
	return b.String()
}

// specialPrefixes are the address blocks no site may name: they are not
// reachable on the public internet (or not one host), so a list naming
// them would open a firewall to something else than the site.
var specialPrefixes = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (\"this network\") space"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private space (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT space (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback space"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local space"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private space (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation space (RFC 5737)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private space (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking space (RFC 2544)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation space (RFC 5737)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation space (RFC 5737)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast space"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved space (and broadcast)"},
	{netip.MustParsePrefix("::/128"), "unspecified space"},
	{netip.MustParsePrefix("::1/128"), "loopback space"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped space; write the IPv4 prefix"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 space (RFC 6052)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 space (RFC 8215)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo space, which embeds IPv4 addresses (RFC 4380)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 space, which embeds IPv4 addresses (RFC 3056)"},
	{netip.MustParsePrefix("fec0::/10"), "deprecated site-local space (RFC 3879)"},
	{netip.MustParsePrefix("100::/64"), "discard-only space (RFC 6666)"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking space (RFC 5180)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation space (RFC 3849)"},
	{netip.MustParsePrefix("3fff::/20"), "documentation space (RFC 9637)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private) space"},
	{netip.MustParsePrefix("fe80::/10"), "link-local space"},
	{netip.MustParsePrefix("ff00::/8"), "multicast space"},
}

// PublicAddr says whether an address is one a site may name: outside every
// block of specialPrefixes. The registry's own outgoing connections (such
// as webhooks) use it too.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, sp := range specialPrefixes {
		if sp.prefix.Contains(a) {
			return false
		}
	}
	return true
}

// ParseNetworkPrefix reads a prefix a site may name, or says why not:
// canonical (no host bits, no zone), IPv4 at /8 or longer, IPv6 at /16
// or longer, and nowhere in specialPrefixes.
func ParseNetworkPrefix(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if a, err2 := netip.ParseAddr(s); err2 == nil && a.Zone() == "" {
			return netip.Prefix{}, "is an address, not a prefix; write it as " + netip.PrefixFrom(a, a.BitLen()).String()
		}
		return netip.Prefix{}, "is not an IPv4 or IPv6 prefix such as 52.112.0.0/14 or 2603:1063::/38"
	}
	if p.Masked() != p {
		return netip.Prefix{}, "has host bits set; the prefix is " + p.Masked().String()
	}
	if p.Addr().Is4() && p.Bits() < 8 {
		return netip.Prefix{}, "is wider than /8; IPv4 prefixes must be /8 or longer"
	}
	if p.Addr().Is6() && p.Bits() < 16 {
		return netip.Prefix{}, "is wider than /16; IPv6 prefixes must be /16 or longer"
	}
	if p.String() != s {
		return netip.Prefix{}, "is not in canonical form; write " + p.String()
	}
	for _, sp := range specialPrefixes {
		if sp.prefix.Overlaps(p) {
			return netip.Prefix{}, "overlaps " + sp.prefix.String() + ", " + sp.what
		}
	}
	return p, ""
}

// NormalizeNetworks checks networks and returns them with canonical ports,
// sorted and without duplicates, or the field errors, named from field
// ("networks[2].ports").
func NormalizeNetworks(field string, in []Network) ([]Network, []FieldError) {
	var fields []FieldError
	if len(in) > MaxNetworksPerSite {
		return nil, []FieldError{{Field: field, Message: "at most " + itoa(MaxNetworksPerSite) + " networks per site"}}
	}
	out := make([]Network, 0, len(in))
	for i, n := range in {
		at := fieldIndex(field, i)
		if _, why := ParseNetworkPrefix(n.Prefix); why != "" {
			fields = append(fields, FieldError{Field: at + ".prefix", Message: why})
		}
		if n.Protocol != ProtocolTCP && n.Protocol != ProtocolUDP {
			fields = append(fields, FieldError{Field: at + ".protocol", Message: "must be tcp or udp"})
		}
		rs, why := ParsePorts(n.Ports)
		if why != "" {
			fields = append(fields, FieldError{Field: at + ".ports", Message: why})
		} else {
			n.Ports = FormatPorts(rs)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(fields) > 0 {
		return nil, fields
	}
	slices.SortFunc(out, compareNetworks)
	return out, nil
}

func compareNetworks(a, b Network) int {
	if c := strings.Compare(a.Prefix, b.Prefix); c != 0 {
		return c
	}
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	return strings.Compare(a.Ports, b.Ports)
}

// NormalizeHandling fills in the defaults and checks the values.
func NormalizeHandling(h Handling) (Handling, []FieldError) {
	var fields []FieldError
	if h.TLSInspection == "" {
		h.TLSInspection = TLSAllow
	}
	if h.Proxy == "" {
		h.Proxy = ProxyUse
	}
	if h.TLSInspection != TLSAllow && h.TLSInspection != TLSBypass {
		fields = append(fields, FieldError{Field: "handling.tls_inspection", Message: "must be bypass or allow"})
	}
	if h.Proxy != ProxyUse && h.Proxy != ProxyDirect {
		fields = append(fields, FieldError{Field: "handling.proxy", Message: "must be direct or proxy"})
	}
	return h, fields
}

// networkCovers reports whether have lets through everything want does:
// the same protocol, want's prefix inside have's, want's ports inside
// have's.
func networkCovers(have, want Network) bool {
	if have.Protocol != want.Protocol {
		return false
	}
	hp, err1 := netip.ParsePrefix(have.Prefix)
	wp, err2 := netip.ParsePrefix(want.Prefix)
	if err1 != nil || err2 != nil || hp.Bits() > wp.Bits() || !hp.Contains(wp.Addr()) {
		return false
	}
	hr, _ := ParsePorts(have.Ports)
	wr, _ := ParsePorts(want.Ports)
	for _, w := range wr {
		if !slices.ContainsFunc(hr, func(h PortRange) bool { return h.Lo <= w.Lo && w.Hi <= h.Hi }) {
			return false
		}
	}
	return len(wr) > 0
}

// endpointsCover reports whether a decision made on have covers want:
// every network of want within one of have, and want's handling no more
// relaxed than have's. Narrowing is covered; widening or relaxing is not.
func endpointsCover(have, want Endpoints) bool {
	if want.Handling.TLSInspection == TLSBypass && have.Handling.TLSInspection != TLSBypass {
		return false
	}
	if want.Handling.Proxy == ProxyDirect && have.Handling.Proxy != ProxyDirect {
		return false
	}
	for _, w := range want.Networks {
		if !slices.ContainsFunc(have.Networks, func(h Network) bool { return networkCovers(h, w) }) {
			return false
		}
	}
	return true
}

// revisionEndpoints returns a revision's endpoints, the defaults where
// the revision has none recorded.
func revisionEndpoints(s Site, rev int) Endpoints {
	if e, ok := s.EndpointHistory[rev]; ok {
		return e
	}
	return Endpoints{Handling: Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}}
}

// PublishedEndpoints returns the endpoints of a site that scope common
// lists: those of its latest revision whose endpoints at least quorum
// approvals cover, while common lists its domains; ok is false when
// common lists nothing of the site. As with domains, a widening waits
// for a new quorum while the last covered revision stays published, and
// a narrowing is covered by the approvals already given.
func PublishedEndpoints(s Site, quorum int) (Endpoints, bool) {
	if quorum < 1 {
		quorum = 1
	}
	if len(PublishedDomains(s, quorum)) == 0 {
		return Endpoints{}, false
	}
	for rev := s.Revision; rev >= 1; rev-- {
		if _, ok := s.History[rev]; !ok {
			continue
		}
		want := revisionEndpoints(s, rev)
		count := 0
		for _, so := range s.Signoffs {
			if so.Decision == DecisionApprove && endpointsCover(revisionEndpoints(s, so.Revision), want) {
				count++
			}
		}
		if count >= quorum || endpointsConsensus(s, want) {
			return want, true
		}
	}
	return Endpoints{Handling: Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}}, true
}

// endpointsConsensus is consensus for endpoints: the revision that joined
// common by lazy consensus covers them and nobody objects.
func endpointsConsensus(s Site, want Endpoints) bool {
	if s.Consensus == 0 || !endpointsCover(revisionEndpoints(s, s.Consensus), want) {
		return false
	}
	return !slices.ContainsFunc(s.Signoffs, func(so Signoff) bool { return so.Decision == DecisionObject })
}

// latestCoveredEndpoints returns the endpoints of the latest revision
// that a decision made on approved covers.
func latestCoveredEndpoints(s Site, approved Endpoints) Endpoints {
	for rev := s.Revision; rev >= 1; rev-- {
		if _, ok := s.History[rev]; !ok {
			continue
		}
		if e := revisionEndpoints(s, rev); endpointsCover(approved, e) {
			return e
		}
	}
	return revisionEndpoints(s, 0)
}

// mergeEndpoints is what two applicable approvals allow together: the
// networks of both, and handling relaxed where either relaxes it.
func mergeEndpoints(a, b Endpoints) Endpoints {
	out := Endpoints{Handling: a.Handling, Networks: slices.Clone(a.Networks)}
	for _, n := range b.Networks {
		if !slices.Contains(out.Networks, n) {
			out.Networks = append(out.Networks, n)
		}
	}
	slices.SortFunc(out.Networks, compareNetworks)
	if b.Handling.TLSInspection == TLSBypass {
		out.Handling.TLSInspection = TLSBypass
	}
	if b.Handling.Proxy == ProxyDirect {
		out.Handling.Proxy = ProxyDirect
	}
	return out
}

// EndpointScopes computes each scope's endpoint records by the rules
// Scopes applies to domains: common holds the endpoints quorum covers of
// every site it lists; a department's scope adds what its own approval
// covers and drops sites it objected to. Only sites whose endpoints say
// something (Endpoints.Relaxed) get a record. Records are sorted by site.
// A scope without records is missing from the map (nil). Sites without
// endpoints cost one length check each: a publication of 100,000 such
// sites allocates nothing here.
func EndpointScopes(sites []Site, departments []string, quorum int) map[string][]Endpoint {
	out := map[string][]Endpoint{}
	var isDept map[string]bool
	for _, s := range sites {
		if len(s.EndpointHistory) == 0 || !live(s) {
			continue // the usual site: domains only
		}
		if isDept == nil {
			isDept = make(map[string]bool, len(departments))
			for _, d := range departments {
				isDept[d] = true
			}
		}
		common, listed := PublishedEndpoints(s, quorum)
		record := func(e Endpoints) Endpoint {
			return Endpoint{Site: s.ID, Category: s.Category, Networks: append([]Network{}, e.Networks...), Handling: e.Handling, Notes: s.Notes}
		}
		if listed && common.Relaxed() {
			out[ScopeCommon] = append(out[ScopeCommon], record(common))
		}
		decided := map[string]bool{}
		for _, so := range s.Signoffs {
			if !isDept[so.Department] || decided[so.Department] {
				continue
			}
			decided[so.Department] = true
			switch {
			case so.Decision == DecisionApprove && len(latestCovered(s, s.History[so.Revision])) > 0:
				own := latestCoveredEndpoints(s, revisionEndpoints(s, so.Revision))
				if listed {
					own = mergeEndpoints(common, own)
				}
				if own.Relaxed() {
					out[so.Department] = append(out[so.Department], record(own))
				}
			case so.Decision == DecisionObject:
				// The department's scope leaves the site out.
			default:
				if listed && common.Relaxed() {
					out[so.Department] = append(out[so.Department], record(common))
				}
			}
		}
		for _, d := range departments {
			if !decided[d] && listed && common.Relaxed() {
				out[d] = append(out[d], record(common))
			}
		}
	}
	return out
}

// EncodeEndpoints returns the canonical JSON array of a scope's endpoint
// records, or nil when there are none.
func EncodeEndpoints(records []Endpoint) []byte {
	if len(records) == 0 {
		return nil
	}
	b, _ := json.Marshal(records) // cannot fail: strings and slices
	return b
}

// DecodeEndpoints reads what EncodeEndpoints wrote (nil: none).
func DecodeEndpoints(b []byte) ([]Endpoint, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []Endpoint
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode endpoints: %w", err)
	}
	return out, nil
}

// Schema 2 of the list JSON. A version's schema-1 body (the five fields
// scope, version, generated_at, sha256, entries) is what every resolver
// reads and never changes shape. Where the version has endpoint records,
// its schema-2 body is the same bytes with one more field before the
// closing brace: `,"endpoints":[...]`; it is signed on its own. Where the
// version has none, the schema-2 body is the schema-1 body.

// WithEndpoints returns the parts of the schema-2 body: parts (a schema-1
// body, as Version.Parts gives it) with the endpoints field added, or
// parts itself when endpoints is empty.
func WithEndpoints(parts [][]byte, endpoints []byte) [][]byte {
	if len(endpoints) == 0 {
		return parts
	}
	out := make([][]byte, 0, len(parts)+2)
	out = append(out, parts[:len(parts)-1]...)
	last := parts[len(parts)-1]
	out = append(out, last[:len(last)-len(list.Tail)])
	field := make([]byte, 0, len(endpoints)+len(`,"endpoints":`)+len(list.Tail))
	field = append(field, `,"endpoints":`...)
	field = append(field, endpoints...)
	return append(out, append(field, list.Tail...))
}

// SignEndpointsBody signs the schema-2 body of a list whose schema-1 body
// is head, content, "}\n".
func SignEndpointsBody(key ed25519.PrivateKey, head, content, endpoints []byte) string {
	return list.Sign(key, bytes.Join(WithEndpoints([][]byte{head, content, []byte(list.Tail)}, endpoints), nil))
}

// SiteEndpoints returns the endpoints of a site's revision: the defaults
// where the revision has none recorded.
func SiteEndpoints(s Site, rev int) Endpoints {
	e := revisionEndpoints(s, rev)
	if e.Networks == nil {
		e.Networks = []Network{}
	}
	return e
}

// SameEndpoints reports whether two normalised endpoints are equal.
func SameEndpoints(a, b Endpoints) bool {
	return a.Handling == b.Handling && slices.Equal(a.Networks, b.Networks)
}

// ParseProtoPort reads "udp/3478" or "tcp/443" (a port alone means tcp).
func ParseProtoPort(s string) (string, uint16, string) {
	proto, port, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	if !ok {
		proto, port = ProtocolTCP, proto
	}
	if proto != ProtocolTCP && proto != ProtocolUDP {
		return "", 0, "the protocol must be tcp or udp, as in udp/3478"
	}
	p, okp := parsePort(port)
	if !okp {
		return "", 0, "want a protocol and port such as udp/3478 or tcp/443 (ports 1-65535)"
	}
	return proto, p, ""
}

// MatchEndpoint finds the site and network of endpoints that let addr
// through on protocol and port (protocol "" matches any protocol and
// port). The first match by site order wins.
func MatchEndpoint(endpoints []Endpoint, addr netip.Addr, protocol string, port uint16) (Endpoint, Network, bool) {
	addr = addr.Unmap()
	for _, e := range endpoints {
		for _, n := range e.Networks {
			p, err := netip.ParsePrefix(n.Prefix)
			if err != nil || !p.Contains(addr) {
				continue
			}
			if protocol == "" {
				return e, n, true
			}
			if n.Protocol != protocol {
				continue
			}
			rs, _ := ParsePorts(n.Ports)
			if slices.ContainsFunc(rs, func(r PortRange) bool { return r.Lo <= port && port <= r.Hi }) {
				return e, n, true
			}
		}
	}
	return Endpoint{}, Network{}, false
}

// SiteNetwork is one network of one site, as diffs list them.
type SiteNetwork struct {
	Site     string `json:"site"`
	Prefix   string `json:"prefix"`
	Protocol string `json:"protocol"`
	Ports    string `json:"ports"`
}

// HandlingChange is a site whose published handling changed.
type HandlingChange struct {
	Site   string   `json:"site"`
	Before Handling `json:"before"`
	After  Handling `json:"after"`
}

// EndpointChanges are what a version changed in the endpoints of the
// version before: networks added and removed, handling changed.
type EndpointChanges struct {
	HandlingChanged []HandlingChange `json:"handling_changed,omitempty"`
	NetworksAdded   []SiteNetwork    `json:"networks_added,omitempty"`
	NetworksRemoved []SiteNetwork    `json:"networks_removed,omitempty"`
}

// Empty reports whether nothing changed.
func (c EndpointChanges) Empty() bool {
	return len(c.HandlingChanged) == 0 && len(c.NetworksAdded) == 0 && len(c.NetworksRemoved) == 0
}

// DiffEndpoints compares two versions' endpoint records.
func DiffEndpoints(a, b []Endpoint) EndpointChanges {
	var c EndpointChanges
	strict := Handling{TLSInspection: TLSAllow, Proxy: ProxyUse}
	index := func(rs []Endpoint) (map[string]Handling, map[SiteNetwork]bool) {
		h, n := map[string]Handling{}, map[SiteNetwork]bool{}
		for _, r := range rs {
			h[r.Site] = r.Handling
			for _, x := range r.Networks {
				n[SiteNetwork{r.Site, x.Prefix, x.Protocol, x.Ports}] = true
			}
		}
		return h, n
	}
	ha, na := index(a)
	hb, nb := index(b)
	for n := range nb {
		if !na[n] {
			c.NetworksAdded = append(c.NetworksAdded, n)
		}
	}
	for n := range na {
		if !nb[n] {
			c.NetworksRemoved = append(c.NetworksRemoved, n)
		}
	}
	sites := map[string]bool{}
	for s := range ha {
		sites[s] = true
	}
	for s := range hb {
		sites[s] = true
	}
	for s := range sites {
		before, ok := ha[s]
		if !ok {
			before = strict
		}
		after, ok := hb[s]
		if !ok {
			after = strict
		}
		if before != after {
			c.HandlingChanged = append(c.HandlingChanged, HandlingChange{s, before, after})
		}
	}
	bySite := func(x, y SiteNetwork) int {
		return cmpJoin(x.Site, y.Site, x.Prefix, y.Prefix, x.Protocol, y.Protocol, x.Ports, y.Ports)
	}
	slices.SortFunc(c.NetworksAdded, bySite)
	slices.SortFunc(c.NetworksRemoved, bySite)
	slices.SortFunc(c.HandlingChanged, func(x, y HandlingChange) int { return strings.Compare(x.Site, y.Site) })
	return c
}

// cmpJoin compares pairs of strings in turn.
func cmpJoin(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// EncodeEndpointChanges returns the JSON of what changed between two
// versions' encoded endpoint records, or nil when nothing did.
func EncodeEndpointChanges(prev, next []byte) ([]byte, error) {
	if bytes.Equal(prev, next) {
		return nil, nil
	}
	a, err := DecodeEndpoints(prev)
	if err != nil {
		return nil, err
	}
	b, err := DecodeEndpoints(next)
	if err != nil {
		return nil, err
	}
	c := DiffEndpoints(a, b)
	if c.Empty() {
		return nil, nil
	}
	return json.Marshal(c)
}
