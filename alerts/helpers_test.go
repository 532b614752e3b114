package alerts

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute/internal/fakeclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is the leaf fake clock (internal/fakeclock): chutetest also
// opens brokers and servers, which this package's tests do not need.
type fakeClock = fakeclock.FakeClock

func newFakeClock() *fakeClock { return fakeclock.New() }

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
