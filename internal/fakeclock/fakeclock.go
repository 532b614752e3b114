// Package fakeclock is a chute.Clock that moves only when a test says so.
// It is a leaf (it imports only package chute), so that any package's
// tests can use it; internal/chutetest re-exports it.
package fakeclock

import (
	"sync"
	"time"

	"github.com/chutemq/chute"
)

// FakeClock is a chute.Clock that moves only when told to. Timers fire
// (their channel receives) when Advance passes their deadline; a timer for
// a deadline already passed fires at once.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFakeClock starts at a fixed, arbitrary instant.
func New() *FakeClock {
	return &FakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements chute.Clock.
func (c *FakeClock) NewTimer(d time.Duration) chute.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// NewTimerAt returns a timer that fires when the clock reaches at (at once
// if it has). Arming for an instant reads no clock, so a test that moves
// the clock meanwhile cannot make the timer late, as it can with
// NewTimer(at.Sub(Now())); the broker arms its timers through it.
func (c *FakeClock) NewTimerAt(at time.Time) chute.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock forward and fires every timer now due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			continue
		}
		kept = append(kept, t)
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

// Pending is the number of armed timers; tests poll it to know that a
// goroutine has started waiting.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	c  *FakeClock
	at time.Time
	ch chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}
