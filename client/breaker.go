package client

import (
	"sync"
	"time"

	"github.com/chutemq/chute"
)

// BreakerState is the state of a Runner's circuit breaker: the same
// states as the server-side breaker of a queue (chute.BreakerState). For a
// Runner, open means the handler kept failing and receiving is paused,
// and half-open that after the pause one probe message is let through,
// whose outcome closes or reopens the breaker.
type BreakerState = chute.BreakerState

// The states, as in package chute.
const (
	BreakerClosed   = chute.BreakerClosed
	BreakerOpen     = chute.BreakerOpen
	BreakerHalfOpen = chute.BreakerHalfOpen
)

// breaker opens after threshold consecutive handler failures, stays open
// for cooldown, then lets one probe through (half-open): a success closes
// it, a failure opens it again. It is told outcomes and asked how many
// messages may be taken now.
type breaker struct {
	threshold int // 0: never opens
	cooldown  time.Duration
	clock     chute.Clock

	mu        sync.Mutex
	state     BreakerState
	failures  int           // consecutive, while closed
	probing   bool          // the half-open probe is out
	openUntil time.Time     // while open
	changed   chan struct{} // closed and replaced on every state change
}

func newBreaker(threshold int, cooldown time.Duration, clock chute.Clock) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, clock: clock, changed: make(chan struct{})}
}

func (b *breaker) setLocked(s BreakerState) {
	if b.state != s {
		b.state = s
		close(b.changed)
		b.changed = make(chan struct{})
	}
}

// allowance returns how many messages may be taken now (limit when
// closed, 1 for the half-open probe, 0 when open), and a channel that is
// closed when that may change; when open it also returns how long until
// the breaker half-opens.
func (b *breaker) allowance(limit int) (n int, changed <-chan struct{}, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen {
		if d := b.openUntil.Sub(b.clock.Now()); d > 0 {
			return 0, b.changed, d
		}
		b.setLocked(BreakerHalfOpen)
	}
	switch b.state {
	case BreakerHalfOpen:
		if b.probing {
			return 0, b.changed, 0
		}
		return 1, b.changed, 0
	default:
		return limit, b.changed, 0
	}
}

// taken records that n messages were taken (the probe, when half-open).
func (b *breaker) taken(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerHalfOpen && n > 0 {
		b.probing = true
	}
}

// result records a handler outcome.
func (b *breaker) result(ok bool) {
	if b.threshold <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case ok:
		b.failures = 0
		b.probing = false
		b.setLocked(BreakerClosed)
	case b.state == BreakerHalfOpen:
		b.probing = false
		b.openLocked()
	default:
		b.failures++
		if b.failures >= b.threshold && b.state == BreakerClosed {
			b.openLocked()
		}
	}
}

func (b *breaker) openLocked() {
	b.failures = 0
	b.openUntil = b.clock.Now().Add(b.cooldown)
	b.setLocked(BreakerOpen)
}

func (b *breaker) current() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
