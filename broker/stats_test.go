package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestStatsLatency checks the latency figures of Stats and QueueStats
// against a fake clock: wait from publish to the first delivery,
// processing from delivery to ack, completion from publish to ack, and
// one confirm per publish batch.
func TestStatsLatency(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	b := chutetest.MustOpen(t, "data", opts)
	ctx := context.Background()
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")})
	mustPublish(t, b, "q", chute.Message{Body: []byte("c")})
	clock.Advance(2 * time.Second)
	ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 3, Wait: -1})
	if err != nil || len(ds) != 3 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	clock.Advance(time.Second)
	if err := b.Ack(ctx, "q", ds[0].Receipt, ds[1].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := b.Nack(ctx, "q", chute.Nack{Receipt: ds[2].Receipt}); err != nil {
		t.Fatal(err)
	}

	s := b.Stats()
	if len(s.Queues) != 2 || s.Queues[0].Name != "q" { // q and its dead-letter queue q.dlq
		t.Fatalf("queues %+v", s.Queues)
	}
	h := s.Queues[0].Histograms
	if h.Wait.Count != 3 || h.Wait.Avg() != 2*time.Second {
		t.Errorf("wait: %d, avg %v; want 3 and 2s", h.Wait.Count, h.Wait.Avg())
	}
	if h.Processing.Count != 2 || h.Processing.Avg() != time.Second {
		t.Errorf("processing: %d, avg %v; want 2 and 1s", h.Processing.Count, h.Processing.Avg())
	}
	if h.Completion.Count != 2 || h.Completion.Avg() != 3*time.Second {
		t.Errorf("completion: %d, avg %v; want 2 and 3s", h.Completion.Count, h.Completion.Avg())
	}
	if s.Latency != h {
		t.Errorf("all queues %+v, want %+v", s.Latency, h)
	}
	if s.Confirm.Count != 2 {
		t.Errorf("confirms %d, want 2 (one per publish batch)", s.Confirm.Count)
	}
	if s.Healthy != nil || s.Memory.Budget == 0 {
		t.Errorf("healthy %v, memory %+v", s.Healthy, s.Memory)
	}

	qs, err := b.QueueStats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	l := qs.Latency
	if l.Wait.Count != 3 || l.Wait.Avg != 2*time.Second || l.Completion.P50 < 2*time.Second || l.Completion.P99 > 4*time.Second {
		t.Errorf("summary %+v", l)
	}
}

// TestStatsDeadLetterQueue checks that Stats marks dead-letter queues.
func TestStatsDeadLetterQueue(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "q", chute.QueueConfig{DeadLetterQueue: "dead"})
	s := b.Stats()
	got := map[string]bool{}
	for _, q := range s.Queues {
		got[q.Name] = q.DeadLetterQueue
	}
	if len(got) != 2 || got["q"] || !got["dead"] {
		t.Errorf("dead-letter flags %v", got)
	}
}
