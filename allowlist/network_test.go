package allowlist

import (
	"net/netip"
	"strings"
	"testing"
)

// TestNetworkValidation: each network either normalises to the given
// form or is refused with a field error naming the part that is wrong
// and saying why.
func TestNetworkValidation(t *testing.T) {
	cases := []struct {
		name     string
		in       Network
		want     Network // normalised, when accepted
		field    string  // the refused part: prefix, protocol or ports
		contains string  // in the message
	}{
		// Accepted, normalised.
		{"teams v4", Network{"52.112.0.0/14", "udp", "3478-3481"}, Network{"52.112.0.0/14", "udp", "3478-3481"}, "", ""},
		{"ports sorted and merged", Network{"52.112.0.0/14", "tcp", "443,80,3478-3481,3480-3490"}, Network{"52.112.0.0/14", "tcp", "80,443,3478-3490"}, "", ""},
		{"adjacent ranges merge", Network{"52.112.0.0/14", "udp", "3478-3479,3480"}, Network{"52.112.0.0/14", "udp", "3478-3480"}, "", ""},
		{"spaces around ports", Network{"52.112.0.0/14", "udp", " 3478 , 443 "}, Network{"52.112.0.0/14", "udp", "443,3478"}, "", ""},
		{"v4 /8", Network{"13.0.0.0/8", "tcp", "443"}, Network{"13.0.0.0/8", "tcp", "443"}, "", ""},
		{"v4 host /32", Network{"52.112.1.1/32", "tcp", "443"}, Network{"52.112.1.1/32", "tcp", "443"}, "", ""},
		{"v6 teams", Network{"2603:1063::/38", "udp", "3478-3481"}, Network{"2603:1063::/38", "udp", "3478-3481"}, "", ""},
		{"v6 /16", Network{"2a00::/16", "tcp", "443"}, Network{"2a00::/16", "tcp", "443"}, "", ""},
		{"v6 /128", Network{"2a00:1450:4009::1/128", "tcp", "443"}, Network{"2a00:1450:4009::1/128", "tcp", "443"}, "", ""},
		{"full port range", Network{"52.112.0.0/14", "tcp", "1-65535"}, Network{"52.112.0.0/14", "tcp", "1-65535"}, "", ""},
		{"single port range", Network{"52.112.0.0/14", "udp", "3478-3478"}, Network{"52.112.0.0/14", "udp", "3478"}, "", ""},
		{"next to private space", Network{"11.0.0.0/8", "tcp", "443"}, Network{"11.0.0.0/8", "tcp", "443"}, "", ""},
		{"next to CGNAT", Network{"100.128.0.0/9", "tcp", "443"}, Network{"100.128.0.0/9", "tcp", "443"}, "", ""},
		// Prefixes refused.
		{"host bits", Network{"52.112.1.0/14", "udp", "3478"}, Network{}, "prefix", "host bits set; the prefix is 52.112.0.0/14"},
		{"v6 host bits", Network{"2603:1063::1/38", "udp", "3478"}, Network{}, "prefix", "host bits"},
		{"an address", Network{"52.112.1.1", "udp", "3478"}, Network{}, "prefix", "write it as 52.112.1.1/32"},
		{"not a prefix", Network{"teams.microsoft.com", "udp", "3478"}, Network{}, "prefix", "is not an IPv4 or IPv6 prefix"},
		{"empty prefix", Network{"", "udp", "3478"}, Network{}, "prefix", "is not an IPv4 or IPv6 prefix"},
		{"v4 wider than /8", Network{"52.0.0.0/7", "udp", "3478"}, Network{}, "prefix", "/8 or longer"},
		{"v4 /0", Network{"0.0.0.0/0", "udp", "3478"}, Network{}, "prefix", "/8 or longer"},
		{"v6 wider than /16", Network{"2000::/3", "udp", "3478"}, Network{}, "prefix", "/16 or longer"},
		{"v6 ::/0", Network{"::/0", "tcp", "443"}, Network{}, "prefix", "/16 or longer"},
		{"private 10/8", Network{"10.0.0.0/8", "tcp", "443"}, Network{}, "prefix", "private"},
		{"private 172.16/12 inside", Network{"172.20.0.0/16", "tcp", "443"}, Network{}, "prefix", "private"},
		{"private 192.168", Network{"192.168.1.0/24", "tcp", "443"}, Network{}, "prefix", "private"},
		{"loopback", Network{"127.0.0.0/8", "tcp", "443"}, Network{}, "prefix", "loopback"},
		{"v6 loopback", Network{"::1/128", "tcp", "443"}, Network{}, "prefix", "loopback"},
		{"link-local", Network{"169.254.0.0/16", "tcp", "443"}, Network{}, "prefix", "link-local"},
		{"v6 link-local", Network{"fe80::/64", "tcp", "443"}, Network{}, "prefix", "link-local"},
		{"multicast", Network{"224.0.0.0/8", "udp", "5353"}, Network{}, "prefix", "multicast"},
		{"v6 multicast", Network{"ff02::/16", "udp", "5353"}, Network{}, "prefix", "multicast"},
		{"documentation", Network{"192.0.2.0/24", "tcp", "443"}, Network{}, "prefix", "documentation"},
		{"documentation 203.0.113", Network{"203.0.113.0/24", "tcp", "443"}, Network{}, "prefix", "documentation"},
		{"v6 documentation", Network{"2001:db8::/32", "tcp", "443"}, Network{}, "prefix", "documentation"},
		{"6to4 embedding loopback", Network{"2002:7f00::/24", "tcp", "443"}, Network{}, "prefix", "6to4"},
		{"all of 6to4", Network{"2002::/16", "tcp", "443"}, Network{}, "prefix", "6to4"},
		{"Teredo", Network{"2001::/32", "udp", "3478"}, Network{}, "prefix", "Teredo"},
		{"local-use NAT64", Network{"64:ff9b:1::/48", "tcp", "443"}, Network{}, "prefix", "NAT64"},
		{"site-local", Network{"fec0::/16", "tcp", "443"}, Network{}, "prefix", "site-local"},
		{"benchmarking", Network{"198.18.0.0/15", "tcp", "443"}, Network{}, "prefix", "benchmarking"},
		{"v6 benchmarking", Network{"2001:2::/48", "tcp", "443"}, Network{}, "prefix", "benchmarking"},
		{"CGNAT", Network{"100.64.0.0/10", "tcp", "443"}, Network{}, "prefix", "carrier-grade NAT"},
		{"a /8 that holds CGNAT", Network{"100.0.0.0/8", "tcp", "443"}, Network{}, "prefix", "carrier-grade NAT"},
		{"unspecified", Network{"0.0.0.0/8", "tcp", "443"}, Network{}, "prefix", "unspecified"},
		{"v6 unspecified", Network{"::/128", "tcp", "443"}, Network{}, "prefix", "unspecified"},
		{"v6 unique local", Network{"fd00::/16", "tcp", "443"}, Network{}, "prefix", "unique local"},
		{"v4-mapped v6", Network{"::ffff:52.112.0.0/110", "tcp", "443"}, Network{}, "prefix", "IPv4-mapped"},
		{"zone", Network{"fe80::%eth0/64", "tcp", "443"}, Network{}, "prefix", "IPv4 or IPv6 prefix"},
		{"leading zeros", Network{"052.112.0.0/14", "tcp", "443"}, Network{}, "prefix", "IPv4 or IPv6 prefix"},
		{"v6 not canonical", Network{"2603:1063:0::/38", "tcp", "443"}, Network{}, "prefix", "canonical form; write 2603:1063::/38"},
		{"v6 upper case", Network{"2A00::/16", "tcp", "443"}, Network{}, "prefix", "canonical form; write 2a00::/16"},
		{"broadcast", Network{"255.255.255.255/32", "tcp", "443"}, Network{}, "prefix", "reserved"},
		// Protocols refused.
		{"no protocol", Network{"52.112.0.0/14", "", "443"}, Network{}, "protocol", "tcp or udp"},
		{"icmp", Network{"52.112.0.0/14", "icmp", "443"}, Network{}, "protocol", "tcp or udp"},
		{"upper case protocol", Network{"52.112.0.0/14", "UDP", "443"}, Network{}, "protocol", "tcp or udp"},
		// Ports refused.
		{"no ports", Network{"52.112.0.0/14", "udp", ""}, Network{}, "ports", "is required"},
		{"port 0", Network{"52.112.0.0/14", "udp", "0"}, Network{}, "ports", "1-65535"},
		{"port 65536", Network{"52.112.0.0/14", "udp", "65536"}, Network{}, "ports", "1-65535"},
		{"backwards range", Network{"52.112.0.0/14", "udp", "3481-3478"}, Network{}, "ports", "runs backwards"},
		{"open range", Network{"52.112.0.0/14", "udp", "3478-"}, Network{}, "ports", "3478-3481"},
		{"negative", Network{"52.112.0.0/14", "udp", "-1"}, Network{}, "ports", "1-65535"},
		{"empty item", Network{"52.112.0.0/14", "udp", "443,,80"}, Network{}, "ports", "1-65535"},
		{"leading zero port", Network{"52.112.0.0/14", "udp", "0443"}, Network{}, "ports", "1-65535"},
		{"a name", Network{"52.112.0.0/14", "tcp", "https"}, Network{}, "ports", "1-65535"},
		{"plus sign", Network{"52.112.0.0/14", "tcp", "+443"}, Network{}, "ports", "1-65535"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, fields := NormalizeNetworks("networks", []Network{c.in})
			if c.field == "" {
				if fields != nil || len(got) != 1 || got[0] != c.want {
					t.Fatalf("got %v %v, want %v", got, fields, c.want)
				}
				return
			}
			if len(fields) != 1 || fields[0].Field != "networks[0]."+c.field || !strings.Contains(fields[0].Message, c.contains) {
				t.Fatalf("got %v %+v, want a %s error containing %q", got, fields, c.field, c.contains)
			}
		})
	}
}

