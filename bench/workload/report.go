package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chutemq/chute/bench/adapters"
)

// Issue 11's comparison: eight workloads (W1–W8), each run against one
// system and reported as named figures, so that the command can take
// medians over runs and ratios against the best peer figure by figure.

// Report is what one workload measured on one system in one run.
type Report struct {
	Workload string   `json:"workload"` // "W1"
	System   string   `json:"system"`   // adapters.System.Name
	Figures  []Figure `json:"figures,omitempty"`
	// NA says why the workload does not apply to the system ("no
	// per-message delays"); Figures is then empty.
	NA string `json:"na,omitempty"`
	// Notes are facts worth printing beside the figures (duplicates
	// delivered, a phase's own rate).
	Notes []string `json:"notes,omitempty"`
}

// Figure is one measured number.
type Figure struct {
	Name  string  `json:"name"` // "confirms/s", "e2e p99 ms"
	Value float64 `json:"value"`
	// Lower means a lower value is better (latency, memory, disk);
	// otherwise higher is (rates).
	Lower bool `json:"lower_is_better,omitempty"`
}

// MarshalJSON writes an infinite value (Never) as "never": JSON has no
// infinity.
func (f Figure) MarshalJSON() ([]byte, error) {
	type plain Figure
	if math.IsInf(f.Value, 0) || math.IsNaN(f.Value) {
		return json.Marshal(struct {
			plain
			Value string `json:"value"`
		}{plain(f), "never"})
	}
	return json.Marshal(plain(f))
}

// Get returns the figure named name, if the report has it.
func (r Report) Get(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func (r *Report) rate(name string, v float64) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v})
}

func (r *Report) lower(name string, v float64) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: v, Lower: true})
}

func (r *Report) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// ms is d in milliseconds, for figures.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// perSecond is n over d; 0 for no time.
func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Never is the value of a "time until" figure whose moment did not come
// within the time the workload waited.
var Never = math.Inf(1)

// Config sizes the workloads; the zero value of a field means its default
// (the sizes).
type Config struct {
	// Size is the body size of W1–W4, W7 and W8: default 256 bytes (at
	// least 24, for the stamp).
	Size int
	// Duration is how long a producer runs in W1–W4, W7 and W8: default 5 s.
	Duration time.Duration
	// Window is the producer's window in W1–W4: default 1,000 unconfirmed.
	Window int
	// Prefetch is the consumers' prefetch in W2–W4 and W6: default 1,000.
	Prefetch int
	// Rate paces W3's producer: default 2,000 messages/s.
	Rate int
	// Subscriptions is W4's fan-out: default 4.
	Subscriptions int
	// DelayedMessages, DelaySpread and DelayBatch shape W5's burst:
	// default 10,000 messages in publishes of 100, delays uniform over
	// [0, 2 s).
	DelayedMessages int
	DelaySpread     time.Duration
	DelayBatch      int
	// PriorityMessages is W5's backlog of mixed priorities: default 1,000.
	PriorityMessages int
	// BacklogMessages and BacklogSize are W6's backlog: default 1,000,000
	// × 1 KiB. BacklogSettle is how long after the last ack W6 watches the
	// data directory: default 10 s.
	BacklogMessages int
	BacklogSize     int
	BacklogSettle   time.Duration
	// Publishers is W7's synchronous publishers: default 256.
	Publishers int
	// Queues, QueueWorkers and QueueWindow shape W8: default 1,000 queues,
	// 10 producers and 10 consumers, 100 unconfirmed per producer and a
	// prefetch of 100 per queue.
	Queues       int
	QueueWorkers int
	QueueWindow  int
	// Idle is how long a consumer waits for a message it still expects
	// before the workload fails: default 30 s.
	Idle time.Duration
	// Seed makes W5's delays and priorities reproducible: default 1.
	Seed uint64
}

// WithDefaults fills in every zero field.
func (c Config) WithDefaults() Config {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&c.Size, 256)
	c.Size = max(c.Size, stampSize)
	defd(&c.Duration, 5*time.Second)
	def(&c.Window, 1000)
	def(&c.Prefetch, 1000)
	def(&c.Rate, 2000)
	def(&c.Subscriptions, 4)
	def(&c.DelayedMessages, 10_000)
	defd(&c.DelaySpread, 2*time.Second)
	def(&c.DelayBatch, 100)
	def(&c.PriorityMessages, 1000)
	def(&c.BacklogMessages, 1_000_000)
	def(&c.BacklogSize, 1024)
	c.BacklogSize = max(c.BacklogSize, stampSize)
	defd(&c.BacklogSettle, 10*time.Second)
	def(&c.Publishers, 256)
	def(&c.Queues, 1000)
	def(&c.QueueWorkers, 10)
	c.QueueWorkers = min(c.QueueWorkers, c.Queues)
	def(&c.QueueWindow, 100)
	defd(&c.Idle, 30*time.Second)
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Workload is one of the comparison's workloads.
type Workload struct {
	ID    string // "W1"
	Title string // what the table's heading says
	// Shape describes the load with cfg's sizes, for the heading.
	Shape func(cfg Config) string
	// Run measures sys once; cfg has its defaults filled in.
	Run func(ctx context.Context, sys adapters.System, cfg Config) (Report, error)
}

// All is the comparison's workloads, in the order.
var All = []Workload{
	{"W1", "durable publish", func(c Config) string {
		return fmt.Sprintf("1 producer, window %d, %d B, %v", c.Window, c.Size, c.Duration)
	}, DurablePublish},
	{"W2", "publish + consume + ack, producer flat out", func(c Config) string {
		return fmt.Sprintf("1 producer (window %d) + 1 consumer (prefetch %d), %d B, %v", c.Window, c.Prefetch, c.Size, c.Duration)
	}, PublishConsume},
	{"W3", "publish + consume + ack, paced", func(c Config) string {
		return fmt.Sprintf("%d/s for %v, 1 consumer (prefetch %d), %d B", c.Rate, c.Duration, c.Prefetch, c.Size)
	}, Paced},
	{"W4", "fan-out", func(c Config) string {
		return fmt.Sprintf("1 producer (window %d), %d subscriptions with a consumer each, %d B, %v", c.Window, c.Subscriptions, c.Size, c.Duration)
	}, FanOut},
	{"W5", "delayed burst and priorities", func(c Config) string {
		return fmt.Sprintf("%d messages, delays uniform over 0–%v; then %d mixed priorities read with prefetch 1", c.DelayedMessages, c.DelaySpread, c.PriorityMessages)
	}, Delayed},
	{"W6", "backlog through the server", func(c Config) string {
		return fmt.Sprintf("%d × %d B filled, drained by 1 consumer (prefetch %d); disk %v after the last ack", c.BacklogMessages, c.BacklogSize, c.Prefetch, c.BacklogSettle)
	}, Backlog},
	{"W7", "many publishers", func(c Config) string {
		return fmt.Sprintf("%d goroutines, each 1 synchronous publish at a time, %d B, %v", c.Publishers, c.Size, c.Duration)
	}, ManyPublishers},
	{"W8", "many queues", func(c Config) string {
		return fmt.Sprintf("%d queues, %d producers (window %d each, round-robin) and %d consumers (prefetch %d per queue), %d B, %v",
			c.Queues, c.QueueWorkers, c.QueueWindow, c.QueueWorkers, c.QueueWindow, c.Size, c.Duration)
	}, ManyQueues},
}

// Find returns the workload with id ("W3"), case-insensitively.
func Find(id string) (Workload, bool) {
	for _, w := range All {
		if strings.EqualFold(w.ID, id) {
			return w, true
		}
	}
	return Workload{}, false
}
