package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestShutdownReturnsLeasesUncounted (issue 8 item 6): a lease held at a
// graceful shutdown does not use up a delivery; one held at a crash does,
// so that max deliveries still stops a message that crashes its consumer.
func TestShutdownReturnsLeasesUncounted(t *testing.T) {
	ctx := chutetest.Ctx(t)
	opts, fs := chutetest.MemOptions(nil)
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{MaxDeliveries: 2, VisibilityTimeout: time.Hour})
	mustPublish(t, b, "q", chute.Message{Body: []byte("m")})
	for round := range 3 { // three graceful restarts with the message leased
		d := mustReceive(t, b, "q", chute.ReceiveOptions{})
		if d[0].Deliveries != 1 {
			t.Fatalf("round %d: delivery count %d, want 1", round, d[0].Deliveries)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b, err = broker.Open("data", opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Ack(ctx, "q", d[0].Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
			t.Fatalf("round %d: the receipt of a returned lease: %v", round, err)
		}
	}
	s, err := b.QueueStats(ctx, "q")
	if err != nil || s.Totals.Returned != 3 || s.Totals.LeaseExpired != 0 || s.Ready != 1 {
		t.Fatalf("after graceful restarts: %+v, %v", s, err)
	}

	// A crash counts the lease: twice, and the message is dead.
	for round := range 2 {
		d := mustReceive(t, b, "q", chute.ReceiveOptions{})
		if d[0].Deliveries != round+1 {
			t.Fatalf("crash round %d: delivery count %d", round, d[0].Deliveries)
		}
		if err := b.SyncJournal(ctx); err != nil {
			t.Fatal(err)
		}
		crashed := fs.CrashClone(nil)
		b.Close()
		fs = crashed
		opts.FS = fs
		b, err = broker.Open("data", opts)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer b.Close()
	s, err = b.QueueStats(ctx, "q")
	if err != nil || s.Depth() != 0 || s.Totals.LeaseExpired != 2 || s.Totals.DeadLettered != 1 {
		t.Fatalf("after two crashes: %+v, %v", s, err)
	}
	dl := mustReceive(t, b, "q.dlq", chute.ReceiveOptions{})
	if dl[0].DeadLetter == nil || dl[0].DeadLetter.Deliveries != 2 || dl[0].DeadLetter.Reason != "max-deliveries" {
		t.Fatalf("dead letter %+v", dl[0].DeadLetter)
	}
}

// TestNackUnstarted: a nack marked unstarted hands the delivery back at
// once and uncounted; mixed with other nacks and bad receipts in one call,
// each receipt gets its own outcome at its own index.
func TestNackUnstarted(t *testing.T) {
	ctx := context.Background()
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "q", chute.QueueConfig{MaxDeliveries: 1, Backoff: chute.Backoff{Kind: chute.BackoffNone}})
	mustPublish(t, b, "q", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")})
	for range 5 {
		ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 2})
		if len(ds) != 2 || ds[0].Deliveries != 1 || ds[1].Deliveries != 1 {
			t.Fatalf("%+v", ds)
		}
		err := b.Nack(ctx, "q", chute.Nack{Receipt: ds[0].Receipt, Unstarted: true, Delay: time.Hour, Error: "ignored"},
			chute.Nack{Receipt: ds[1].Receipt, Unstarted: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 2})
	if ds[0].LastError != "" {
		t.Fatalf("an unstarted return kept an error: %q", ds[0].LastError)
	}
	// One call: a stale receipt (0), an unstarted return (1), a real nack
	// (2) that uses the last delivery, a malformed receipt (3).
	stale := "1.1.1"
	err := b.Nack(ctx, "q", chute.Nack{Receipt: stale, Unstarted: true}, chute.Nack{Receipt: ds[0].Receipt, Unstarted: true},
		chute.Nack{Receipt: ds[1].Receipt, Error: "boom"}, chute.Nack{Receipt: "junk", Unstarted: true})
	var re *chute.ReceiptErrors
	if !errors.As(err, &re) || len(re.Failed) != 2 || re.Failed[0].Index != 0 || !errors.Is(re.Failed[0].Err, chute.ErrStaleReceipt) ||
		re.Failed[1].Index != 3 || !errors.Is(re.Failed[1].Err, chute.ErrInvalidReceipt) {
		t.Fatalf("mixed nack: %v", err)
	}
	s, _ := b.QueueStats(ctx, "q")
	if s.Ready != 1 || s.Totals.Returned != 11 || s.Totals.Nacked != 1 || s.Totals.DeadLettered != 1 {
		t.Fatalf("stats %+v", s)
	}
}
