package engine

import (
	"fmt"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// Pausing a queue and its circuit breaker.
//
// Both are control decisions taken outside the engine — a pause by an
// operator, a breaker transition by the broker from its statistics and
// its clock (broker/breaker.go) — and written as records (RecPause,
// RecBreaker), so that they survive a restart and replay (and will
// replicate) like any other change. The engine only keeps the resulting
// state and obeys it: Receive delivers nothing from a paused queue or one
// whose breaker is open. Nothing else changes: publishes are accepted,
// timers run, leases already held continue and settle as usual. Since
// withheld messages are never leased, they do not use up deliveries.
//
// Half-open delivers as closed does: limiting the probes is the broker's
// job (the count of probes handed out is a statistic, not state).

// BreakerState is the state of a queue's circuit breaker.
type BreakerState = chute.BreakerState

const (
	BreakerClosed   = chute.BreakerClosed
	BreakerOpen     = chute.BreakerOpen
	BreakerHalfOpen = chute.BreakerHalfOpen
)

// withheld reports whether Receive must deliver nothing from q.
func (q *queue) withheld() bool { return q.paused || q.breaker == BreakerOpen }

// Pause pauses (paused true) or resumes a queue. The record is nil when
// the queue is already in that state.
func (e *Engine) Pause(now int64, name string, paused bool) (*Record, error) {
	e.advance(now)
	q := e.queues[name]
	if q == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if q.paused == paused {
		return nil, nil
	}
	r := &Record{Type: RecPause, Time: e.now, Name: name}
	if paused {
		r.N = 1
	}
	return r, e.applyPause(r)
}

func (e *Engine) applyPause(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	if r.N != 0 && r.N != 1 {
		return fmt.Errorf("pause flag %d", r.N)
	}
	q.paused = r.N == 1
	e.wakeIfDeliverable(q)
	return nil
}

// SetBreaker moves a queue's breaker to state. Opening (or half-opening)
// needs the queue's breaker enabled; closing works on any queue. The
// record is nil when the breaker is already in that state.
func (e *Engine) SetBreaker(now int64, name string, state BreakerState) (*Record, error) {
	e.advance(now)
	q := e.queues[name]
	if q == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if state > BreakerHalfOpen {
		return nil, fmt.Errorf("%w: breaker state %d", ErrInvalidConfig, state)
	}
	if state != BreakerClosed && !q.cfg.Breaker.Enabled {
		return nil, fmt.Errorf("%w: queue %s has no circuit breaker", ErrInvalidConfig, text.Quote(name))
	}
	if q.breaker == state {
		return nil, nil
	}
	r := &Record{Type: RecBreaker, Time: e.now, Name: name, N: int64(state)}
	return r, e.applyBreaker(r)
}

func (e *Engine) applyBreaker(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	if r.N < 0 || r.N > int64(BreakerHalfOpen) {
		return fmt.Errorf("breaker state %d", r.N)
	}
	q.breaker = BreakerState(r.N)
	e.wakeIfDeliverable(q)
	return nil
}

// breakerConfigChanged follows a config update: a queue whose breaker is
// turned off is closed (it has no breaker to be open).
func (e *Engine) breakerConfigChanged(q *queue) {
	if !q.cfg.Breaker.Enabled && q.breaker != BreakerClosed {
		q.breaker = BreakerClosed
		e.wakeIfDeliverable(q)
	}
}

// wakeIfDeliverable wakes q's waiting receivers if it may deliver again
// and has something ready.
func (e *Engine) wakeIfDeliverable(q *queue) {
	if !q.withheld() && q.mask != 0 {
		e.markWake(q)
	}
}

// BreakerQueue is what the broker's breaker logic needs of one queue.
type BreakerQueue struct {
	Name   string
	Config chute.Breaker
	State  BreakerState
	Paused bool
	Acked  int64 // successes so far (QueueTotals.Acked)
	Failed int64 // failures so far: QueueTotals.Nacked + LeaseExpired
	// Returned counts deliveries handed back unstarted (neither success
	// nor failure: a half-open breaker gets such a probe back).
	Returned int64
}

// BreakerQueues calls fn for every queue whose breaker is enabled or not
// closed, in no particular order. It costs a pass over the queues.
func (e *Engine) BreakerQueues(fn func(BreakerQueue)) {
	for _, q := range e.queues {
		if !q.cfg.Breaker.Enabled && q.breaker == BreakerClosed {
			continue
		}
		fn(BreakerQueue{Name: q.name, Config: q.cfg.Breaker, State: q.breaker, Paused: q.paused,
			Acked: q.total.Acked, Failed: q.total.Nacked + q.total.LeaseExpired,
			Returned: q.total.Returned})
	}
}

// Snapshot (version 4): each queue's entry ends with one byte of control
// flags (bit 0: paused) and one byte with the breaker state.

func (q *queue) appendControl(buf []byte) []byte {
	var flags byte
	if q.paused {
		flags |= 1
	}
	return append(buf, flags, byte(q.breaker))
}

func (d *decoder) control(q *queue) {
	flags, st := d.byte(), d.byte()
	if flags&^1 != 0 || st > byte(BreakerHalfOpen) {
		d.fail("queue %q: control flags %#x, breaker %d", q.name, flags, st)
		return
	}
	q.paused = flags&1 != 0
	q.breaker = BreakerState(st)
}
