package broker

import (
	"context"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// The server-side circuit breaker (issue 9 item 3) and pausing by hand.
//
// What is state and what is not. A pause and every breaker transition are
// records (engine.RecPause, engine.RecBreaker), committed like any other
// change: they survive a restart and will replicate, and the engine obeys
// them (Receive delivers nothing from a paused queue or an open breaker).
// The statistics behind a transition — the sliding window of successes and
// failures, when the breaker opened, the probes handed out — live here,
// in memory, and begin again at every Open. So after a restart an open
// breaker stays open, and its cool-down starts again from the restart; a
// half-open one lets Probes probes through again.
//
// Off the hot path. Nothing is counted per message: once a tick
// (breakerTick, and at the end of a cool-down) the breaker loop takes the
// broker's lock, and for each queue with a breaker diffs its totals
// (Acked is a success; Nacked and LeaseExpired are failures; Returned,
// a delivery handed back unstarted, is neither) against the last tick's,
// into a ring of breakerBuckets buckets spanning Breaker.Window. Queues
// without a breaker cost nothing but the pass over the queue map; with no
// breaker anywhere the loop arms no timer at all and sleeps until an
// admin command kicks it. Receive pays one length check of b.brk.probing,
// a map that holds only half-open queues.
//
// The transitions, per queue with Breaker.Enabled:
//
//	closed    → open       failures/(successes+failures) ≥ Threshold over
//	                       Window, with at least MinDeliveries settled
//	open      → half-open  Cooldown after it opened
//	half-open → closed     Probes successes since it half-opened, and no
//	                       failure
//	half-open → open       any failure since it half-opened (a new
//	                       cool-down)
//
// While half-open the broker hands out at most Probes deliveries (Receive
// is limited to the probes left; the engine delivers as if closed).
// A manual pause wins: while a queue is paused the breaker logic leaves it
// alone (and forgets its window), and ResumeQueue closes an open or
// half-open breaker as well as clearing the pause. Changing a queue's
// breaker settings starts its statistics afresh in the state it is in
// (an open breaker's cool-down restarts); turning it off closes it (the
// engine does, in the update record). Every transition wakes
// the receivers waiting on the queue when it may deliver again (the
// engine marks the queue; afterChangeLocked wakes them).

// breakerTick is how often the breaker loop evaluates the queues.
const breakerTick = time.Second

// breakerBuckets is the number of buckets the sliding window is cut into:
// the window slides by Window/breakerBuckets (at least one tick).
const breakerBuckets = 10

// breakerSet is the broker's breaker bookkeeping; every field but kick is
// guarded by b.mu.
type breakerSet struct {
	kick        chan struct{}          // wakes the loop: a config may have changed
	qs          map[string]*breakerWin // queues with a breaker enabled or not closed
	probing     map[string]*breakerWin // the half-open ones among them: Receive limits them
	gen         uint64                 // tick generation, to forget queues that left
	lastTick    int64                  // broker time of the last evaluation (tests wait for it)
	transitions [3]int64               // transitions made, by the state entered
}

// breakerWin is one queue's statistics: not state, never journaled.
type breakerWin struct {
	cfg           chute.Breaker
	state         chute.BreakerState // as last seen in (or written to) the engine
	since         int64              // when state began, or the breaker loop first saw it
	acked, failed int64              // the queue's totals at the last tick
	returned      int64
	baseAcked     int64 // half-open: totals when it half-opened
	baseFailed    int64
	probesLeft    int // half-open: deliveries still allowed
	gen           uint64
	buckets       [breakerBuckets]breakerBucket
}

type breakerBucket struct {
	epoch    int64 // time / bucket width: which slice of time it holds
	ok, fail int64
}

// startBreakers evaluates the breakers once (so that a half-open breaker
// recovered from the journal limits its probes from the first receive),
// then starts the loop.
func (b *Broker) startBreakers() {
	b.brk.kick = make(chan struct{}, 1)
	b.mu.Lock()
	next := b.breakerTickLocked()
	b.mu.Unlock()
	b.goFunc(func() { b.breakerLoop(next) })
}

// kickBreakers makes the loop look again now (after an admin change: a
// breaker may have been turned on). It never blocks.
func (b *Broker) kickBreakers() {
	select {
	case b.brk.kick <- struct{}{}:
	default:
	}
}

// mutateConfig is mutate for a command that may turn a queue's breaker
// on, change or turn it off (create, update, subscribe). When breakers is
// set (a config with the breaker on, or any update) it evaluates the
// breakers at once, so that the window of a new breaker starts now and a
// breaker turned off stops limiting probes, and kicks the loop to arm its
// timer. Creating queues without a breaker costs nothing more.
func (b *Broker) mutateConfig(ctx context.Context, breakers bool, cmd func(now int64) (*engine.Record, error)) error {
	err := b.mutate(ctx, cmd)
	if err != nil || !breakers {
		return err
	}
	b.mu.Lock()
	if b.checkLocked() == nil {
		b.breakerTickLocked()
	}
	b.mu.Unlock()
	b.kickBreakers()
	return nil
}

// breakerLoop evaluates the breakers at the times breakerTickLocked asks
// for (next: broker time, 0 for "only when kicked").
func (b *Broker) breakerLoop(next int64) {
	for {
		var at time.Time
		if next != 0 {
			at = time.Unix(0, next)
		}
		if !b.sleepUntil(at, b.brk.kick) {
			return
		}
		b.mu.Lock()
		if b.checkLocked() != nil {
			b.mu.Unlock()
			return
		}
		next = b.breakerTickLocked()
		b.mu.Unlock()
	}
}

// breakerTickLocked evaluates every queue with a breaker, commits the
// transitions, and returns when to look again (0: no breaker anywhere).
func (b *Broker) breakerTickLocked() int64 {
	now := b.nowLocked()
	s := &b.brk
	s.gen++
	s.lastTick = now
	type move struct {
		name string
		to   chute.BreakerState
		q    engine.BreakerQueue
	}
	var moves []move
	var next int64
	b.eng.BreakerQueues(func(q engine.BreakerQueue) {
		if s.qs == nil {
			s.qs = make(map[string]*breakerWin)
		}
		w := s.qs[q.Name]
		if w == nil || w.cfg != q.Config || w.state != q.State || q.Paused {
			// New, reconfigured, moved by someone else (resume, restart,
			// config update), or paused: start afresh from here.
			w = &breakerWin{cfg: q.Config}
			w.enter(q, q.State, now)
			s.qs[q.Name] = w
		}
		w.gen = s.gen
		b.syncProbingLocked(q.Name, w)
		if !q.Config.Enabled {
			return
		}
		if next == 0 {
			next = now + int64(breakerTick)
		}
		if q.Paused {
			return
		}
		to, at := w.evaluate(q, now)
		if to != w.state {
			moves = append(moves, move{q.Name, to, q})
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
	for _, m := range moves {
		r, err := b.eng.SetBreaker(now, m.name, m.to)
		if err != nil {
			b.log.Warn("circuit breaker", "queue", m.name, "to", m.to.String(), "err", err)
			continue
		}
		if _, err := b.commitLocked(r); err != nil {
			b.log.Warn("circuit breaker", "queue", m.name, "to", m.to.String(), "err", err)
			return 0
		}
		b.log.Info("circuit breaker", "queue", m.name, "to", m.to.String())
		s.transitions[m.to]++
		w := s.qs[m.name]
		w.enter(m.q, m.to, now)
		b.syncProbingLocked(m.name, w)
		if m.to == chute.BreakerOpen {
			next = min(next, now+int64(w.cfg.Cooldown))
		}
	}
	return next
}

// enter starts state st at now, with q's totals as the baseline.
func (w *breakerWin) enter(q engine.BreakerQueue, st chute.BreakerState, now int64) {
	w.state, w.since = st, now
	w.acked, w.failed, w.returned = q.Acked, q.Failed, q.Returned
	w.baseAcked, w.baseFailed = q.Acked, q.Failed
	w.buckets = [breakerBuckets]breakerBucket{}
	w.probesLeft = 0
	if st == chute.BreakerHalfOpen {
		w.probesLeft = w.cfg.Probes
	}
}

// evaluate feeds the totals since the last tick into the window and says
// which state the breaker should be in, and when to look again.
func (w *breakerWin) evaluate(q engine.BreakerQueue, now int64) (chute.BreakerState, int64) {
	ok, fail, returned := q.Acked-w.acked, q.Failed-w.failed, q.Returned-w.returned
	w.acked, w.failed, w.returned = q.Acked, q.Failed, q.Returned
	next := now + int64(breakerTick)
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

func (w *breakerWin) width() int64 {
	return max(int64(w.cfg.Window)/breakerBuckets, 1)
}

// add counts settlements into the bucket of now.
func (w *breakerWin) add(now, ok, fail int64) {
	if ok == 0 && fail == 0 {
		return
	}
	epoch := now / w.width()
	bk := &w.buckets[epoch%breakerBuckets]
	if bk.epoch != epoch {
		*bk = breakerBucket{epoch: epoch}
	}
	bk.ok += ok
	bk.fail += fail
}

// sum adds up the buckets still inside the window.
func (w *breakerWin) sum(now int64) (ok, fail int64) {
	epoch := now / w.width()
	for _, bk := range w.buckets {
		if bk.epoch > epoch-breakerBuckets && bk.epoch <= epoch {
			ok += bk.ok
			fail += bk.fail
		}
	}
	return ok, fail
}

// syncProbingLocked keeps b.brk.probing to the half-open queues.
func (b *Broker) syncProbingLocked(name string, w *breakerWin) {
	if w.state == chute.BreakerHalfOpen {
		if b.brk.probing == nil {
			b.brk.probing = make(map[string]*breakerWin)
		}
		b.brk.probing[name] = w
		return
	}
	delete(b.brk.probing, name)
}

// probeLimitLocked is how many messages a receive of up to max may take
// from queue: max, unless the queue's breaker is half-open.
func (b *Broker) probeLimitLocked(queue string, max int) int {
	if len(b.brk.probing) == 0 {
		return max
	}
	if w := b.brk.probing[queue]; w != nil {
		return min(max, w.probesLeft)
	}
	return max
}

// probesTakenLocked counts n deliveries of queue against its probes.
func (b *Broker) probesTakenLocked(queue string, n int) {
	if len(b.brk.probing) == 0 {
		return
	}
	if w := b.brk.probing[queue]; w != nil {
		w.probesLeft = max(w.probesLeft-n, 0)
	}
}

// PauseQueue stops deliveries of a queue until ResumeQueue (see
// chute.API). The pause is journaled.
func (b *Broker) PauseQueue(ctx context.Context, name string) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.Pause(now, name, true) })
}

// ResumeQueue clears a pause and closes an open or half-open breaker (see
// chute.API); both are journaled.
func (b *Broker) ResumeQueue(ctx context.Context, name string) error {
	return b.mutateMany(ctx, func(now int64) ([]*engine.Record, error) {
		p, err := b.eng.Pause(now, name, false)
		if err != nil {
			return nil, err
		}
		c, err := b.eng.SetBreaker(now, name, chute.BreakerClosed)
		if err != nil {
			return nil, err
		}
		if c != nil {
			b.brk.transitions[chute.BreakerClosed]++
			delete(b.brk.probing, name)
			delete(b.brk.qs, name) // the next tick starts it afresh, closed
		}
		return []*engine.Record{p, c}, nil
	})
}
