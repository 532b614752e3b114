package engine

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

func (h *harness) pause(name string, paused bool) {
	h.t.Helper()
	r, err := h.e.Pause(h.now, name, paused)
	if err != nil {
		h.t.Fatalf("pause %s %v: %v", name, paused, err)
	}
	h.commit(r)
}

func (h *harness) setBreaker(name string, st BreakerState) {
	h.t.Helper()
	r, err := h.e.SetBreaker(h.now, name, st)
	if err != nil {
		h.t.Fatalf("breaker %s %v: %v", name, st, err)
	}
	h.commit(r)
}

var breakerOn = QueueConfig{Breaker: chute.Breaker{Enabled: true}}

func TestPauseWithholdsWithoutCountingDeliveries(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 2, VisibilityTimeout: time.Second})
	h.mustPublish("q", body("a"))
	h.pause("q", true)
	h.mustPublish("q", body("b")) // publishes are still accepted
	for range 5 {
		if ds := h.receive("q", 10, 0); len(ds) != 0 {
			t.Fatalf("paused queue delivered %v", h.bodies(ds))
		}
		h.advance(2 * time.Second)
	}
	s := h.stats("q")
	if !s.Paused || s.Ready != 2 || s.Totals.Delivered != 0 || s.Totals.DeadLettered != 0 {
		t.Fatalf("stats while paused %+v", s)
	}
	if r, err := h.e.Pause(h.now, "q", true); r != nil || err != nil {
		t.Fatalf("pausing twice: %v %v", r, err)
	}
	h.pause("q", false)
	ds := h.receive("q", 10, 0)
	if got := h.bodies(ds); len(got) != 2 || ds[0].Counted != 1 || ds[1].Counted != 1 {
		t.Fatalf("after resume %v %+v", got, ds)
	}
	if s := h.stats("q"); s.Paused {
		t.Fatal("still paused")
	}
	h.check()
}

func TestPauseKeepsLeasesGoing(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", body("a"))
	ds := h.receive("q", 1, 0)
	h.pause("q", true)
	if errs := h.ack("q", ds...); errs[0] != nil {
		t.Fatalf("ack while paused: %v", errs[0])
	}
	h.check()
}

func TestBreakerStates(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", breakerOn)
	h.mustCreateQueue("plain", QueueConfig{})
	h.mustPublish("q", body("1"), body("2"), body("3"))
	h.setBreaker("q", BreakerOpen)
	if ds := h.receive("q", 10, 0); len(ds) != 0 {
		t.Fatalf("open breaker delivered %v", h.bodies(ds))
	}
	if s := h.stats("q"); s.Breaker != BreakerOpen || s.Totals.Delivered != 0 {
		t.Fatalf("stats %+v", s)
	}
	h.setBreaker("q", BreakerHalfOpen)
	// Half-open: the engine delivers (the broker limits the probes).
	if ds := h.receive("q", 1, 0); len(ds) != 1 || ds[0].Counted != 1 {
		t.Fatalf("half-open delivered %+v", ds)
	}
	h.setBreaker("q", BreakerClosed)
	if _, err := h.e.SetBreaker(h.now, "plain", BreakerOpen); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("opening a queue without a breaker: %v", err)
	}
	if _, err := h.e.SetBreaker(h.now, "nope", BreakerOpen); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("unknown queue: %v", err)
	}
	h.check()
}

func TestBreakerClosedWhenDisabled(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", breakerOn)
	h.mustPublish("q", body("1"))
	h.setBreaker("q", BreakerOpen)
	r, err := h.e.UpdateQueue(h.now, "q", QueueConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	if s := h.stats("q"); s.Breaker != BreakerClosed {
		t.Fatalf("breaker %v after it was turned off", s.Breaker)
	}
	woke := false
	h.e.DrainWakeups(func(q string) { woke = woke || q == "q" })
	if !woke {
		t.Fatal("closing the breaker did not wake the queue")
	}
	if ds := h.receive("q", 1, 0); len(ds) != 1 {
		t.Fatal("nothing delivered after the breaker closed")
	}
	h.check()
}

func TestPauseAndBreakerSurviveSnapshotAndReplay(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("a", breakerOn)
	h.mustCreateQueue("b", breakerOn)
	h.mustCreateQueue("c", QueueConfig{})
	h.mustPublish("a", body("1"))
	h.setBreaker("a", BreakerOpen)
	h.setBreaker("b", BreakerHalfOpen)
	h.pause("c", true)
	h.check() // replay and snapshot at several points
	e2, err := Restore(bytes.Join(h.e.Snapshot(1<<10), nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]QueueStats{
		"a": {Breaker: BreakerOpen}, "b": {Breaker: BreakerHalfOpen}, "c": {Paused: true},
	} {
		s, _ := e2.QueueStats(name)
		if s.Breaker != want.Breaker || s.Paused != want.Paused {
			t.Fatalf("%s restored as paused=%v breaker=%v", name, s.Paused, s.Breaker)
		}
	}
	if _, ds, _ := e2.Receive(h.now, "a", 1, 0); len(ds) != 0 {
		t.Fatal("restored open breaker delivered")
	}
}

func TestPauseRecordCodec(t *testing.T) {
	for _, r := range []*Record{
		{Type: RecPause, Time: 5, Name: "q", N: 1},
		{Type: RecBreaker, Time: 6, Name: "q", N: int64(BreakerHalfOpen)},
	} {
		got, err := Decode(r.Encode(nil))
		if err != nil || got.Type != r.Type || got.Name != r.Name || got.N != r.N || got.Time != r.Time {
			t.Fatalf("%v: decoded %+v, %v", r.Type, got, err)
		}
	}
	e := New()
	if _, err := e.CreateQueue(1, "q", QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Record{
		{Type: RecPause, Time: 2, Name: "q", N: 2},
		{Type: RecBreaker, Time: 2, Name: "q", N: 3},
		{Type: RecPause, Time: 2, Name: "nope", N: 1},
	} {
		if err := e.Apply(r, 0); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("apply %+v: %v", r, err)
		}
	}
}
