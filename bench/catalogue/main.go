// Command catalogue writes a synthetic YAML catalogue for benchmarks: two
// departments and enough approved sites to publish -entries patterns
// (ten per site), under example.net names.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	entries := flag.Int("entries", 100_000, "patterns to publish on the common list")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w, "departments:\n  - {id: bench-a, name: Bench A, kind: other}\n  - {id: bench-b, name: Bench B, kind: other}\nsites:")
	for s := 0; s*10 < *entries; s++ {
		fmt.Fprintf(w, "  - id: site-%d\n    name: Site %d\n    category: other\n    owner: {name: bench}\n    domains:\n", s, s)
		for d := 0; d < 10 && s*10+d < *entries; d++ {
			if d%3 == 0 {
				fmt.Fprintf(w, "      - app%d.tool%d.example.net\n", d, s)
			} else {
				fmt.Fprintf(w, "      - \"*.svc%d.tool%d.example.net\"\n", d, s)
			}
		}
		fmt.Fprintln(w, "    signoffs:\n      - {department: bench-a, decision: approve}\n      - {department: bench-b, decision: approve}")
	}
}
