package broker

import (
	"time"

	"github.com/chutemq/chute"
)

// timerAt returns a timer that fires at the clock's time at, and its
// channel; at once (a nil timer and a ready channel) if at has passed.
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
