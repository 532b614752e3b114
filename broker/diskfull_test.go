package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// diskOpts are options for a broker on a small MemFS volume.
func diskOpts(mem vfs.FS, floor, reserve int64) *broker.Options {
	return &broker.Options{FS: mem, SegmentSize: 64 << 10, MinFreeDisk: floor, DiskReserve: reserve,
		DiskCheckInterval: time.Millisecond, MaxBatch: 10000}
}

// diskFill publishes 2 KiB messages until the broker refuses one
// with ErrDiskFull, and returns the IDs confirmed and the error.
func diskFill(t *testing.T, b *broker.Broker, prefix string) ([]string, error) {
	t.Helper()
	var ids []string
	body := make([]byte, 2<<10)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		_, err := b.Publish(context.Background(), "q", chute.Message{ID: id, Body: body})
		if errors.Is(err, chute.ErrDiskFull) {
			return ids, err
		}
		if err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		ids = append(ids, id)
		if i > 100000 {
			t.Fatal("the disk never filled")
		}
	}
}

// diskDrain receives and acks every message of q, retrying what a full disk
// refuses, and returns the IDs it acked.
func diskDrain(t *testing.T, b *broker.Broker) map[string]bool {
	t.Helper()
	ctx := context.Background()
	acked := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: -1})
		if errors.Is(err, chute.ErrDiskFull) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(ds) == 0 {
			return acked
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			receipts[i] = d.Receipt
		}
		for {
			err := b.Ack(ctx, "q", receipts...)
			if err == nil {
				break
			}
			if !errors.Is(err, chute.ErrDiskFull) {
				t.Fatalf("ack: %v", err)
			}
			time.Sleep(time.Millisecond)
		}
		for _, d := range ds {
			acked[d.ID] = true
		}
	}
	t.Fatal("drain took too long")
	return nil
}

// diskPublishEventually publishes one message, retrying ErrDiskFull until
// the broker takes it.
func diskPublishEventually(t *testing.T, b *broker.Broker, id string) {
	t.Helper()
	var err error
	chutetest.Eventually(t, "publishes to resume", func() bool {
		_, err = b.Publish(context.Background(), "q", chute.Message{ID: id, Body: []byte(id)})
		if err != nil && !errors.Is(err, chute.ErrDiskFull) {
			t.Fatalf("publish %s: %v", id, err)
		}
		return err == nil
	})
}

