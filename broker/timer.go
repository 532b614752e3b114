package broker

import (
	"time"

	"github.com/chutemq/chute"
)

// timerAt returns a timer that fires at the clock's time at, and its
// channel (the timer, schedule and breaker loops all arm through it); at once (a nil timer and a ready channel) if at has passed.
// Arming a timer reads the clock twice — once for the duration, once in
// NewTimer — and a fake clock advanced in between would set the deadline
// late by the advance, so the clock is read again after arming.
func timerAt(c chute.Clock, at time.Time) (chute.Timer, <-chan time.Time) {
	t := c.NewTimer(at.Sub(c.Now()))
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
