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
// Cardinality: a queue costs 15 series by default (messages by state,
// oldest ready age, is-dead-letter, eight counters, consumers and
// producers; a dead-letter queue adds its dead letters) and the breaker
// state. Its detail — bytes by state, dead letters by reason, cancelled,
// de-duplicated and rejected counts, and the latency histograms
// (chute_queue_{wait,processing,completion}_seconds, 26 series each) — is
// opt-in through Options.QueueDetail or the queue attribute
// DetailAttribute; the same latencies over all queues
// (chute_{wait,processing,completion}_seconds) and producer confirm
// latency (chute_confirm_seconds) are always there.
// The alert rules completion_avg, processing_p99 and processing_avg
// exported as Prometheus rules need the per-queue histograms of the
// queues they watch.
//
// Pause and circuit breaker: one series per queue,
// chute_queue_breaker_state (0 delivering, 1 breaker open, 2 half-open,
// 3 paused by hand), rather than a gauge per state or a separate paused
// gauge, to keep within the per-queue budget; a pause wins over the
// breaker, as it does in delivery. chute_breaker_transitions_total{to} is
// broker-wide (three series). The built-in alert breaker_open watches the
// breaker (1 or 2), not a pause, which an operator chose.
package metrics
