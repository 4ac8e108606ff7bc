package zone

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	transfers *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	tsig      *prometheus.CounterVec
	notifies  *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "zone", Name: "transfers_total",
			Help: "Zone transfers by type (axfr, ixfr; query for refused lookups) and result (full, incremental, current, refused, notauth, formerr, error)."},
			[]string{"type", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "zone", Name: "transfer_bytes_total",
			Help: "Bytes of DNS messages sent in zone transfers, by type."}, []string{"type"}),
		tsig: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "zone", Name: "tsig_requests_total",
			Help: "Signed requests by key number (as allowlist tsig list shows it; unknown for names not in the registry) and result (ok, bad, wrong_scope)."}, []string{"key", "result"}),
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "zone", Name: "notifies_total",
			Help: "NOTIFY messages by outcome: sent (each attempt), answered, refused, failed (never answered)."}, []string{"result"}),
	}
}

// Collectors are the server's metrics, to register where /metrics serves.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.transfers, s.metrics.bytes, s.metrics.tsig, s.metrics.notifies}
}
