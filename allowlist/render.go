package allowlist

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Format describes one way of publishing a list.
type Format struct {
	Name        string
	ContentType string
	// For says which consumer the format is for, in a few words.
	For string
	// render writes the list; body is its signed JSON form.
	render func(w *bytes.Buffer, l List, body []byte)
}

// Formats are the published formats, in the order documentation lists them.
var Formats = []Format{
	{"json", "application/json", "the signed canonical form; the resolver and scripts", func(w *bytes.Buffer, _ List, body []byte) { w.Write(body) }},
	{"txt", "text/plain; charset=utf-8", "one pattern per line, for scripts and humans", renderTxt},
	{"squid", "text/plain; charset=utf-8", "Squid dstdomain ACL file (acl allowed dstdomain \"/path\")", renderSquid},
	{"rpz", "text/plain; charset=utf-8", "DNS Response Policy Zone of rpz-passthru records (BIND, Unbound, PowerDNS, Knot)", renderRPZ},
	{"unbound", "text/plain; charset=utf-8", "Unbound transparent local-zones, to include in unbound.conf", renderUnbound},
	{"dnsmasq", "text/plain; charset=utf-8", "dnsmasq server=/name/# lines, forwarded to the usual upstreams", renderDnsmasq},
	{"hosts", "text/plain; charset=utf-8", "hosts-file syntax, for tools that import host lists", renderHosts},
	{"pac", "application/x-ns-proxy-autoconfig", "a proxy auto-config script: DIRECT for listed names", renderPAC},
	{"csv", "text/csv; charset=utf-8", "pattern,site,category with a header row, for spreadsheets", renderCSV},
}

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

// Render returns the list in format f. body must be the list's signed JSON.
func (f Format) Render(l List, body []byte) []byte {
	var w bytes.Buffer
	f.render(&w, l, body)
	return w.Bytes()
}

func header(w *bytes.Buffer, c string, l List, f string) {
	fmt.Fprintf(w, "%s Cross-government allow-list, format %s\n", c, f)
	fmt.Fprintf(w, "%s scope=%s version=%d generated=%s entries=%d\n", c, l.Scope, l.Version, l.GeneratedAt.UTC().Format("2006-01-02T15:04:05Z"), len(l.Entries))
	fmt.Fprintf(w, "%s sha256=%s (of the canonical entries; verify the JSON form's signature)\n", c, l.SHA256)
}

func renderTxt(w *bytes.Buffer, l List, _ []byte) {
	header(w, "#", l, "txt")
	for _, e := range l.Entries {
		w.WriteString(e.Pattern)
		w.WriteByte('\n')
	}
}

