package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the registry's Prometheus metrics, on a registry of their
// own so that tests can run several servers in one process.
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	listVersion *prometheus.GaugeVec
	signoffs    *prometheus.CounterVec
	proposals   prometheus.Counter
	requestsIn  prometheus.Counter
	watchers    prometheus.Gauge
	handler     http.Handler
	registry    *prometheus.Registry
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "allowlist", Subsystem: "http", Name: "request_duration_seconds",
			Help: "HTTP request latency by route (watch requests include their wait).", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60}},
			[]string{"method", "route"}),
		listVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "allowlist", Name: "list_version",
			Help: "Current published version of each scope."}, []string{"scope"}),
		signoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "allowlist", Name: "signoffs_total",
			Help: "Sign-off decisions recorded, by decision (approve, object, withdraw)."}, []string{"decision"}),
		proposals: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "allowlist", Name: "proposals_total",
			Help: "Sites proposed."}),
		requestsIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "allowlist", Name: "staff_requests_total",
			Help: "Staff requests for tools."}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "allowlist", Name: "watchers",
			Help: "Clients waiting on a watch long-poll."}),
	}
	reg.MustRegister(m.requests, m.latency, m.listVersion, m.signoffs, m.proposals, m.requestsIn, m.watchers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m.registry = reg
	return m
}

// RegisterMetrics adds collectors (such as the zone-transfer server's) to
// those /metrics serves.
func (s *Server) RegisterMetrics(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.metrics.registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	// Clients choose the method: only the ones HTTP defines become label
	// values, so nobody can grow the metrics by inventing methods.
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "OTHER"
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}