func diskIDs(t *testing.T, b *broker.Broker) map[string]bool {
	t.Helper()
	ds, err := b.Peek(context.Background(), "q", 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range ds {
		out[d.ID] = true
	}
	return out
}

// TestDiskFullFloor: on a volume that fills up, publishes are refused with
// ErrDiskFull at the floor, before any write finds the disk full; stats,
// receives and acks go on; a checkpoint gives the drained segments back
// and publishes resume by themselves. A restart in the full state works.
func TestDiskFullFloor(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMemFS()
	mem.SetCapacity(2 << 20)
	opts := diskOpts(mem, 512<<10, 128<<10)
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	if ds := b.DiskStats(); ds.Reserve != 128<<10 || ds.Floor != 512<<10 || !ds.Measuring {
		t.Fatalf("disk stats at open: %+v", ds)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	confirmed, err := diskFill(t, b, "a")
	if !strings.Contains(err.Error(), "floor") || len(confirmed) < 100 {
		t.Fatalf("after %d publishes: %v", len(confirmed), err)
	}
	t.Logf("%d publishes, then: %v", len(confirmed), err)
	if ds := b.DiskStats(); ds.Rebuilds != 0 || ds.Full || ds.Reserve != 128<<10 {
		t.Fatalf("the floor let a write hit the full disk: %+v", ds)
	}
	if s, err := b.QueueStats(ctx, "q"); err != nil || s.Ready != int64(len(confirmed)) {
		t.Fatalf("stats while full: %+v, %v", s, err)
	}

	// A restart in the full state: it opens, and refuses what it refused.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = chutetest.MustOpen(t, "data", diskOpts(mem, 512<<10, 128<<10))
	// (Between samples the broker counts appended bytes as taken, though
	// some went into preallocated space: a fresh sample may find room for
	// a few more.)
	more, err := diskFill(t, b, "b")
	if !errors.Is(err, chute.ErrDiskFull) || len(more) > 40 {
		t.Fatalf("after the restart, %d more publishes, then %v", len(more), err)
	}
	confirmed = append(confirmed, more...)
	if got := diskIDs(t, b); len(got) != len(confirmed) {
		t.Fatalf("%d messages after the restart, want %d", len(got), len(confirmed))
	}

	acked := diskDrain(t, b)
	if len(acked) != len(confirmed) {
		t.Fatalf("drained %d of %d", len(acked), len(confirmed))
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	diskPublishEventually(t, b, "after")
	// Released segments are given back a slice at a time by the
	// journal's reclaimer, after the checkpoint returns.
	chutetest.Eventually(t, "released segments given back", func() bool { return b.JournalStats().Freeing == 0 })
	if free, _, _ := mem.Free("data"); free < 1<<20 {
		t.Fatalf("only %d bytes free after draining and a checkpoint", free)
	}
}

// TestDiskFullReserveAndReceiveFloor: when something else fills the
// volume, receives stop too (below half the floor), the reserve is
// released so that acks and a checkpoint have room, and when the space
// comes back everything resumes and the reserve is made again.
func TestDiskFullReserveAndReceiveFloor(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMemFS()
	mem.SetCapacity(4 << 20)
	b := chutetest.MustOpen(t, "data", diskOpts(mem, 512<<10, 256<<10))
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 100 {
		mustPublish(t, b, "q", chute.Message{ID: fmt.Sprint(i), Body: make([]byte, 1000)})
	}
	held := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})

	// Another program fills the volume.
	other, _ := mem.Create("other")
	if _, err := other.WriteAt(make([]byte, 8<<20), 0); !vfs.IsNoSpace(err) {
		t.Fatalf("filling the volume: %v", err)
	}
	chutetest.Eventually(t, "the reserve to be released", func() bool { return b.DiskStats().Reserve == 0 })
	if ds := b.DiskStats(); ds.Released != 256<<10 {
		t.Fatalf("disk stats: %+v", ds)
	}
	if _, err := b.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("receive on a full volume: %v", err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{}); !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("publish on a full volume: %v", err)
	}
	// Acks, a nack and a checkpoint use the reserve's space.
	for _, d := range held[:9] {
		if err := b.Ack(ctx, "q", d.Receipt); err != nil {
			t.Fatalf("ack on a full volume: %v", err)
		}
	}
	if err := b.Nack(ctx, "q", chute.Nack{Receipt: held[9].Receipt, Delay: -1}); err != nil {
		t.Fatalf("nack on a full volume: %v", err)
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint on a full volume: %v", err)
	}

	mem.Remove("other")
	diskPublishEventually(t, b, "back")
	if _, err := b.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); err != nil {
		t.Fatal(err)
	}
	chutetest.Eventually(t, "the reserve to be made again", func() bool { return b.DiskStats().Reserve == 256<<10 })
	if ds := b.DiskStats(); ds.Released != 0 || ds.Rebuilds != 0 {
		t.Fatalf("disk stats: %+v", ds)
	}
	if got := diskIDs(t, b); len(got) != 91 { // 100 - 9 acked + "back" - 1 received
		t.Fatalf("%d messages ready", len(got))
	}
}

// laggingFS is a volume whose statfs does not see the limit coming (a
// quota, a thin-provisioned volume, or another program between two
// samples): while lying is set, Free says there is plenty.
type laggingFS struct {
	*vfs.MemFS
	lying *atomic.Bool
}

func (l laggingFS) Free(dir string) (int64, int64, error) {
	if l.lying.Load() {
		return 1 << 40, 1 << 40, nil
	}
	return l.MemFS.Free(dir)
}