// TestSiteNetworksAre422FieldErrors: NormalizeSite names each bad network
// and handling field, all at once, as an EINVALID error; good ones are
// normalised and deduplicated, handling gets its strict defaults.
func TestSiteNetworksAre422FieldErrors(t *testing.T) {
	in := SiteInput{ID: "teams", Name: "Teams", Category: "video-conferencing", Domains: []string{"*.teams.microsoft.com"}, Owner: Owner{Name: "M"},
		Networks: []Network{{"52.112.0.0/14", "udp", "3478-3481"}, {"10.0.0.0/8", "tcp", "443"}, {"52.112.0.0/14", "sctp", "0"}},
		Handling: Handling{TLSInspection: "skip", Proxy: "maybe"}}
	_, err := NormalizeSite(in)
	if ErrorCode(err) != EINVALID {
		t.Fatalf("got %v", err)
	}
	got := map[string]bool{}
	for _, f := range err.(*Error).Fields {
		got[f.Field] = true
	}
	for _, f := range []string{"networks[1].prefix", "networks[2].protocol", "networks[2].ports", "handling.tls_inspection", "handling.proxy"} {
		if !got[f] {
			t.Errorf("no error for %s in %v", f, err.(*Error).Fields)
		}
	}
	in.Networks = []Network{{"52.112.0.0/14", "udp", "3481,3478-3480"}, {"52.112.0.0/14", "udp", "3478-3481"}}
	in.Handling = Handling{}
	out, err := NormalizeSite(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Networks) != 1 || out.Networks[0].Ports != "3478-3481" || out.Handling != (Handling{TLSAllow, ProxyUse}) {
		t.Errorf("normalised to %+v", out)
	}
	in.Networks = make([]Network, MaxNetworksPerSite+1)
	if _, err := NormalizeSite(in); ErrorCode(err) != EINVALID || err.(*Error).Fields[0].Field != "networks" {
		t.Errorf("too many networks: %v", err)
	}
}

