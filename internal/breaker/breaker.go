// Package breaker is the circuit breaker's bookkeeping (issue 9 item 3):
// the sliding window of each queue's successes and failures, when a
// breaker opened, the probes handed out while half-open, and the
// transitions those call for. It is not state: whoever commits changes
// (the broker, a cluster's leader) scans the engine's breaker queues with
// a Set at each tick, commits the moves Tick returns as records or
// commands (engine.SetBreaker), and reports each one done (Entered). The
// transitions, per queue with Breaker.Enabled:
//
//	closed    → open       failures/(successes+failures) ≥ Threshold over
//	                       Window, with at least MinDeliveries settled
//	open      → half-open  Cooldown after it opened
//	half-open → closed     Probes successes since it half-opened, and no
//	                       failure
//	half-open → open       any failure since it half-opened (a new
//	                       cool-down)
//
// While half-open at most Probes deliveries go out (ProbeLimit,
// ProbesTaken). A manual pause wins: while a queue is paused its window
// is forgotten. Acked is a success; Nacked and LeaseExpired are failures;
// Returned, a delivery handed back unstarted, is neither. Not safe for
// concurrent use.
package breaker

import (
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// Tick is how often the breakers are evaluated.
const Tick = time.Second

// buckets is the number of buckets the sliding window is cut into: the
// window slides by Window/buckets (at least one tick).
const buckets = 10

// Set is the bookkeeping of every queue with a breaker.
type Set struct {
	qs          map[string]*win // queues with a breaker enabled or not closed
	probing     map[string]*win // the half-open ones among them
	gen         uint64          // tick generation, to forget queues that left
	Transitions [3]int64        // transitions made, by the state entered
}

// win is one queue's statistics.
type win struct {
	cfg           chute.Breaker
	state         chute.BreakerState // as last seen in (or written to) the engine
	since         int64              // when state began, or the Set first saw it
	acked, failed int64              // the queue's totals at the last tick
	returned      int64
	baseAcked     int64 // half-open: totals when it half-opened
	baseFailed    int64
	probesLeft    int // half-open: deliveries still allowed
	gen           uint64
	buckets       [buckets]bucket
}

type bucket struct {
	epoch    int64 // time / bucket width: which slice of time it holds
	ok, fail int64
}

// Move is a transition a tick found due: queue Name's breaker to To (Q
// is the queue as the tick saw it).
type Move struct {
	Name string
	To   chute.BreakerState
	Q    engine.BreakerQueue
}

// Tick evaluates every queue visit reports (engine.BreakerQueues) at now,
// and returns the transitions due and when to look again (0: no breaker
// anywhere; the caller looks again when a config changes).
func (s *Set) Tick(visit func(func(engine.BreakerQueue)), now int64) (moves []Move, next int64) {
	s.gen++
	visit(func(q engine.BreakerQueue) {
		if s.qs == nil {
			s.qs = make(map[string]*win)
		}
		w := s.qs[q.Name]
		if w == nil || w.cfg != q.Config || w.state != q.State || q.Paused {
			// New, reconfigured, moved by someone else (resume, restart,
			// config update), or paused: start afresh from here.
			w = &win{cfg: q.Config}
			w.enter(q, q.State, now)
			s.qs[q.Name] = w
		}
		w.gen = s.gen
		s.syncProbing(q.Name, w)
		if !q.Config.Enabled {
			return
		}
		if next == 0 {
			next = now + int64(Tick)
		}
		if q.Paused {
			return
		}
		to, at := w.evaluate(q, now)
		if to != w.state {
			moves = append(moves, Move{q.Name, to, q})
		}
		if next == 0 || at < next {
			next = at
		}
	})
	for name, w := range s.qs {
		if w.gen != s.gen {
			delete(s.qs, name)
			delete(s.probing, name)
		}
	}
	return moves, next
}

// Entered records that m was committed at now, and returns when to look
// again at the latest for it (0: at the next tick).
func (s *Set) Entered(m Move, now int64) int64 {
	s.Transitions[m.To]++
	w := s.qs[m.Name]
	if w == nil {
		return 0
	}
	w.enter(m.Q, m.To, now)
	s.syncProbing(m.Name, w)
	if m.To == chute.BreakerOpen {
		return now + int64(w.cfg.Cooldown)
	}
	return 0
}

// Forget starts queue's statistics afresh at the next tick (after a
// resume closed its breaker by hand).
func (s *Set) Forget(queue string) {
	delete(s.probing, queue)
	delete(s.qs, queue)
}

// ProbeLimit is how many messages a receive of up to max may take from
// queue: max, unless the queue's breaker is half-open.
func (s *Set) ProbeLimit(queue string, max int) int {
	if len(s.probing) == 0 {
		return max
	}
	if w := s.probing[queue]; w != nil {
		return min(max, w.probesLeft)
	}
	return max
}

// ProbesTaken counts n deliveries of queue against its probes.
func (s *Set) ProbesTaken(queue string, n int) {
	if len(s.probing) == 0 {
		return
	}
	if w := s.probing[queue]; w != nil {
		w.probesLeft = max(w.probesLeft-n, 0)
	}
}

// enter starts state st at now, with q's totals as the baseline.
func (w *win) enter(q engine.BreakerQueue, st chute.BreakerState, now int64) {
	w.state, w.since = st, now
	w.acked, w.failed, w.returned = q.Acked, q.Failed, q.Returned
	w.baseAcked, w.baseFailed = q.Acked, q.Failed
	w.buckets = [buckets]bucket{}
	w.probesLeft = 0
	if st == chute.BreakerHalfOpen {
		w.probesLeft = w.cfg.Probes
	}
}

// evaluate feeds the totals since the last tick into the window and says
// which state the breaker should be in, and when to look again.
func (w *win) evaluate(q engine.BreakerQueue, now int64) (chute.BreakerState, int64) {
	ok, fail, returned := q.Acked-w.acked, q.Failed-w.failed, q.Returned-w.returned
	w.acked, w.failed, w.returned = q.Acked, q.Failed, q.Returned
	next := now + int64(Tick)
	switch w.state {
	case chute.BreakerClosed:
		w.add(now, ok, fail)
		ok, fail = w.sum(now)
		if settled := ok + fail; settled > 0 && settled >= int64(w.cfg.MinDeliveries) &&
			float64(fail) >= w.cfg.Threshold*float64(settled) {
			return chute.BreakerOpen, next
		}
	case chute.BreakerOpen:
		end := w.since + int64(w.cfg.Cooldown)
		if now >= end {
			return chute.BreakerHalfOpen, next
		}
		next = min(next, end)
	case chute.BreakerHalfOpen:
		// A probe handed back unstarted proved nothing: it may go again.
		w.probesLeft = min(w.probesLeft+int(returned), w.cfg.Probes)
		switch {
		case q.Failed > w.baseFailed:
			return chute.BreakerOpen, next
		case q.Acked-w.baseAcked >= int64(w.cfg.Probes):
			return chute.BreakerClosed, next
		}
	}
	return w.state, next
}

func (w *win) width() int64 {
	return max(int64(w.cfg.Window)/buckets, 1)
}

// add counts settlements into the bucket of now.
func (w *win) add(now, ok, fail int64) {
	if ok == 0 && fail == 0 {
		return
	}
	epoch := now / w.width()
	bk := &w.buckets[epoch%buckets]
	if bk.epoch != epoch {
		*bk = bucket{epoch: epoch}
	}
	bk.ok += ok
	bk.fail += fail
}

// sum adds up the buckets still inside the window.
func (w *win) sum(now int64) (ok, fail int64) {
	epoch := now / w.width()
	for _, bk := range w.buckets {
		if bk.epoch > epoch-buckets && bk.epoch <= epoch {
			ok += bk.ok
			fail += bk.fail
		}
	}
	return ok, fail
}

// syncProbing keeps s.probing to the half-open queues.
func (s *Set) syncProbing(name string, w *win) {
	if w.state == chute.BreakerHalfOpen {
		if s.probing == nil {
			s.probing = make(map[string]*win)
		}
		s.probing[name] = w
		return
	}
	delete(s.probing, name)
}