// TestDiskFullWriteUndone: on a volume that runs out of space where
// statfs does not see it coming, publishes hit the full disk: the writes
// that find it full are undone, their callers get ErrDiskFull, and
// nothing they sent is stored; every confirmed publish is. The broker
// does not fail: it gives the reserve to acks and a checkpoint at once,
// refuses publishes until the reserve can be made again, and once space
// is freed, publishes resume and the backlog drains, with no restart; a
// crash at any point loses nothing confirmed.
func TestDiskFullWriteUndone(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMemFS()
	mem.SetCapacity(1 << 20)
	var lying atomic.Bool
	lying.Store(true)
	opts := diskOpts(laggingFS{mem, &lying}, 0, 128<<10)
	b := chutetest.MustOpen(t, "data", opts)
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 20 {
		mustPublish(t, b, "q", chute.Message{ID: fmt.Sprint("held-", i), Body: make([]byte, 1000)})
	}
	held := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 20})
	var mu sync.Mutex
	confirmed, refused := map[string]bool{}, map[string]bool{}
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails := 0
			for i := 0; fails < 5; i++ {
				id := fmt.Sprintf("p%d-%d", p, i)
				_, err := b.Publish(ctx, "q", chute.Message{ID: id, Body: make([]byte, 1500)})
				mu.Lock()
				switch {
				case err == nil:
					confirmed[id] = true
				case errors.Is(err, chute.ErrDiskFull):
					refused[id] = true
					fails++
				default:
					t.Errorf("publish %s: %v", id, err)
					fails = 5
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	lying.Store(false)
	chutetest.Eventually(t, "the engine to be rebuilt", func() bool { return b.DiskStats().Rebuilds > 0 })
	t.Logf("%d confirmed, %d refused; %+v", len(confirmed), len(refused), b.DiskStats())
	if len(confirmed) < 100 {
		t.Fatal("the disk filled too soon")
	}
	check := func(b *broker.Broker, what string) {
		t.Helper()
		got := diskIDs(t, b)
		for id := range confirmed {
			if !got[id] {
				t.Fatalf("%s: confirmed %s lost", what, id)
			}
		}
		for id := range got {
			if refused[id] {
				t.Fatalf("%s: refused %s stored", what, id)
			}
		}
	}
	check(b, "live")
	check(chutetest.MustOpen(t, "data", &broker.Options{FS: mem.CrashClone(nil), MaxBatch: 10000}), "after a crash")

	// The reserve is released: acks and a checkpoint have room; publishes
	// do not spend it.
	chutetest.Eventually(t, "the reserve to be released", func() bool { return b.DiskStats().Reserve == 0 })
	for _, d := range held {
		if err := b.Ack(ctx, "q", d.Receipt); err != nil {
			t.Fatalf("ack on a full disk: %v (%+v)", err, b.DiskStats())
		}
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatalf("checkpoint on a full disk: %v", err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{}); !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("publish with the reserve released: %v", err)
	}

	mem.SetCapacity(4 << 20) // space freed
	diskPublishEventually(t, b, "after")
	acked := diskDrain(t, b)
	if len(acked) != len(confirmed)+1 {
		t.Fatalf("drained %d of %d", len(acked), len(confirmed)+1)
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	chutetest.Eventually(t, "the reserve to be made again", func() bool { return b.DiskStats().Reserve == 128<<10 })
	b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: mem.CrashClone(nil)})
	if got := diskIDs(t, b2); len(got) != 0 {
		t.Fatalf("after the drain and a crash: %v", got)
	}
}

