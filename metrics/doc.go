// Package metrics exports a chute broker's statistics to Prometheus.
//
// Metrics are pulled, never pushed (STYLE.md, habit 12): the broker and
// the server count into plain fields and histograms under locks they
// already hold, and the Collector here reads one broker.Stats snapshot,
// and the server's Stats, on each scrape — nothing in this package runs on
// a message path. The journal's sync latency is the one histogram fed
// from outside: SyncHistogram.Observe is broker.Options.OnSync, called
// once per fdatasync.
//
// Names follow the Prometheus conventions: prefix chute_, base units
// (seconds, bytes), _total on counters, label queue on queue series and
// topic on topic series. The alerts package's PromQL export
// (alerts/figures.go) assumes these names; keep the two in step.
//
// Cardinality: a queue costs 16 series by default (messages and bytes by
// state, dead letters, oldest ready age, is-dead-letter, seven counters).
// Per-queue latency histograms (chute_queue_{wait,processing,completion}_seconds,
// 26 series each) are opt-in through Options.QueueHistograms; the same
// latencies over all queues (chute_{wait,processing,completion}_seconds)
// and producer confirm latency (chute_confirm_seconds) are always there.
// The alert rules completion_avg, processing_p99 and processing_avg
// exported as Prometheus rules need the per-queue histograms of the
// queues they watch.
package metrics