func endpointSite(revs map[int]Endpoints, signoffs ...Signoff) Site {
	s := Site{ID: "teams", Category: "video-conferencing", Status: StatusProposed, History: map[int][]string{}, EndpointHistory: revs, Signoffs: signoffs}
	for rev := range revs {
		s.History[rev] = []string{"*.teams.microsoft.com"}
		s.Revision = max(s.Revision, rev)
	}
	return s
}

func approve(dept string, rev int) Signoff {
	return Signoff{Department: dept, Decision: DecisionApprove, Revision: rev}
}

// TestEndpointSignoffRules: widening networks or relaxing handling waits
// for a new quorum while the last approved endpoints stay published;
// narrowing applies at once; suspension removes everything.
func TestEndpointSignoffRules(t *testing.T) {
	strict := Handling{TLSAllow, ProxyUse}
	relaxed := Handling{TLSBypass, ProxyDirect}
	v1 := Endpoints{Networks: []Network{{"52.112.0.0/14", "udp", "3478-3481"}}, Handling: relaxed}
	wider := Endpoints{Networks: []Network{{"52.112.0.0/14", "udp", "3478-3481"}, {"52.120.0.0/14", "udp", "3478-3481"}}, Handling: relaxed}
	morePorts := Endpoints{Networks: []Network{{"52.112.0.0/14", "udp", "443,3478-3481"}}, Handling: relaxed}
	otherProto := Endpoints{Networks: []Network{{"52.112.0.0/14", "tcp", "3478-3481"}}, Handling: relaxed}
	narrower := Endpoints{Networks: []Network{{"52.113.0.0/16", "udp", "3478"}}, Handling: Handling{TLSBypass, ProxyUse}}
	v1Strict := Endpoints{Networks: v1.Networks, Handling: strict}
	for _, c := range []struct {
		name string
		s    Site
		want Endpoints
		ok   bool
	}{
		{"approved by quorum", endpointSite(map[int]Endpoints{1: v1}, approve("a", 1), approve("b", 1)), v1, true},
		{"below quorum", endpointSite(map[int]Endpoints{1: v1}, approve("a", 1)), Endpoints{}, false},
		{"wider prefix waits", endpointSite(map[int]Endpoints{1: v1, 2: wider}, approve("a", 1), approve("b", 1)), v1, true},
		{"more ports wait", endpointSite(map[int]Endpoints{1: v1, 2: morePorts}, approve("a", 1), approve("b", 1)), v1, true},
		{"another protocol waits", endpointSite(map[int]Endpoints{1: v1, 2: otherProto}, approve("a", 1), approve("b", 1)), v1, true},
		{"relaxing handling waits", endpointSite(map[int]Endpoints{1: v1Strict, 2: v1}, approve("a", 1), approve("b", 1)), v1Strict, true},
		{"widening with a new quorum", endpointSite(map[int]Endpoints{1: v1, 2: wider}, approve("a", 2), approve("b", 2)), wider, true},
		{"half a new quorum", endpointSite(map[int]Endpoints{1: v1, 2: wider}, approve("a", 1), approve("b", 2)), v1, true},
		{"narrowing applies at once", endpointSite(map[int]Endpoints{1: v1, 2: narrower}, approve("a", 1), approve("b", 1)), narrower, true},
		{"stricter handling applies at once", endpointSite(map[int]Endpoints{1: v1, 2: v1Strict}, approve("a", 1), approve("b", 1)), v1Strict, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := PublishedEndpoints(c.s, 2)
			if ok != c.ok || (ok && !SameEndpoints(got, c.want)) {
				t.Errorf("got %+v %v, want %+v %v", got, ok, c.want, c.ok)
			}
			scopes := EndpointScopes([]Site{c.s}, []string{"a", "b", "c"}, 2)
			if c.ok && c.want.Relaxed() && (len(scopes[ScopeCommon]) != 1 || len(scopes["c"]) != 1) {
				t.Errorf("scopes %+v", scopes)
			}
		})
	}
	// Lazy consensus publishes what its revision covers, as for domains,
	// and no more; an objection ends it.
	lazy := endpointSite(map[int]Endpoints{1: v1, 2: wider})
	lazy.Consensus = 1
	if got, ok := PublishedEndpoints(lazy, 2); !ok || !SameEndpoints(got, v1) {
		t.Errorf("lazy consensus: %+v %v", got, ok)
	}
	lazy.Signoffs = []Signoff{{Department: "a", Decision: DecisionObject, Revision: 2}}
	if _, ok := PublishedEndpoints(lazy, 2); ok {
		t.Error("lazy consensus despite an objection")
	}
	// Suspension removes everything, from every scope.
	s := endpointSite(map[int]Endpoints{1: v1}, approve("a", 1), approve("b", 1))
	s.Status = StatusSuspended
	if _, ok := PublishedEndpoints(s, 2); ok {
		t.Error("a suspended site publishes endpoints")
	}
	for scope, records := range EndpointScopes([]Site{s}, []string{"a", "b"}, 2) {
		if len(records) != 0 {
			t.Errorf("suspended site in %s: %+v", scope, records)
		}
	}
	// A department's own approval: its scope lists what it approved
	// before the quorum does; an objection keeps the site out of its scope.
	s = endpointSite(map[int]Endpoints{1: v1}, approve("a", 1), Signoff{Department: "b", Decision: DecisionObject, Revision: 1})
	scopes := EndpointScopes([]Site{s}, []string{"a", "b", "c"}, 2)
	if len(scopes[ScopeCommon]) != 0 || len(scopes["a"]) != 1 || len(scopes["b"]) != 0 || len(scopes["c"]) != 0 {
		t.Errorf("department scopes %+v", scopes)
	}
}

