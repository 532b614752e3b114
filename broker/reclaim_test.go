package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestCheckpointRecovery: recovery restores the checkpoint and replays
// only what follows it, and reaches the same state.
func TestCheckpointRecovery(t *testing.T) {
	ctx := context.Background()
	opts, fs := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 100 {
		mustPublish(t, b, "q", chute.Message{Body: []byte(fmt.Sprint("m", i)), Priority: i % 10, ID: fmt.Sprint("id", i)})
	}
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 30})
	for _, d := range ds[:10] {
		if err := b.Ack(ctx, "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds[10:20] {
		if err := b.Ack(ctx, "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(t, b, "q", chute.Message{Body: []byte("after")})
	before, _ := b.QueueStats(ctx, "q")

	b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: fs.CrashClone(nil)})
	rs := b2.RecoveryStats()
	if rs.Checkpoint == 0 || rs.Records != 11 {
		t.Fatalf("recovery %+v: want the checkpoint and 11 records (10 acks, 1 publish)", rs)
	}
	after, _ := b2.QueueStats(ctx, "q")
	// The 10 leases still held become ready; everything else is as before.
	if after.Ready != before.Ready+10 || after.InFlight != 0 || after.Totals.Acked != 20 || after.DedupIDs != 100 {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}
	if r := mustPublish(t, b2, "q", chute.Message{ID: "id7"}); !r[0].Duplicate {
		t.Fatal("de-dup window lost by the checkpoint")
	}
}

// TestDiskStaysBounded runs a long publish-and-ack workload with a few
// messages that are never consumed, and checks after each checkpoint that
// the journal holds no more than a few segments beyond the live data:
// acked messages' segments are released, and the sparse segments that
// the never-consumed messages pin are compacted away.
func TestDiskStaysBounded(t *testing.T) {
	ctx := context.Background()
	const seg = 64 << 10
	opts, fs := chutetest.MemOptions(nil)
	opts.SegmentSize, opts.CheckpointBytes = seg, -1
	b := chutetest.MustOpen(t, "data", opts)
	mustCreate(t, b, "work", chute.QueueConfig{})
	mustCreate(t, b, "stuck", chute.QueueConfig{})
	body := make([]byte, 1000)
	rounds, perRound := 20, 500
	if testing.Short() {
		rounds = 8
	}
	var written int64
	for r := range rounds {
		for i := range perRound {
			if i%100 == 0 { // a message nobody consumes
				mustPublish(t, b, "stuck", chute.Message{Body: body})
			}
			mustPublish(t, b, "work", chute.Message{Body: body})
			d := mustReceive(t, b, "work", chute.ReceiveOptions{})
			if err := b.Ack(ctx, "work", d[0].Receipt); err != nil {
				t.Fatal(err)
			}
			written += int64(len(body))
		}
		if err := b.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		s, _ := b.QueueStats(ctx, "stuck")
		live := s.ReadyBytes
		chutetest.Eventually(t, "released segments given back", func() bool { return b.JournalStats().Freeing == 0 })
		used := fs.Usage("data")
		t.Logf("round %d: %d KB written, %d KB live, %d KB on disk, %d segments", r, written>>10, live>>10, used>>10, b.JournalStats().Segments)
		if limit := 4*live + 8*seg; r >= 2 && used > limit {
			t.Fatalf("round %d: %d bytes on disk for %d live bytes (limit %d)", r, used, live, limit)
		}
	}
	if s, _ := b.QueueStats(ctx, "stuck"); s.Ready != int64(rounds*perRound/100) {
		t.Fatalf("stuck messages %d, want %d", s.Ready, rounds*perRound/100)
	}
	// Compaction moved them; they are all still there and readable.
	ds, err := b.Peek(ctx, "stuck", 1000)
	if err != nil || len(ds) != rounds*perRound/100 {
		t.Fatalf("peek stuck: %d, %v", len(ds), err)
	}
}

// TestAutomaticCheckpoint: with default options the broker checkpoints on
// its own as the journal grows.
func TestAutomaticCheckpoint(t *testing.T) {
	opts, _ := chutetest.MemOptions(nil)
	opts.SegmentSize = 64 << 10
	b := chutetest.MustOpen(t, "data", opts)
	mustCreate(t, b, "q", chute.QueueConfig{})
	for range 400 { // 400 KB: more than four 64 KB segments
		mustPublish(t, b, "q", chute.Message{Body: make([]byte, 1000)})
	}
	chutetest.Eventually(t, "an automatic checkpoint", func() bool { return b.CheckpointStats().Count > 0 })
}

// TestReclaimAfterDrain: once a backlog spanning many segments is drained
// and acked, the broker gives the segments back within seconds (a
// checkpoint on its own, reclaimDue), not at the next checkpoint by size
// or by the minute (issue 11: the data directory back under 2 segments
// within 10 s of the last ack).
func TestReclaimAfterDrain(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Open(t.TempDir(), &broker.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustCreate(t, b, "q", chute.QueueConfig{})
	body := make([]byte, 1024)
	for range 20 {
		msgs := make([]chute.Message, 50)
		for i := range msgs {
			msgs[i] = chute.Message{Body: body}
		}
		mustPublish(t, b, "q", msgs...)
	}
	if n := b.JournalStats().Segments; n < 10 {
		t.Fatalf("the backlog spans %d segments, want at least 10", n)
	}
	for {
		ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		rs := make([]string, len(ds))
		for i, d := range ds {
			rs[i] = d.Receipt
		}
		if err := b.Ack(ctx, "q", rs...); err != nil {
			t.Fatal(err)
		}
	}
	chutetest.Eventually(t, "the drained segments given back", func() bool { return b.JournalStats().Segments <= 2 })
}
