package broker

import (
	"context"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/breaker"
	"github.com/chutemq/chute/internal/engine"
)

// The server-side circuit breaker (issue 9 item 3) and pausing by hand.
//
// What is state and what is not. A pause and every breaker transition are
// records (engine.RecPause, engine.RecBreaker), committed like any other
// change: they survive a restart and replicate, and the engine obeys
// them (Receive delivers nothing from a paused queue or an open breaker).
// The statistics behind a transition (internal/breaker: the sliding
// window of successes and failures, when the breaker opened, the probes
// handed out) live in memory, and begin again at every Open. So after a
// restart an open breaker stays open, and its cool-down starts again from
// the restart; a half-open one lets Probes probes through again.
//
// Off the hot path. Nothing is counted per message: once a tick
// (breaker.Tick, and at the end of a cool-down) the breaker loop takes the
// broker's lock, and the Set diffs each breaker queue's totals against the
// last tick's. Queues without a breaker cost nothing but the pass over the
// queue map; with no breaker anywhere the loop arms no timer at all and
// sleeps until an admin command kicks it. Receive pays one length check of
// the half-open queues (breaker.Set.ProbeLimit).
//
// A manual pause wins: while a queue is paused the breaker logic leaves it
// alone (and forgets its window), and ResumeQueue closes an open or
// half-open breaker as well as clearing the pause. Changing a queue's
// breaker settings starts its statistics afresh in the state it is in
// (an open breaker's cool-down restarts); turning it off closes it (the
// engine does, in the update record). Every transition wakes the
// receivers waiting on the queue when it may deliver again (the engine
// marks the queue; afterChangeLocked wakes them).

// breakerSet is the broker's breaker bookkeeping; every field but kick is
// guarded by b.mu.
type breakerSet struct {
	breaker.Set
	kick     chan struct{} // wakes the loop: a config may have changed
	lastTick int64         // broker time of the last evaluation (tests wait for it)
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
	b.brk.lastTick = now
	moves, next := b.brk.Tick(b.eng.BreakerQueues, now)
	for _, m := range moves {
		r, err := b.eng.SetBreaker(now, m.Name, m.To)
		if err != nil {
			b.log.Warn("circuit breaker", "queue", m.Name, "to", m.To.String(), "err", err)
			continue
		}
		if _, err := b.commitLocked(r); err != nil {
			b.log.Warn("circuit breaker", "queue", m.Name, "to", m.To.String(), "err", err)
			return 0
		}
		b.log.Info("circuit breaker", "queue", m.Name, "to", m.To.String())
		if at := b.brk.Entered(m, now); at != 0 {
			next = min(next, at)
		}
	}
	return next
}

// probeLimitLocked is how many messages a receive of up to max may take
// from queue: max, unless the queue's breaker is half-open.
func (b *Broker) probeLimitLocked(queue string, max int) int { return b.brk.ProbeLimit(queue, max) }

// probesTakenLocked counts n deliveries of queue against its probes.
func (b *Broker) probesTakenLocked(queue string, n int) { b.brk.ProbesTaken(queue, n) }

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
			b.brk.Transitions[chute.BreakerClosed]++
			b.brk.Forget(name) // the next tick starts it afresh, closed
		}
		return []*engine.Record{p, c}, nil
	})
}
