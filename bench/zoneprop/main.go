// Command zoneprop measures, for make bench, the time from the sign-off
// that reaches quorum to each DNS server enforcing it: for each round it
// proposes a site, has one department approve it, then starts the clock
// as the second (quorum) approval is sent and asks every server, every
// 10 ms, until each resolves the site's name. It prints one line per
// server: its name and the round times in milliseconds, median first.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

func main() {
	registry := flag.String("registry", "http://127.0.0.1:18300", "registry URL")
	tokenA := flag.String("token-a", "", "owner token of the first department")
	tokenB := flag.String("token-b", "", "owner token of the second department")
	deptA := flag.String("dept-a", "bench-a", "first department")
	deptB := flag.String("dept-b", "bench-b", "second department")
	servers := flag.String("servers", "", "name=host:port,... of the DNS servers to watch")
	rounds := flag.Int("rounds", 5, "rounds")
	prefix := flag.String("prefix", "zp", "site id prefix (unique per run)")
	timeout := flag.Duration("timeout", 30*time.Second, "give up on a server after this long")
	flag.Parse()

	type server struct{ name, addr string }
	var watch []server
	for _, s := range strings.Split(*servers, ",") {
		name, addr, ok := strings.Cut(s, "=")
		if !ok {
			log.Fatalf("server %q is not name=host:port", s)
		}
		watch = append(watch, server{name, addr})
	}
	times := make([][]float64, len(watch))
	for r := range *rounds {
		id := fmt.Sprintf("%s-%d", *prefix, r)
		host := id + ".example.org."
		call(*registry, "POST", "/v1/sites", *tokenA, fmt.Sprintf(`{"id":%q,"name":"Z","category":"other","domains":[%q],"owner":{"name":"bench"}}`, id, strings.TrimSuffix(host, ".")))
		call(*registry, "PUT", "/v1/sites/"+id+"/signoffs/"+*deptA, *tokenA, `{"decision":"approve"}`)
		time.Sleep(500 * time.Millisecond) // let the department-scope versions settle
		start := time.Now()
		call(*registry, "PUT", "/v1/sites/"+id+"/signoffs/"+*deptB, *tokenB, `{"decision":"approve"}`)
		var wg sync.WaitGroup
		for i, s := range watch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &dns.Client{Timeout: 500 * time.Millisecond}
				for time.Since(start) < *timeout {
					m := new(dns.Msg)
					m.SetQuestion(host, dns.TypeA)
					if a, _, err := c.Exchange(m, s.addr); err == nil && a.Rcode == dns.RcodeSuccess && len(a.Answer) > 0 {
						times[i] = append(times[i], float64(time.Since(start).Microseconds())/1000)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				times[i] = append(times[i], -1)
			}()
		}
		wg.Wait()
	}
	for i, s := range watch {
		sorted := slices.Clone(times[i])
		slices.Sort(sorted)
		med := sorted[len(sorted)/2]
		if slices.Contains(sorted, -1) {
			med = -1
		}
		fmt.Printf("%s %.0f", s.name, med)
		for _, t := range times[i] {
			fmt.Printf(" %.0f", t)
		}
		fmt.Println()
	}
}

func call(base, method, path, token, body string) {
	req, _ := http.NewRequest(method, base+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		fmt.Fprintf(os.Stderr, "%s %s: %d\n", method, path, resp.StatusCode)
		os.Exit(1)
	}
}
