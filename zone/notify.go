package zone

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// notifyAttempts bounds the NOTIFYs sent for one version to one target:
// the first at once, then after 1, 2, 4, ... seconds (at most 60 apart),
// until one is answered, a newer version supersedes it, or these run out
// (a quarter of an hour). The secondary's SOA refresh still finds the
// version if every one is lost.
const notifyAttempts = 20

// notifier sends NOTIFY (RFC 1996) for each new version to the targets of
// its scope; a newer version of a scope replaces one still being retried.
type notifier struct {
	s       *Server
	mu      sync.Mutex
	pending map[string]*context.CancelFunc // by scope + "|" + target
	ctx     context.Context
	cancel  context.CancelFunc
}

func newNotifier(s *Server) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{s: s, pending: map[string]*context.CancelFunc{}, ctx: ctx, cancel: cancel}
}

func (n *notifier) stop() { n.cancel() }

func (n *notifier) send(scope string, version int64) {
	for _, t := range n.s.cfg.Notify {
		if len(t.Scopes) > 0 && !contains(t.Scopes, scope) {
			continue
		}
		key := scope + "|" + t.Addr
		ctx, cancel := context.WithCancel(n.ctx)
		n.mu.Lock()
		if prev, ok := n.pending[key]; ok {
			(*prev)()
		}
		n.pending[key] = &cancel
		n.mu.Unlock()
		go n.run(ctx, &cancel, key, t.Addr, scope, version)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (n *notifier) run(ctx context.Context, cancel *context.CancelFunc, key, addr, scope string, version int64) {
	defer func() {
		n.mu.Lock()
		if n.pending[key] == cancel { // not replaced by a newer version's
			delete(n.pending, key)
		}
		n.mu.Unlock()
		(*cancel)()
	}()
	m := new(dns.Msg)
	m.SetNotify(n.s.Origin(scope))
	m.Authoritative = true
	m.Answer = []dns.RR{n.s.soa(scope, version)}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	wait := time.Second
	for attempt := 1; attempt <= notifyAttempts; attempt++ {
		n.s.metrics.notifies.WithLabelValues("sent").Inc()
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if ctx.Err() != nil {
			return
		}
		if err == nil && r.Opcode == dns.OpcodeNotify {
			if r.Rcode == dns.RcodeSuccess {
				n.s.metrics.notifies.WithLabelValues("answered").Inc()
				n.s.log.Debug("notify answered", "target", addr, "scope", scope, "version", version, "attempt", attempt)
			} else {
				n.s.metrics.notifies.WithLabelValues("refused").Inc()
				n.s.log.Warn("notify refused", "target", addr, "scope", scope, "version", version, "rcode", dns.RcodeToString[r.Rcode])
			}
			return
		}
		if err == nil {
			err = &net.OpError{Op: "notify", Err: errNotFound}
		}
		n.s.log.Debug("notify unanswered", "target", addr, "scope", scope, "version", version, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Minute)
	}
	n.s.metrics.notifies.WithLabelValues("failed").Inc()
	n.s.log.Warn("notify never answered", "target", addr, "scope", scope, "version", version, "attempts", notifyAttempts)
}

func splitHost(addr string) (string, string, error) { return net.SplitHostPort(addr) }
