// Package alerts evaluates alert rules inside the broker (issue 9, item 2)
// and notifies the log and webhooks when an alert fires and when it
// resolves.
//
// The package knows nothing of the broker, the server or Prometheus. Its
// owner (the server, server/alerts.go) takes a Snapshot of the figures an operator
// watches — per queue: depth, ready messages, nacks and dead letters per
// minute, completion and processing latency, active consumers; broker-wide:
// producer confirm latency — and hands it to Evaluator.Evaluate once a
// second. Alert state, like the statistics it is computed from, is not a
// record (shared/DESIGN.md, "Control decisions are records"): after a
// restart it is rebuilt from fresh snapshots.
//
// # Rules
//
// A Rule compares one Figure with a threshold. DefaultRules lists the
// built-in rules:
//
//	queue_depth           depth              >  10000       for 1m  warning
//	queue_errors          errors_per_minute  >  100         for 1m  warning
//	queue_completion_avg  completion_avg     >  1s          for 1m  warning
//	queue_no_consumers    consumers          <  1 while ready > 0,
//	                                         never for dead-letter queues
//	                                                        for 1m  critical
//	queue_processing_p99  processing_p99     >  2s          for 1m  warning
//	confirm_p99           confirm_p99        >  500ms       for 1m  critical
//	                      (broker-wide: one alert, not one per queue)
//	breaker_open          breaker_state      >= 1 (open or half-open;
//	                                         0 while paused by hand)
//	                                                        for 1m  warning
//
// Every rule resolves after its condition has been clear for 30 s
// (ResolveFor), with 10 % hysteresis except queue_no_consumers and
// breaker_open (whose figures are small integers: see Rule.Hysteresis).
// breaker_open does not fire for a queue paused by hand: the operator
// chose it, and the state shows in chute_queue_breaker_state (3).
//
// Why one minute: long enough to ride out a deploy (consumers reconnect in
// seconds), a burst that drains, or one slow fsync; short enough that the
// alert arrives within two minutes of the problem. Why 30 s to resolve: a
// figure that dips under the threshold for a few seconds (a consumer that
// restarts in a loop, a backlog that is drained in bursts) must not
// resolve and fire again; hysteresis handles values that hover around the
// threshold, ResolveFor handles short dips.
//
// # States
//
// The evaluator keeps one state per (rule, queue):
//
//	inactive ──condition holds──► pending (since T)
//	pending  ──condition fails──► inactive            (nothing is notified)
//	pending  ──held for For────► firing               (notify "firing" once)
//	firing   ──clear for ResolveFor──► resolved       (notify "resolved" once)
//
// "Clear" uses the hysteresis threshold: a rule "depth > 10000" with
// hysteresis 0.1 fires above 10000 and is clear only at or below 9000; a
// value between the two keeps it firing (and restarts the ResolveFor
// wait). A queue that disappears from the snapshot, or a rule that is
// disabled while firing, resolves at once. Resolved alerts are kept in a
// bounded list (Evaluator.Recent) for the API and the dashboard.
//
// # Configuration
//
// Config holds global overrides per rule, per-queue overrides (exact queue
// names and path.Match patterns), and custom rules over the same figures;
// LoadConfig and ParseConfig read it from YAML or JSON and refuse unknown
// keys. The broker can add overrides per queue at run time
// (Evaluator.SetQueueOverrides), for instance from queue attributes.
//
// # Notifiers
//
// A Notifier receives each alert when it fires and when it resolves, on
// the goroutine that called Evaluate. NewLogNotifier writes one log/slog
// line for each. NewWebhook POSTs an Alertmanager-compatible JSON payload
// from a goroutine of its own, through a bounded queue, so that a slow or
// dead receiver never holds up the evaluator or any other notifier.
//
// # Prometheus
//
// ExportPrometheus writes the same rules as a Prometheus alerting-rules
// file over the metrics that package metrics exports, for operators who
// would rather alert from Prometheus and Alertmanager.
package alerts