// TestDiskFullOpenOnAFullVolume: a broker opened on a volume with no
// space left at all (something else filled it) releases its reserve
// before recovery writes anything, and opens; it refuses receives and
// publishes, checkpoints, and resumes once space is freed.
func TestDiskFullOpenOnAFullVolume(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMemFS()
	mem.SetCapacity(2 << 20)
	b, err := broker.Open("data", diskOpts(mem, 256<<10, 256<<10))
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 50 {
		mustPublish(t, b, "q", chute.Message{ID: fmt.Sprint(i), Body: make([]byte, 1000)})
	}
	mustReceive(t, b, "q", chute.ReceiveOptions{Max: 5}) // leases: recovery writes a record for them
	crashed := mem.CrashClone(nil)                       // a crash, so that the next Open has work to write
	b.Close()
	other, _ := crashed.Create("other")
	other.WriteAt(make([]byte, 4<<20), 0)
	if free, _, _ := crashed.Free("data"); free != 0 {
		t.Fatalf("%d bytes free", free)
	}
	b2 := chutetest.MustOpen(t, "data", diskOpts(crashed, 256<<10, 256<<10))
	if ds := b2.DiskStats(); ds.Reserve != 0 || ds.Released != 256<<10 {
		t.Fatalf("disk stats after opening on a full volume: %+v", ds)
	}
	if s, err := b2.QueueStats(ctx, "q"); err != nil || s.Ready != 50 {
		t.Fatalf("stats: %+v, %v", s, err)
	}
	if _, err := b2.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("receive on a full volume: %v", err)
	}
	if err := b2.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	crashed.Remove("other")
	chutetest.Eventually(t, "receives to resume", func() bool {
		ds, err := b2.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1})
		return err == nil && len(ds) == 1
	})
	diskPublishEventually(t, b2, "back")
}

// TestDiskReserveFollowsTheIndex: the automatic reserve grows with the
// index it must be able to checkpoint.
func TestDiskReserveFollowsTheIndex(t *testing.T) {
	opts, _ := chutetest.MemOptions(nil)
	opts.DiskCheckInterval = time.Millisecond
	b := chutetest.MustOpen(t, "data", opts)
	first := b.DiskStats().Reserve
	if first < 1<<20 {
		t.Fatalf("reserve %d at open", first)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	msgs := make([]chute.Message, 1000)
	for range 30 {
		mustPublish(t, b, "q", msgs...)
	}
	if err := b.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	chutetest.Eventually(t, "the reserve to grow", func() bool { return b.DiskStats().Reserve >= first+30000*64 })
	t.Logf("reserve %d bytes at open, %d with 30000 messages (checkpoint: %d bytes, %d per message)",
		first, b.DiskStats().Reserve, b.CheckpointStats().Bytes, b.CheckpointStats().Bytes/30000)
}

// TestDiskFullUnmeasured: where free space cannot be measured there is no
// floor, but a write that finds the disk full is still undone, the
// reserve released, and publishes are tried again a second later.
func TestDiskFullUnmeasured(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMemFS()
	var noSpace atomic.Bool
	faulty := vfs.NewFaulty(mem, func(op vfs.Op, name string) error {
		switch {
		case op == vfs.OpFree:
			return errors.ErrUnsupported
		case op == vfs.OpWrite && noSpace.Load():
			return &vfs.WriteFault{Err: syscall.ENOSPC}
		}
		return nil
	})
	b := chutetest.MustOpen(t, "data", diskOpts(faulty, 0, 128<<10))
	if ds := b.DiskStats(); ds.Measuring || ds.Floor != 0 || ds.Reserve != 128<<10 {
		t.Fatalf("disk stats: %+v", ds)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{ID: "before"})
	noSpace.Store(true)
	if _, err := b.Publish(ctx, "q", chute.Message{ID: "refused"}); !errors.Is(err, chute.ErrDiskFull) {
		t.Fatalf("publish on a full disk: %v", err)
	}
	chutetest.Eventually(t, "the reserve to be released", func() bool { return b.DiskStats().Reserve == 0 })
	noSpace.Store(false)
	start := time.Now()
	diskPublishEventually(t, b, "after")
	t.Logf("publishes resumed after %v", time.Since(start).Round(time.Millisecond))
	if got := diskIDs(t, b); len(got) != 2 || !got["before"] || !got["after"] {
		t.Fatalf("messages: %v", got)
	}
	chutetest.Eventually(t, "the reserve to be made again", func() bool { return b.DiskStats().Reserve == 128<<10 })
}