// subtrees reduces the list to the set of names whose whole subtree is
// allowed, for formats that cannot say "exactly this host". Exact entries
// are widened; the widened ones, and entries already covered by a wider
// one, are returned apart. The result is sorted and has no name below
// another.
func subtrees(l List) (names, widened []string) {
	set, wild := map[string]bool{}, map[string]bool{}
	for _, e := range l.Entries {
		name, ok := cutWildcard(e.Pattern)
		set[name] = true
		wild[name] = wild[name] || ok
	}
	for _, e := range l.Entries {
		if name, ok := cutWildcard(e.Pattern); !ok && !wild[name] && !coveredByAncestor(name, wild) {
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
func renderSquid(w *bytes.Buffer, l List, _ []byte) {
	header(w, "#", l, "squid")
	wild := map[string]bool{}
	for _, e := range l.Entries {
		if name, ok := cutWildcard(e.Pattern); ok {
			wild[name] = true
		}
	}
	var lines []string
	for _, e := range l.Entries {
		name, ok := cutWildcard(e.Pattern)
		if coveredByAncestor(name, wild) || (!ok && wild[name]) {
			continue
		}
		if ok {
			lines = append(lines, "."+name)
		} else {
			lines = append(lines, name)
		}
	}
	sort.Strings(lines)
	for _, s := range lines {
		w.WriteString(s)
		w.WriteByte('\n')
	}
}

// RPZOwners returns the owner names, relative to the zone's origin, of
// the rpz-passthru records that allow exactly the names the entries allow,
// without duplicates, sorted by name with a wildcard after its name. A subtree needs two records, one for its
// name and one for the wildcard below it.
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
	wild := map[string]bool{}
	for _, e := range entries {
		if name, ok := cutWildcard(e.Pattern); ok {
			wild[name] = true
		}
	}
	seen := map[string]bool{}
	var owners []string
	add := func(o string) {
		if !seen[o] {
			seen[o] = true
			owners = append(owners, o)
		}
	}
	for _, e := range entries {
		name, ok := cutWildcard(e.Pattern)
		if coveredByAncestor(name, wild) || (!ok && wild[name]) {
			continue
		}
		add(name)
		if ok {
			add("*." + name)
		}
	}
	// Each name, then its wildcard.
	sort.Slice(owners, func(i, j int) bool {
		a, aw := cutWildcard(owners[i])
		b, bw := cutWildcard(owners[j])
		if a != b {
			return a < b
		}
		return !aw && bw
	})
	return owners
}

// renderRPZ writes a response policy zone whose records are rpz-passthru:
// listed names are resolved normally, and the zone must come before a
// blocking zone that catches everything else. The SOA serial is the
// version.
func renderRPZ(w *bytes.Buffer, l List, _ []byte) {
	header(w, ";", l, "rpz")
	fmt.Fprintf(w, `; A passthru-only policy zone: it blocks nothing by itself. For
; default-deny, list it FIRST in the server's policy order and a blocking
; catch-all zone (one record: "* CNAME .") AFTER it; the first zone that
; matches a name decides. See docs/formats.md. For example, in BIND:
;   response-policy { zone "%[1]s.allowlist.rpz"; zone "catchall.rpz"; };
; Unbound: an rpz: clause for this zone, then one for the catch-all zone.
; PowerDNS Recursor: rpzFile() for this zone, then for the catch-all zone.
; Entries below a wildcard entry are left out: the wildcard allows them,
; and a record below it would hide it by the DNS wildcard rules.
`, l.Scope)
	w.WriteString("$TTL 300\n")
	fmt.Fprintf(w, "@ IN SOA localhost. hostmaster.localhost. %d 3600 600 86400 300\n", uint32(l.Version))
	w.WriteString("@ IN NS localhost.\n")
	for _, o := range RPZOwners(l.Entries) {
		fmt.Fprintf(w, "%s CNAME rpz-passthru.\n", o)
	}
}

func renderUnbound(w *bytes.Buffer, l List, _ []byte) {
	header(w, "#", l, "unbound")
	names, widened := subtrees(l)
	widenedNote(w, "#", widened)
	w.WriteString("# Listed zones resolve normally; pair with a default such as\n")
	w.WriteString("#   local-zone: \".\" always_nxdomain\n")
	w.WriteString("server:\n")
	for _, n := range names {
		fmt.Fprintf(w, "    local-zone: \"%s.\" transparent\n", n)
	}
}

func renderDnsmasq(w *bytes.Buffer, l List, _ []byte) {
	header(w, "#", l, "dnsmasq")
	names, widened := subtrees(l)
	widenedNote(w, "#", widened)
	w.WriteString("# Each line sends a subtree to the usual upstreams (#); pair with a\n")
	w.WriteString("# default such as address=/#/ to refuse everything else.\n")
	for _, n := range names {
		fmt.Fprintf(w, "server=/%s/#\n", n)
	}
}

// renderHosts writes hosts-file lines. Hosts files cannot express a
// subtree, so a wildcard entry is listed by its base name only; the
// header names those narrowed entries.
func renderHosts(w *bytes.Buffer, l List, _ []byte) {
	header(w, "#", l, "hosts")
	var narrowed []string
	seen := map[string]bool{}
	var names []string
	for _, e := range l.Entries {
		name, wild := cutWildcard(e.Pattern)
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
}

func renderPAC(w *bytes.Buffer, l List, _ []byte) {
	header(w, "//", l, "pac")
	exact, wild := map[string]int{}, map[string]int{}
	for _, e := range l.Entries {
		if name, ok := cutWildcard(e.Pattern); ok {
			wild[name] = 1
		} else {
			exact[name] = 1
		}
	}
	ej, _ := json.Marshal(exact)
	wj, _ := json.Marshal(wild)
	w.WriteString(`// Listed names go DIRECT. Set OTHERWISE to your department's proxy.
var ALLOWED = "DIRECT";
var OTHERWISE = "PROXY proxy.invalid:3128";
`)
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

func renderCSV(w *bytes.Buffer, l List, _ []byte) {
	c := csv.NewWriter(w)
	c.Write([]string{"pattern", "site", "category"})
	for _, e := range l.Entries {
		c.Write([]string{e.Pattern, e.Site, e.Category})
	}
	c.Flush()
}
