package broker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestPublishCounters checks the publish outcomes counted outside the
// engine: duplicates, and refusals for a full queue or an invalid message,
// per queue and per topic, and none for a target that does not exist.
func TestPublishCounters(t *testing.T) {
	opts, _ := chutetest.MemOptions(chutetest.NewFakeClock())
	b := chutetest.MustOpen(t, "data", opts)
	ctx := context.Background()
	mustCreate(t, b, "q", chute.QueueConfig{MaxMessages: 2})
	mustPublish(t, b, "q", chute.Message{ID: "a", Body: []byte("1")}, chute.Message{ID: "b", Body: []byte("2")})
	mustPublish(t, b, "q", chute.Message{ID: "a", Body: []byte("1")}) // a duplicate: not stored, not full
	if _, err := b.Publish(ctx, "q", chute.Message{Body: []byte("3")}, chute.Message{Body: []byte("4")}); !errors.Is(err, chute.ErrQueueFull) {
		t.Fatalf("publish to a full queue: %v", err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{Priority: 12}); !errors.Is(err, chute.ErrInvalidMessage) {
		t.Fatalf("publish of priority 12: %v", err)
	}
	if _, err := b.Publish(ctx, "nowhere", chute.Message{Priority: 12}); !errors.Is(err, chute.ErrInvalidMessage) {
		t.Fatalf("publish of priority 12 to nowhere: %v", err)
	}
	s, err := b.QueueStats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if s.Deduplicated != 1 || s.RejectedFull != 2 || s.RejectedInvalid != 1 {
		t.Fatalf("queue counters: dedup %d, full %d, invalid %d; want 1, 2, 1", s.Deduplicated, s.RejectedFull, s.RejectedInvalid)
	}

	if err := b.CreateTopic(ctx, "t", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, "t", chute.Message{ID: "x"})
	mustPublish(t, b, "t", chute.Message{ID: "x"}, chute.Message{ID: "x"})
	ts, err := b.Topics(ctx)
	if err != nil || len(ts) != 1 {
		t.Fatalf("topics %+v, %v", ts, err)
	}
	if ts[0].Deduplicated != 2 {
		t.Fatalf("topic duplicates %d, want 2", ts[0].Deduplicated)
	}

	// A deleted queue's counters go; a new queue of the same name starts at 0.
	if err := b.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	if s, _ := b.QueueStats(ctx, "q"); s.Deduplicated != 0 || s.RejectedFull != 0 || s.RejectedInvalid != 0 {
		t.Fatalf("a new queue inherited counters: %+v", s)
	}
}
