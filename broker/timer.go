package broker

import (
	"time"

	"github.com/chutemq/chute"
)

// instantClock is a Clock that can arm a timer for an instant instead of
// a duration (internal/fakeclock's can).
type instantClock interface {
	NewTimerAt(at time.Time) chute.Timer
}

// timerAt returns a timer that fires at the clock's time at, and its
// channel (the timer, schedule and breaker loops all arm through it); at
// once (a nil timer and a ready channel) if at has passed.
//
// Arming for a duration reads the clock twice — once for the duration,
// once in NewTimer — and a clock that moves in between sets the deadline
// late by the move. For the system clock that is the nanoseconds between
// two reads, far below a timer's own slack. A test's fake clock moves in
// steps, and a step taken in between left the timer armed past the
// instant the test then moved to: the wake-up the test waited for never
// came (TestPriorityNoInversion caught the timer loop re-arming after a
// nack while the test advanced to the next due time; checking the clock
// again after arming catches only a step past at). So a clock that can arm
// for an instant does, reading no clock at all.
func timerAt(c chute.Clock, at time.Time) (chute.Timer, <-chan time.Time) {
	var t chute.Timer
	if ic, ok := c.(instantClock); ok {
		t = ic.NewTimerAt(at)
	} else {
		t = c.NewTimer(at.Sub(c.Now()))
	}
	if c.Now().Before(at) {
		return t, t.C()
	}
	t.Stop()
	ready := make(chan time.Time, 1)
	ready <- at
	return nil, ready
}

// sleepUntil waits until the clock reaches at (for ever if at is zero), a
// kick arrives, or the broker closes: false when it closed. The schedule
// and breaker loops sleep in it.
func (b *Broker) sleepUntil(at time.Time, kick <-chan struct{}) bool {
	var tc <-chan time.Time
	if !at.IsZero() {
		t, c := timerAt(b.opts.Clock, at)
		if t != nil {
			defer t.Stop()
		}
		tc = c
	}
	select {
	case <-tc:
	case <-kick:
	case <-b.done:
		return false
	}
	return true
}
