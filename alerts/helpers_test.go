package alerts

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a copy of internal/chutetest.FakeClock (same methods, same
// semantics). chutetest also opens brokers and servers, so importing it
// builds package broker and package server into this test; the alerts
// package must be testable on its own, whatever state those are in.
// When FakeClock moves to a leaf package, use it instead.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) chute.Timer {
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

// Advance moves the clock forward and fires every timer now due.
func (c *fakeClock) Advance(d time.Duration) {
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

type fakeTimer struct {
	c  *fakeClock
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

// recorder is a Notifier that keeps what it is told.
type recorder struct {
	mu  sync.Mutex
	got []Alert
}

func (r *recorder) Notify(a Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a)
}

// take returns the alerts notified since the last take.
func (r *recorder) take() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// rig is an evaluator under a fake clock with a recorder.
type rig struct {
	t     *testing.T
	clock *fakeClock
	rec   *recorder
	e     *Evaluator
}

func newRig(t *testing.T, cfg Config, more ...Notifier) *rig {
	t.Helper()
	r := &rig{t: t, clock: newFakeClock(), rec: &recorder{}}
	e, err := New(cfg, r.clock, append([]Notifier{r.rec}, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.e = e
	return r
}

// eval evaluates s at the clock's time, then moves the clock one second
// on, as the broker's once-a-second loop would.
func (r *rig) eval(s Snapshot) []Alert {
	r.e.Evaluate(s)
	r.clock.Advance(time.Second)
	return r.rec.take()
}

// evalN evaluates s n times and fails on any notification.
func (r *rig) evalQuiet(n int, s Snapshot, what string) {
	r.t.Helper()
	for i := range n {
		if got := r.eval(s); len(got) > 0 {
			r.t.Fatalf("%s: evaluation %d notified %+v", what, i, got)
		}
	}
}

// one fails unless got is exactly one alert of rule, queue and status.
func one(t *testing.T, got []Alert, rule, queue string, st Status) Alert {
	t.Helper()
	if len(got) != 1 || got[0].Rule != rule || got[0].Queue != queue || got[0].Status != st {
		t.Fatalf("want one %s %s/%s, got %+v", st, rule, queue, got)
	}
	return got[0]
}

// waitFor polls cond every millisecond for up to 10 s of real time (a
// deadline, not a synchronisation sleep).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
