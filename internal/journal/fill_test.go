package journal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/vfs"
	"go.uber.org/goleak"
)

// openFilling opens and replays a journal with FillAhead set, its filler
// signalling every pass.
func openFilling(t *testing.T, fs vfs.FS, opts Options) *Journal {
	t.Helper()
	opts.FS, opts.Dir, opts.Sync = fs, "j", SyncAlways
	j, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	j.fill.passed = make(chan struct{}, 1)
	if err := j.Replay(0, func([]byte, uint64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// waitFilled waits for the filler to have filled the tail up to want
// (a position); the bound is a failure bound.
func waitFilled(t *testing.T, j *Journal, want uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for j.fill.mark.Load() < want {
		select {
		case <-j.fill.passed:
		case <-timeout:
			t.Fatalf("filled up to %x, want %x", j.fill.mark.Load(), want)
		}
	}
}

func tailOf(j *Journal) (uint32, int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.tail.id, j.tailOff
}

// TestFillAhead: the tail segment is written with zeros FillAhead past
// its last record, never past the segment's size, and what it holds
// replays as before, across segments.
func TestFillAhead(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the journals' own cleanups
	const seg, ahead = 16 << 10, 4 << 10
	mem := vfs.NewMemFS()
	j := openFilling(t, mem, Options{SegmentSize: seg, FillAhead: ahead})
	rng := rand.New(rand.NewPCG(1, 2))
	var want []rec
	for i := range 200 {
		p := payload(rng, i)
		want = append(want, rec{appendWait(t, j, p), p})
		// The writer wakes the filler once the tail is within half of
		// FillAhead of what is filled; it then fills FillAhead past it.
		id, off := tailOf(j)
		least := min(off+ahead/2, seg)
		waitFilled(t, j, uint64(id)<<32|uint64(least))
		data, err := mem.Bytes(segName("j", id))
		if err != nil {
			t.Fatal(err)
		}
		if n := int64(len(data)); n < least || n > min(off+ahead, seg) {
			t.Fatalf("record %d: segment %d is %d bytes long, want %d to %d (tail at %d)", i, id, n, least, min(off+ahead, seg), off)
		}
		if !allZero(data[off:]) {
			t.Fatalf("record %d: not zeros past the tail of segment %d", i, id)
		}
	}
	if id, _ := tailOf(j); id < 3 {
		t.Fatalf("the records took %d segments; the test wants several", id)
	}
	if got := j.Stats().Filled; got < 2*ahead {
		t.Fatalf("Stats.Filled %d", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, got := openJournal(t, mem.CrashClone(nil), Options{SegmentSize: seg})
	sameRecs(t, got, want)
}

// TestFillNeverOverwrites: appenders at once, the filler running beside
// them with a slice smaller than a record; every record replays.
func TestFillNeverOverwrites(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the journals' own cleanups
	mem := vfs.NewMemFS()
	j := openFilling(t, mem, Options{SegmentSize: 32 << 10, FillAhead: 256})
	var mu sync.Mutex
	var want []rec
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 3))
			for i := range 150 {
				p := payload(rng, g*1000+i)
				pos, b, err := j.Append(p)
				if err != nil {
					t.Error(err)
					return
				}
				if err := b.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want = append(want, rec{pos, p})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if j.Stats().Filled == 0 {
		t.Fatal("nothing was filled")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	_, got := openJournal(t, mem.CrashClone(nil), Options{SegmentSize: 32 << 10})
	byPos := make(map[uint64][]byte, len(want))
	for _, r := range want {
		byPos[r.pos] = r.payload
	}
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for _, r := range got {
		if !bytes.Equal(byPos[r.pos], r.payload) {
			t.Fatalf("record at %x: %q", r.pos, r.payload)
		}
	}
}

// TestFillCrash: a power loss at any moment, the filler running, loses
// nothing confirmed (TestCrashKeepsEverythingConfirmed with zeros ahead).
func TestFillCrash(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the journals' own cleanups
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			mem := vfs.NewMemFS()
			j := openFilling(t, mem, Options{SegmentSize: 4096, FillAhead: 512})
			var confirmed, attempted []rec
			var crashed *vfs.MemFS
			n := 20 + rng.IntN(80)
			crashAt := rng.IntN(n)
			for i := range n {
				p := payload(rng, i)
				pos, b, err := j.Append(p)
				if err != nil {
					t.Fatal(err)
				}
				attempted = append(attempted, rec{pos, p})
				if i == crashAt {
					crashed = mem.CrashClone(rng) // in flight: the batch's write and sync, the filler's
				}
				if err := b.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				if crashed == nil {
					confirmed = append(confirmed, rec{pos, p})
				}
			}
			j.Close()
			_, got := openJournal(t, crashed, Options{SegmentSize: 4096})
			replayedPrefix(t, got, len(confirmed), attempted)
		})
	}
}

// TestFillRules: nothing is filled while the disk is short of space, nor
// without SyncAlways (no goroutine at all), and a failed sync of the
// zeros fails the journal.
func TestFillRules(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the journals' own cleanups
	for _, p := range []SyncPolicy{SyncInterval, SyncNever} {
		jn, err := Open(Options{FS: vfs.NewMemFS(), Dir: "j", Sync: p, FillAhead: 4096})
		if err != nil {
			t.Fatal(err)
		}
		if jn.fill != nil {
			t.Fatalf("sync policy %v: a filler", p)
		}
		jn.Close()
	}
	mem := vfs.NewMemFS()
	faulty := vfs.NewFaulty(mem, nil)
	j := openFilling(t, faulty, Options{SegmentSize: 1 << 20, FillAhead: 4096})
	j.closeFill() // fillStep by hand from here
	appendWait(t, j, []byte("one"))
	id, off := tailOf(j)
	name := segName("j", id)

	j.SetPreallocate(false) // the broker's "short of space"
	if j.fillStep() {
		t.Fatal("filled while short of space")
	}
	if data, _ := mem.Bytes(name); int64(len(data)) != off {
		t.Fatalf("short of space: segment is %d bytes, tail at %d", len(data), off)
	}
	j.SetPreallocate(true)

	if j.fillStep() { // one slice of 4096 is the whole of FillAhead
		t.Fatal("a second slice is due")
	}
	if data, _ := mem.Bytes(name); int64(len(data)) != off+4096 || !allZero(data[off:]) {
		t.Fatalf("filled: segment is %d bytes, tail at %d", len(data), off)
	}

	appendWait(t, j, bytes.Repeat([]byte("x"), 100))
	faulty.SetInject(func(op vfs.Op, _ string) error {
		if op == vfs.OpSync {
			return vfs.ErrInjected
		}
		return nil
	})
	j.fillStep()
	if err := j.Err(); err == nil || !strings.Contains(err.Error(), "zeros ahead") {
		t.Fatalf("after a failed sync of the zeros: %v", err)
	}
}

// TestFillWakes: the writer wakes the goroutine once its writes come
// within half of FillAhead of the mark, in a new segment at once, and
// not at all once the mark is the segment's end (each write near a
// segment's end woke it for nothing before).
func TestFillWakes(t *testing.T) {
	const seg, ahead = 16 << 10, 4 << 10
	f := newFiller(ahead, seg)
	woke := func() bool {
		select {
		case <-f.kick:
			return true
		default:
			return false
		}
	}
	f.mark.Store(1<<32 | 8<<10)
	if f.wrote(1, 4<<10); woke() {
		t.Fatal("woken 4 KiB short of the mark")
	}
	if f.wrote(1, 6<<10+1); !woke() {
		t.Fatal("not woken within half of FillAhead of the mark")
	}
	f.mark.Store(1<<32 | seg) // filled to the segment's end
	if f.wrote(1, seg-100); woke() {
		t.Fatal("woken with the segment filled to its end")
	}
	if f.wrote(2, 100); !woke() {
		t.Fatal("not woken in a new segment")
	}
}