func TestMatchEndpoint(t *testing.T) {
	eps := []Endpoint{{Site: "teams", Networks: []Network{{"52.112.0.0/14", "udp", "3478-3481"}, {"2603:1063::/38", "tcp", "443"}}}}
	for _, c := range []struct {
		ip, port string
		want     bool
	}{
		{"52.112.1.1", "udp/3478", true}, {"52.115.255.255", "udp/3481", true}, {"52.116.0.0", "udp/3478", false},
		{"52.112.1.1", "udp/3482", false}, {"52.112.1.1", "tcp/3478", false}, {"52.112.1.1", "", true},
		{"::ffff:52.112.1.1", "udp/3479", true}, {"2603:1063::5", "443", true}, {"2603:1063::5", "udp/443", false},
	} {
		proto, port := "", uint16(0)
		if c.port != "" {
			var why string
			if proto, port, why = ParseProtoPort(c.port); why != "" {
				t.Fatal(why)
			}
		}
		if _, _, ok := MatchEndpoint(eps, netip.MustParseAddr(c.ip), proto, port); ok != c.want {
			t.Errorf("%s %s: %v", c.ip, c.port, ok)
		}
	}
	for _, bad := range []string{"sctp/1", "udp/0", "udp/", "udp/70000", "3478-3479"} {
		if _, _, why := ParseProtoPort(bad); why == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestPublicAddr: the addresses the registry may connect out to, or a site
// may name, are outside every special block, IPv4-mapped forms included.
func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"52.112.1.1": true, "2603:1063::1": true, "127.0.0.1": false, "::ffff:127.0.0.1": false, "10.1.2.3": false,
		"100.64.0.1": false, "198.18.0.1": false, "192.0.0.8": false, "240.0.0.1": false, "64:ff9b::7f00:1": false,
		"2002:7f00:1::1": false, "2001::1": false, "fe80::1": false, "fd00::1": false, "::1": false, "::": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("PublicAddr(%s) = %v", a, got)
		}
	}
}
