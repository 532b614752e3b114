package broker_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// TestRestartKeepsEverything: everything the engine knows survives a
// restart except leases, whose messages are ready again.
func TestRestartKeepsEverything(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	ctx := context.Background()
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{MaxDeliveries: 3, VisibilityTimeout: time.Minute, DedupWindow: 2 * time.Hour})
	mustCreate(t, b, "dl", chute.QueueConfig{MaxDeliveries: 1})
	first := mustPublish(t, b, "q",
		chute.Message{Body: []byte("low"), ID: "p-1"},
		chute.Message{Body: []byte("high"), Priority: 7, Key: "k"},
		chute.Message{Body: []byte("delayed"), Delay: time.Hour},
		chute.Message{Body: []byte("ttl"), TTL: 2 * time.Hour})
	leased := mustReceive(t, b, "q", chute.ReceiveOptions{})
	if string(leased[0].Body) != "high" {
		t.Fatalf("got %q", leased[0].Body)
	}
	mustPublish(t, b, "dl", chute.Message{Body: []byte("dies")})
	d := mustReceive(t, b, "dl", chute.ReceiveOptions{})[0]
	if err := b.Nack(ctx, "dl", chute.Nack{Receipt: d.Receipt, Error: "bad"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(30 * time.Minute)
	b = chutetest.MustOpen(t, "data", opts)
	s, err := b.QueueStats(ctx, "q")
	if err != nil || s.Ready != 3 || s.Delayed != 1 || s.InFlight != 0 || s.OrderingKeys != 1 {
		t.Fatalf("after restart %+v %v", s, err)
	}
	// The lease ended with the process; a graceful close handed it back
	// uncounted (issue 8 item 6), so this delivery is again the first that
	// counts (a crash would have counted it: see TestShutdownReturnsLeasesUncounted).
	again := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
	if got := bodies(again); !slices.Equal(got, []string{"high", "low", "ttl"}) {
		t.Fatalf("after restart %v", got)
	}
	if again[0].Deliveries != 1 {
		t.Fatalf("delivery count %d after a graceful restart, want 1", again[0].Deliveries)
	}
	for _, d := range again {
		if err := b.Ack(ctx, "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	// The de-dup window survived.
	if r := mustPublish(t, b, "q", chute.Message{Body: []byte("low again"), ID: "p-1"}); !r[0].Duplicate || r[0].Seq != first[0].Seq {
		t.Fatalf("duplicate after restart: %+v", r)
	}
	// The dead letter survived with its reason.
	dl := mustReceive(t, b, "dl.dlq", chute.ReceiveOptions{})
	if len(dl) != 1 || dl[0].DeadLetter.LastError != "bad" {
		t.Fatalf("dead letter after restart %+v", dl)
	}
	// The delay keeps its original due time: 30 more minutes.
	clock.Advance(29 * time.Minute)
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{}); len(ds) != 0 {
		t.Fatalf("delayed message came early: %v", bodies(ds))
	}
	clock.Advance(time.Minute)
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{}); len(ds) != 1 || string(ds[0].Body) != "delayed" {
		t.Fatalf("delayed message: %v", bodies(ds))
	}
}

// TestCrashKeepsConfirmed: the process dies (no Close) with publishes and
// acks confirmed and more in flight; a reopen on what the disk holds has
// every confirmed publish and none of the confirmed acks.
func TestCrashKeepsConfirmed(t *testing.T) {
	opts, fs := chutetest.MemOptions(nil)
	ctx := context.Background()
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 50 {
		mustPublish(t, b, "q", chute.Message{Body: []byte{byte(i)}})
	}
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 20})
	rs := make([]string, 10)
	for i := range rs {
		rs[i] = ds[i].Receipt
	}
	if err := b.Ack(ctx, "q", rs...); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(nil)
	b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: crashed})
	s, err := b2.QueueStats(ctx, "q")
	if err != nil || s.Ready != 40 || s.Totals.Acked != 10 {
		t.Fatalf("after crash %+v %v", s, err)
	}
}

// TestCorruptionIsReported: a flipped byte in synced data is a typed error
// naming the file — at Open when recovery must replay the damaged record,
// at delivery when a checkpoint already covers it — never silent loss.
func TestCorruptionIsReported(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, checkpoint bool) *vfs.MemFS {
		opts, fs := chutetest.MemOptions(nil)
		opts.SegmentSize, opts.CheckpointBytes = 64<<10, -1
		b, err := broker.Open("data", opts)
		if err != nil {
			t.Fatal(err)
		}
		mustCreate(t, b, "q", chute.QueueConfig{})
		for i := range 300 {
			mustPublish(t, b, "q", chute.Message{Body: bytes.Repeat([]byte{byte(i)}, 1000)})
		}
		if checkpoint {
			if err := b.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
		crashed := fs.CrashClone(nil) // no Close: no final checkpoint
		b.Close()
		data, err := crashed.Bytes("data/00000001.seg")
		if err != nil {
			t.Fatal(err)
		}
		data[5000] ^= 1 // inside the body of a message in the first segment
		crashed.SetBytes("data/00000001.seg", data)
		return crashed
	}
	t.Run("replayed record", func(t *testing.T) {
		fs := setup(t, false)
		_, err := broker.Open("data", &broker.Options{FS: fs, SegmentSize: 64 << 10})
		var ce *chute.CorruptionError
		if !errors.Is(err, chute.ErrJournalCorrupt) || !errors.As(err, &ce) || ce.File != "data/00000001.seg" {
			t.Fatalf("open of a damaged journal: %v", err)
		}
	})
	t.Run("message behind a checkpoint", func(t *testing.T) {
		fs := setup(t, true)
		b := chutetest.MustOpen(t, "data", &broker.Options{FS: fs, SegmentSize: 64 << 10})
		var err error
		for err == nil {
			var ds []chute.Delivery
			ds, err = b.Receive(ctx, "q", chute.ReceiveOptions{Max: 10, Wait: -1})
			if err == nil && len(ds) == 0 {
				t.Fatal("every message delivered: the damage went unnoticed")
			}
		}
		var ce *chute.CorruptionError
		if !errors.Is(err, chute.ErrJournalCorrupt) || !errors.As(err, &ce) || ce.File != "data/00000001.seg" {
			t.Fatalf("receive of a damaged message: %v", err)
		}
	})
}
