package alerts

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Snapshot is the figures of the whole broker at one moment, as the owner
// hands them to Evaluator.Evaluate.
type Snapshot struct {
	// Time is when the figures were taken. Zero means "now" on the
	// evaluator's clock.
	Time time.Time
	// Queues holds one entry per queue that exists. A queue with firing
	// alerts that is missing from a snapshot resolves them.
	Queues []QueueFigures
	// Broker holds the broker-wide figures.
	Broker BrokerFigures
}

// QueueFigures is the figures of one queue. Rates and averages are over
// the last minute, as the owner computes them (internal/hist's Sub, Avg
// and Quantile do the arithmetic for latencies).
type QueueFigures struct {
	// Queue is the queue's name.
	Queue string
	// DeadLetterQueue is true when the queue is some queue's dead-letter
	// queue. Dead-letter queues are meant to sit unconsumed, so rules with
	// SkipDeadLetterQueues (queue_no_consumers) ignore them.
	DeadLetterQueue bool
	// Depth is every message in the queue: ready, delayed and in flight
	// (figure "depth").
	Depth int64
	// Ready is the messages that can be delivered now (figure "ready").
	Ready int64
	// Errors is nacks plus dead letters per minute, over the last minute
	// (figure "errors_per_minute").
	Errors float64
	// CompletionAvg is the average completion latency — from a message's
	// due time to its ack — over the last minute; 0 if nothing was acked
	// (figure "completion_avg").
	CompletionAvg time.Duration
	// ActiveConsumers is the consumers receiving from the queue now
	// (figure "consumers").
	ActiveConsumers int
	// ProcessingP99 and ProcessingAvg are the 99th percentile and the
	// mean of processing time — delivery to ack — over the last minute
	// (figures "processing_p99" and "processing_avg").
	ProcessingP99, ProcessingAvg time.Duration
	// Breaker is the queue's circuit-breaker state: 0 closed (or no
	// breaker), 1 open, 2 half-open; 0 while the queue is paused by hand,
	// which an operator chose and no alert needs to report (figure
	// "breaker_state").
	Breaker int
}

// BrokerFigures is the broker-wide figures. Producer confirm latency is
// broker-wide rather than per queue because the journal's group commit —
// one write and one fsync for every queue's records — is what it measures:
// a slow disk is one problem, not one per queue, so it raises one alert.
type BrokerFigures struct {
	// ConfirmP99 and ConfirmAvg are the 99th percentile and the mean of
	// producer confirm latency — publish received to confirm sent — over
	// the last minute (figures "confirm_p99" and "confirm_avg").
	ConfirmP99, ConfirmAvg time.Duration
}

// Figure names a number that a rule compares with its threshold.
// Durations are compared in seconds, so thresholds for latency figures are
// seconds too (a config file may write them as durations: "500ms").
type Figure string

// The figures. Queue figures give one value per queue and per-queue
// alerts; broker figures give one broker-wide alert.
const (
	FigureDepth         Figure = "depth"             // queue: messages, QueueFigures.Depth
	FigureReady         Figure = "ready"             // queue: messages, QueueFigures.Ready
	FigureErrors        Figure = "errors_per_minute" // queue: nacks + dead letters per minute
	FigureCompletionAvg Figure = "completion_avg"    // queue: seconds, due time → ack
	FigureConsumers     Figure = "consumers"         // queue: active consumers
	FigureProcessingP99 Figure = "processing_p99"    // queue: seconds, delivery → ack, p99
	FigureProcessingAvg Figure = "processing_avg"    // queue: seconds, delivery → ack, mean
	FigureBreaker       Figure = "breaker_state"     // queue: 0 closed, 1 open, 2 half-open (0 while paused)
	FigureConfirmP99    Figure = "confirm_p99"       // broker: seconds, publish → confirm, p99
	FigureConfirmAvg    Figure = "confirm_avg"       // broker: seconds, publish → confirm, mean
)

// unit says how a figure's values are printed.
type unit int

const (
	unitCount   unit = iota // whole numbers: "12345"
	unitRate                // per minute: "123.4"
	unitSeconds             // durations: "1.25s"
)

// figureInfo describes one figure: where its value comes from and how
// Prometheus computes it (see prometheus.go).
type figureInfo struct {
	unit   unit
	broker bool // broker-wide: read from BrokerFigures
	queue  func(QueueFigures) float64
	brk    func(BrokerFigures) float64
	// promql is the expression by queue (or broker-wide), with %[1]s where
	// extra label matchers go inside every selector (it is empty or
	// starts with a comma).
	promql string
}

