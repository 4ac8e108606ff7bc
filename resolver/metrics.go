package resolver

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Query results, the values of the result label.
const (
	resultAllowed    = "allowed"     // on the list, forwarded to upstreams
	resultBlocked    = "blocked"     // enforce: answered locally
	resultRouted     = "routed"      // route: sent to filtered_upstreams
	resultWouldBlock = "would_block" // monitor: forwarded, but enforce would block
	resultNotReady   = "not_ready"   // no verified list yet
	resultRefused    = "refused"     // opcode, class or query we do not serve
	resultServfail   = "servfail"    // every upstream failed
	resultLocal      = "local"       // localhost and its reverse names (RFC 6761), answered here
)

type metrics struct {
	queries       *prometheus.CounterVec
	latency       prometheus.Histogram
	listVersion   prometheus.Gauge
	listEntries   prometheus.Gauge
	listBytes     prometheus.Gauge
	listAge       prometheus.GaugeFunc
	lastSync      prometheus.Gauge
	syncErrors    *prometheus.CounterVec
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	cacheEntries  prometheus.GaugeFunc
	cacheBytes    prometheus.GaugeFunc
	upstreamErrs  *prometheus.CounterVec
	upstreamTime  prometheus.Histogram
	fwdFallbacks  *prometheus.CounterVec
	ready         prometheus.Gauge
	reloadSeconds prometheus.Histogram
	listUpdates   *prometheus.CounterVec
	patchFailures *prometheus.CounterVec
	handler       http.Handler
	reg           *prometheus.Registry          // for metrics registered elsewhere (freshness.go)
	byResult      map[string]prometheus.Counter // resolved once: no label hashing per query
}

// count records one answered query.
func (m *metrics) count(result string, d time.Duration) {
	if c, ok := m.byResult[result]; ok {
		c.Inc()
	}
	m.latency.Observe(d.Seconds())
}

func newMetrics(listAge, cacheLen, cacheBytes func() float64) *metrics {
	reg := prometheus.NewRegistry()
	ns := "allowlist"
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "queries_total",
			Help: "Queries by result: allowed, blocked, routed, would_block, not_ready, refused, servfail, local."}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "resolver", Name: "query_duration_seconds",
			Help: "Time from receiving a query to writing its answer.", Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		listVersion: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "list_version",
			Help: "Version of the list being enforced (-1: none)."}),
		listEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "list_entries",
			Help: "Patterns in the list being enforced."}),
		listBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "list_bytes",
			Help: "Memory held by the compiled list (table and names)."}),
		listAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "list_age_seconds",
			Help: "Seconds since the registry last signed that the list held is current: its newest timestamp for that version, or the list's generated_at (-1: no list)."}, listAge),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "last_sync_timestamp_seconds",
			Help: "Unix time of the last successful contact with the registry."}),
		syncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "sync_errors_total",
			Help: "List sync failures by reason: fetch, signature, invalid, rollback, scope, equivocation, timestamp (a freshness timestamp that does not verify), cache_write, cache_invalid."}, []string{"reason"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "cache_hits_total",
			Help: "Answers served from the answer cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "cache_misses_total",
			Help: "Queries forwarded because the answer cache had nothing fresh."}),
		cacheEntries: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "cache_entries",
			Help: "Answers held in the answer cache (the fast path's packed answers and the ordinary path's upstream answers)."}, cacheLen),
		cacheBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "cache_bytes",
			Help: "Memory the answer cache counts against cache_bytes (answers and a fixed cost per entry)."}, cacheBytes),
		upstreamErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "upstream_errors_total",
			Help: "Failed exchanges with an upstream, by upstream."}, []string{"upstream"}),
		upstreamTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "resolver", Name: "upstream_duration_seconds",
			Help: "Time of successful exchanges with upstreams.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12)}),
		fwdFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "forward_fallbacks_total",
			Help: "Upstream exchanges the UDP fast path handed to the ordinary path, by reason: timeout, unreachable, answer (truncated, an unusual rcode or layout), size (too large for the client)."}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "resolver", Name: "ready",
			Help: "1 when a verified list is being enforced."}),
		reloadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "resolver", Name: "reload_duration_seconds",
			Help: "Time from the registry's answer to enforcing a new list (receive, verify, compile).", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		listUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "list_updates_total",
			Help: "New list versions enforced, by how they came: patch (rebuilt from the held list and the registry's diff) or full."}, []string{"how"}),
		patchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "resolver", Name: "patch_failures_total",
			Help: "New versions taken whole because a patch could not be used, by reason: no_base (no held list or cache file to patch), version, diff (fetching it failed), invalid (it does not fit the held list), signature (the rebuilt list does not verify), cache_write (the rebuilt list could not be written to cache_dir)."}, []string{"reason"}),
	}
	m.listVersion.Set(-1)
	m.byResult = map[string]prometheus.Counter{}
	for _, r := range []string{resultAllowed, resultBlocked, resultRouted, resultWouldBlock, resultNotReady, resultRefused, resultServfail, resultLocal} {
		m.byResult[r] = m.queries.WithLabelValues(r)
	}
	reg.MustRegister(m.queries, m.latency, m.listVersion, m.listEntries, m.listBytes, m.listAge, m.lastSync, m.syncErrors, m.cacheHits,
		m.cacheMisses, m.cacheEntries, m.cacheBytes, m.upstreamErrs, m.upstreamTime, m.fwdFallbacks, m.ready, m.reloadSeconds, m.listUpdates, m.patchFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m.reg = reg
	return m
}
