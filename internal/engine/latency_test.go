package engine

import (
	"testing"
	"time"
)

// TestLatency checks the three latency histograms against a known
// timeline: wait from the due time (the deliver-at time for a delayed
// message) to the first delivery, processing from delivery to ack, and
// completion from the due time to the ack; a replay observes nothing.
func TestLatency(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", body("now"))
	h.mustPublish("q", PubMsg{Body: []byte("later"), DeliverAt: h.now + int64(time.Minute)})
	h.advance(2 * time.Second)
	first := h.receive("q", 1, 0) // waited 2 s
	h.advance(3 * time.Second)
	h.ack("q", first...) // processing 3 s, completion 5 s
	h.advance(time.Minute)
	second := h.receive("q", 1, 0) // due at 1 min, delivered at 1 min 5 s: waited 5 s
	h.advance(time.Second)
	if err := h.nack("q", second[0], -1, ""); err != nil { // a nack is neither processing nor completion
		t.Fatal(err)
	}
	third := h.receive("q", 1, 0) // not a first delivery: no wait observed
	h.advance(time.Second)
	h.ack("q", third...) // processing 1 s, completion 7 s (from the deliver-at time)

	l := h.stats("q").Latency
	check := func(name string, s interface {
		Avg() time.Duration
	}, count, n uint64, avg time.Duration) {
		t.Helper()
		if count != n || s.Avg() != avg {
			t.Errorf("%s: count %d avg %v, want %d and %v", name, count, s.Avg(), n, avg)
		}
	}
	check("wait", l.Wait, l.Wait.Count, 2, 3500*time.Millisecond)
	check("processing", l.Processing, l.Processing.Count, 2, 2*time.Second)
	check("completion", l.Completion, l.Completion.Count, 2, 6*time.Second)
	if all := h.e.AllLatency(); all != l {
		t.Errorf("all queues %+v, want the only queue's %+v", all, l)
	}
	if len(h.e.queues["q"].due) != 0 {
		t.Errorf("due times kept after the messages left: %v", h.e.queues["q"].due)
	}
	e2 := New()
	h.replay(e2, h.log)
	if got := e2.AllLatency(); got.Wait.Count+got.Processing.Count+got.Completion.Count != 0 {
		t.Errorf("replay observed latencies: %+v", got)
	}
	h.check()
}
