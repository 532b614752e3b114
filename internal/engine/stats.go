package engine

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// QueueStats is a snapshot of one queue.
type QueueStats struct {
	Name   string
	Config QueueConfig
	Topic  string            // set for a subscription
	Filter map[string]string // a subscription's filter

	Ready, ReadyBytes       int64        // deliverable now (incl. those waiting for their ordering key)
	Delayed, DelayedBytes   int64        // waiting for a delay or retry back-off
	InFlight, InFlightBytes int64        // leased to consumers
	DeadLetters             int64        // dead letters held (when this is a dead-letter queue)
	OrderingKeys            int64        // ordering keys with messages
	DedupIDs                int64        // message IDs remembered
	Sessions                int64        // producer sessions remembered (some perhaps expired, not yet forgotten)
	DedupBytes              int64        // memory the de-dup structures hold (estimated)
	OldestReady             int64        // publish time (unix ns) of the longest-waiting ready message, 0 if none
	IsDeadLetterQueue       bool         // some queue names this one as its dead-letter queue
	Paused                  bool         // paused by hand (pause.go)
	Breaker                 BreakerState // the circuit breaker's state (pause.go)

	// Latency is the queue's latency histograms since the broker started
	// (statistics, not state: latency.go).
	Latency LatencySnapshot

	Totals Totals
}

// Public is s as chute reports it at time now, latencies aside (the
// caller's to convert).
func (s QueueStats) Public(now int64) chute.QueueStats {
	return chute.QueueStats{
		Name: s.Name, Config: s.Config, Topic: s.Topic, Filter: s.Filter,
		Ready: s.Ready, ReadyBytes: s.ReadyBytes, Delayed: s.Delayed, DelayedBytes: s.DelayedBytes,
		InFlight: s.InFlight, InFlightBytes: s.InFlightBytes, DeadLetters: s.DeadLetters,
		OrderingKeys: s.OrderingKeys, DedupIDs: s.DedupIDs, Sessions: s.Sessions, DedupBytes: s.DedupBytes,
		OldestAge: s.OldestAge(now), Totals: s.Totals, Paused: s.Paused, Breaker: s.Breaker,
	}
}

// Depth is every message in the queue.
func (s QueueStats) Depth() int64 { return s.Ready + s.Delayed + s.InFlight }

// Bytes is the blob bytes of every message in the queue.
func (s QueueStats) Bytes() int64 { return s.ReadyBytes + s.DelayedBytes + s.InFlightBytes }

// OldestAge is how long the longest-waiting ready message has waited since
// it was published, at time now.
func (s QueueStats) OldestAge(now int64) time.Duration {
	if s.OldestReady == 0 {
		return 0
	}
	return time.Duration(max(now-s.OldestReady, 0))
}

