package zone

import "github.com/prometheus/client_golang/prometheus"

// Metric returns one counter of the server's, for tests.
func (s *Server) Metric(name string, labels ...string) prometheus.Counter {
	switch name {
	case "transfers":
		return s.metrics.transfers.WithLabelValues(labels...)
	case "bytes":
		return s.metrics.bytes.WithLabelValues(labels...)
	case "tsig":
		return s.metrics.tsig.WithLabelValues(labels...)
	}
	return s.metrics.notifies.WithLabelValues(labels...)
}