// figures is the table of every figure. Processing and confirm latency use
// a 5-minute rate in Prometheus, because a p99 needs more samples than one
// scrape interval gives; depth, errors and completion match the broker's
// own one-minute figures.
var figures = map[Figure]figureInfo{
	FigureDepth: {unit: unitCount,
		queue:  func(q QueueFigures) float64 { return float64(q.Depth) },
		promql: `sum by (queue) (chute_queue_messages{%[1]s})`},
	FigureReady: {unit: unitCount,
		queue:  func(q QueueFigures) float64 { return float64(q.Ready) },
		promql: `sum by (queue) (chute_queue_messages{state="ready"%[1]s})`},
	FigureErrors: {unit: unitRate,
		queue: func(q QueueFigures) float64 { return q.Errors },
		// One selector over both counters, so that a queue with nacks but
		// no dead-letter series yet (or the reverse) is still counted:
		// "a + b" of two sums would drop it.
		promql: `sum by (queue) (rate({__name__=~"chute_queue_nacked_total|chute_queue_dead_lettered_total"%[1]s}[1m])) * 60`},
	FigureCompletionAvg: {unit: unitSeconds,
		queue:  func(q QueueFigures) float64 { return q.CompletionAvg.Seconds() },
		promql: `sum by (queue) (rate(chute_queue_completion_seconds_sum{%[1]s}[1m])) / sum by (queue) (rate(chute_queue_completion_seconds_count{%[1]s}[1m]))`},
	FigureConsumers: {unit: unitCount,
		queue:  func(q QueueFigures) float64 { return float64(q.ActiveConsumers) },
		promql: `sum by (queue) (chute_queue_consumers{%[1]s})`},
	FigureProcessingP99: {unit: unitSeconds,
		queue:  func(q QueueFigures) float64 { return q.ProcessingP99.Seconds() },
		promql: `histogram_quantile(0.99, sum by (le, queue) (rate(chute_queue_processing_seconds_bucket{%[1]s}[5m])))`},
	FigureProcessingAvg: {unit: unitSeconds,
		queue:  func(q QueueFigures) float64 { return q.ProcessingAvg.Seconds() },
		promql: `sum by (queue) (rate(chute_queue_processing_seconds_sum{%[1]s}[5m])) / sum by (queue) (rate(chute_queue_processing_seconds_count{%[1]s}[5m]))`},
	// chute_queue_breaker_state is 3 for a paused queue (metrics/breaker.go):
	// "!= 3" leaves paused queues out, as the broker's figure (0) does.
	FigureBreaker: {unit: unitCount,
		queue:  func(q QueueFigures) float64 { return float64(q.Breaker) },
		promql: `max by (queue) (chute_queue_breaker_state{%[1]s} != 3)`},
	FigureConfirmP99: {unit: unitSeconds, broker: true,
		brk:    func(b BrokerFigures) float64 { return b.ConfirmP99.Seconds() },
		promql: `histogram_quantile(0.99, sum by (le) (rate(chute_confirm_seconds_bucket{%[1]s}[5m])))`},
	FigureConfirmAvg: {unit: unitSeconds, broker: true,
		brk:    func(b BrokerFigures) float64 { return b.ConfirmAvg.Seconds() },
		promql: `sum(rate(chute_confirm_seconds_sum{%[1]s}[5m])) / sum(rate(chute_confirm_seconds_count{%[1]s}[5m]))`},
}

// Figures lists every figure name, sorted.
func Figures() []Figure {
	out := make([]Figure, 0, len(figures))
	for f := range figures {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Broker reports whether f is a broker-wide figure.
func (f Figure) Broker() bool { return figures[f].broker }

// valid reports whether f is a known figure.
func (f Figure) valid() bool {
	_, ok := figures[f]
	return ok
}

// of returns f's value in a queue's figures.
func (f Figure) of(q QueueFigures) float64 { return figures[f].queue(q) }

// ofBroker returns f's value in the broker's figures.
func (f Figure) ofBroker(b BrokerFigures) float64 { return figures[f].brk(b) }

// format prints a value of f for a summary: messages as whole numbers,
// rates with one decimal, latencies as durations.
func (f Figure) format(v float64) string {
	switch figures[f].unit {
	case unitSeconds:
		d := time.Duration(v * float64(time.Second))
		switch {
		case d >= time.Second:
			d = d.Round(time.Millisecond)
		case d >= time.Millisecond:
			d = d.Round(time.Microsecond)
		}
		return d.String()
	case unitRate:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// promValue is the Prometheus template that prints $value the way format
// prints a value of f.
func (f Figure) promValue() string {
	switch figures[f].unit {
	case unitSeconds:
		return `{{ humanizeDuration $value }}`
	case unitRate:
		return `{{ printf "%.1f" $value }}`
	default:
		return `{{ $value }}`
	}
}

// promExpr is f's PromQL expression with extra label matchers (empty, or
// a comma-separated list such as `queue="a"`) in every selector.
func (f Figure) promExpr(matchers string) string {
	info := figures[f]
	if matchers != "" && hasMatcherBefore(info.promql) {
		matchers = "," + matchers
	}
	return strings.ReplaceAll(fmt.Sprintf(info.promql, matchers), "{}", "") // metric{} is metric
}

// hasMatcherBefore reports whether the figure's selectors already hold a
// matcher before the %[1]s placeholder (so extra ones need a comma).
// Every selector of one figure is written the same way.
func hasMatcherBefore(tmpl string) bool {
	for i := 0; i+4 <= len(tmpl); i++ {
		if tmpl[i:i+4] == "%[1]" {
			return i > 0 && tmpl[i-1] != '{'
		}
	}
	return false
}