// QueueStats returns a snapshot of one queue.
func (e *Engine) QueueStats(name string) (QueueStats, error) {
	q := e.queues[name]
	if q == nil {
		return QueueStats{}, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	s := q.stats()
	s.IsDeadLetterQueue = len(e.deadLetterUsers(name)) > 0
	return s, nil
}

func (q *queue) stats() QueueStats {
	s := QueueStats{
		Name: q.name, Config: q.cfg,
		Ready: q.n.ready, ReadyBytes: q.n.readyBytes,
		Delayed: q.n.delayed, DelayedBytes: q.n.delayedBytes,
		InFlight: q.n.inflight, InFlightBytes: q.n.inflightBytes,
		DeadLetters: int64(len(q.dead)), OrderingKeys: int64(len(q.keys)),
		DedupIDs: int64(q.dedup.len()), OldestReady: q.oldestPub(),
		Sessions: int64(q.dedup.sess.len()), DedupBytes: q.dedup.bytes(),
		Totals: q.total, Latency: q.lat.Snapshot(),
		Paused: q.paused, Breaker: q.breaker,
	}
	if q.sub != nil {
		s.Topic = q.sub.topic.name
		s.Filter = maps.Clone(q.sub.filter)
	}
	return s
}

// Queues returns a snapshot of every queue, by name.
func (e *Engine) Queues() []QueueStats {
	out := make([]QueueStats, 0, len(e.queues))
	dlqs := make(map[string]bool)
	for _, q := range e.queues {
		if q.cfg.DeadLetterQueue != "" && q.cfg.DeadLetterQueue != q.name {
			dlqs[q.cfg.DeadLetterQueue] = true
		}
	}
	// Sort the queues, not their stats: a QueueStats is large (latency
	// histograms), and swapping thousands of them cost more than the rest.
	qs := make([]*queue, 0, len(e.queues))
	for _, q := range e.queues {
		qs = append(qs, q)
	}
	slices.SortFunc(qs, func(a, b *queue) int { return cmpString(a.name, b.name) })
	for _, q := range qs {
		s := q.stats()
		s.IsDeadLetterQueue = dlqs[q.name]
		out = append(out, s)
	}
	return out
}

// TopicStats is a snapshot of one topic.
type TopicStats struct {
	Name          string
	Config        TopicConfig
	Subscriptions []string // queue names, in fan-out order
	DedupIDs      int64
	Sessions      int64
	DedupBytes    int64
	Totals        TopicTotals
}

// Topics returns a snapshot of every topic, by name.
func (e *Engine) Topics() []TopicStats {
	out := make([]TopicStats, 0, len(e.topics))
	for _, t := range e.topics {
		out = append(out, t.stats())
	}
	slices.SortFunc(out, func(a, b TopicStats) int { return cmpString(a.Name, b.Name) })
	return out
}

// TopicStats returns a snapshot of one topic.
func (e *Engine) TopicStats(name string) (TopicStats, error) {
	t := e.topics[name]
	if t == nil {
		return TopicStats{}, fmt.Errorf("%w: %s", ErrTopicNotFound, text.Quote(name))
	}
	return t.stats(), nil
}

func (t *topic) stats() TopicStats {
	s := TopicStats{Name: t.name, Config: t.cfg, DedupIDs: int64(t.dedup.len()), Totals: t.total,
		Sessions: int64(t.dedup.sess.len()), DedupBytes: t.dedup.bytes()}
	for _, q := range t.subs {
		s.Subscriptions = append(s.Subscriptions, q.name)
	}
	return s
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Peek returns up to n ready messages of a queue in delivery order, without
// leasing them. Messages waiting for their ordering key are not included.
// It costs O(n log n), whatever the queue's size.
func (e *Engine) Peek(name string, n int) ([]Delivered, error) {
	q := e.queues[name]
	if q == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	var out []Delivered
	if n <= 0 {
		return nil, nil
	}
	q.walkReady(func(en *entry) bool {
		out = append(out, q.describe(en, 0))
		return len(out) < n
	})
	return out, nil
}

// heapWalker yields a seqHeap's entries in order without changing it, with
// a small heap of candidate positions.
type heapWalker struct {
	h    seqHeap
	cand []int
	init bool
}

func (w *heapWalker) peek() *entry {
	if !w.init {
		w.init = true
		if len(w.h) > 0 {
			w.cand = []int{0}
		}
	}
	if len(w.cand) == 0 {
		return nil
	}
	return &w.h[w.cand[0]]
}

func (w *heapWalker) next() {
	i := w.cand[0]
	last := len(w.cand) - 1
	w.cand[0] = w.cand[last]
	w.cand = w.cand[:last]
	heapDown(walkerOps{w}, 0)
	for _, c := range [2]int{2*i + 1, 2*i + 2} {
		if c < len(w.h) {
			w.cand = append(w.cand, c)
			heapUp(walkerOps{w}, len(w.cand)-1)
		}
	}
}

// walkerOps is the walker's candidate positions as heapSlice.
type walkerOps struct{ w *heapWalker }

func (o walkerOps) len() int           { return len(o.w.cand) }
func (o walkerOps) less(a, b int) bool { return o.w.h[o.w.cand[a]].seq < o.w.h[o.w.cand[b]].seq }
func (o walkerOps) swap(a, b int)      { o.w.cand[a], o.w.cand[b] = o.w.cand[b], o.w.cand[a] }

// HasLeases reports whether any queue has a message in flight.
func (e *Engine) HasLeases() bool {
	for _, q := range e.queues {
		if len(q.leases) > 0 {
			return true
		}
	}
	return false
}

// Counts are queue name's ready, delayed and leased messages (QueueStats'
// counts, without building the rest); ok false: no such queue.
func (e *Engine) Counts(name string) (ready, delayed, inflight int64, ok bool) {
	q := e.queues[name]
	if q == nil {
		return 0, 0, 0, false
	}
	return q.n.ready, q.n.delayed, q.n.inflight, true
}

// IsTopic says whether name is a topic.
func (e *Engine) IsTopic(name string) bool { return e.topics[name] != nil }

// Subscriptions names the subscriptions (queues) of topic name, in
// fan-out order; nil for an unknown topic.
func (e *Engine) Subscriptions(name string) []string {
	t := e.topics[name]
	if t == nil {
		return nil
	}
	out := make([]string, len(t.subs))
	for i, q := range t.subs {
		out[i] = q.name
	}
	return out
}
