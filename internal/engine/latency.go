package engine

import (
	"time"

	"github.com/chutemq/chute/internal/hist"
)

// Latency statistics (issue 9). They are statistics, not state: kept in
// memory beside the queues, never in a record or a checkpoint, and lost on
// restart. They are observed by the commands (Receive, Ack) — which the
// broker calls under the lock it already holds for the batch — and never
// by Apply, so that a replay does not count the past again. The engine
// stays deterministic: what it observes depends only on the times it is
// given.
//
//	wait        due time → first delivery
//	processing  delivery (lease start) → ack
//	completion  due time → ack
//
// A message's due time is its publish time, or its deliver-at time when it
// was published with a delay (the queue keeps that in q.due while the
// message lives, only for delayed messages; after a restart from a
// checkpoint the publish time stands in for it).

// Latency is the latency histograms of one queue, or of all queues.
type Latency struct {
	Wait, Processing, Completion hist.H
}

// LatencySnapshot is a copy of a Latency.
type LatencySnapshot struct {
	Wait, Processing, Completion hist.Snapshot
}

// Snapshot copies l (a nil l is empty).
func (l *Latency) Snapshot() LatencySnapshot {
	if l == nil {
		return LatencySnapshot{}
	}
	return LatencySnapshot{Wait: l.Wait.Snapshot(), Processing: l.Processing.Snapshot(), Completion: l.Completion.Snapshot()}
}

// AllLatency returns the latency histograms of every queue together
// (queues deleted since included).
func (e *Engine) AllLatency() LatencySnapshot { return e.lat.Snapshot() }

// queueLat returns q's histograms, made on first use (a queue nobody
// consumes costs nothing).
func (e *Engine) queueLat(q *queue) *Latency {
	if q.lat == nil {
		q.lat = new(Latency)
	}
	return q.lat
}

// setDue remembers the due time of a message published with a delay.
func (q *queue) setDue(seq uint64, due int64) {
	if q.due == nil {
		q.due = make(map[uint64]int64)
	}
	q.due[seq] = due
}

// dueOf is a message's due time: its deliver-at time if it was delayed,
// else its publish time.
func (q *queue) dueOf(en *entry) int64 {
	if d, ok := q.due[en.seq]; ok {
		return d
	}
	return en.pub
}

// observeDelivered counts the wait of a first delivery (l just leased at
// e.now).
func (e *Engine) observeDelivered(q *queue, l *lease) {
	if l.e.deliv != 1 {
		return
	}
	w := durationNs(e.now - q.dueOf(&l.e))
	e.queueLat(q).Wait.Observe(w)
	e.lat.Wait.Observe(w)
}

// observeAck counts the processing and completion times of an ack at
// e.now. A lease restored from a checkpoint has no start: only its
// completion counts.
func (e *Engine) observeAck(q *queue, l *lease) {
	lat := e.queueLat(q)
	if l.start != 0 {
		p := durationNs(e.now - l.start)
		lat.Processing.Observe(p)
		e.lat.Processing.Observe(p)
	}
	c := durationNs(e.now - q.dueOf(&l.e))
	lat.Completion.Observe(c)
	e.lat.Completion.Observe(c)
}

func durationNs(ns int64) time.Duration { return time.Duration(max(ns, 0)) }
