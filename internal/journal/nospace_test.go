package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/vfs"
)

// reread returns every record from the start, as Reread sees them.
func reread(t *testing.T, j *Journal) []rec {
	t.Helper()
	var got []rec
	if err := j.Reread(0, func(p []byte, pos uint64) error {
		got = append(got, rec{pos, bytes.Clone(p)})
		return nil
	}); err != nil {
		t.Fatalf("reread: %v", err)
	}
	return got
}

// TestNoSpaceUndoesTheBatch: a write that finds the disk full fails its
// batch (and every append made meanwhile) with ErrDiskFull, suspends
// appends, leaves the journal exactly as it was before the batch — in
// memory (Reread) and on disk (a crash clone) — and, after Resume, the
// journal goes on as if the batch had never been. With small segments the
// failing batch may be the one that starts a new segment, or span two.
func TestNoSpaceUndoesTheBatch(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			var told atomic.Int32
			j, _ := openJournal(t, faulty, Options{SegmentSize: 1024, OnNoSpace: func() { told.Add(1) }})
			var want []rec
			for i := range 5 + rng.IntN(20) {
				p := payload(rng, i)
				want = append(want, rec{appendWait(t, j, p), p})
			}
			// The next write fails part-way, the next create too: whichever
			// the batch reaches first.
			keep := rng.Float64()
			faulty.SetInject(vfs.NewSchedule(
				vfs.Rule{Op: vfs.OpWrite, N: 1, Kind: vfs.FaultNoSpace, Keep: keep},
				vfs.Rule{Op: vfs.OpCreate, N: 1, Kind: vfs.FaultNoSpace},
			).Inject)
			var batches []*Batch
			for i := range 1 + rng.IntN(8) {
				_, b, err := j.Append(payload(rng, 100+i))
				if err != nil {
					if !errors.Is(err, chute.ErrDiskFull) {
						t.Fatalf("append while the batch fails: %v", err)
					}
					break
				}
				batches = append(batches, b)
			}
			for _, b := range batches {
				if err := b.Wait(context.Background()); !errors.Is(err, chute.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("batch: %v, want ErrDiskFull (ENOSPC)", err)
				}
				select {
				case <-b.Written():
					t.Fatal("a failed batch reads as written")
				default:
				}
			}
			faulty.SetInject(nil)
			if _, _, err := j.Append([]byte("x")); !errors.Is(err, chute.ErrDiskFull) || j.Suspended() == nil {
				t.Fatalf("append before Resume: %v", err)
			}
			if err := j.Barrier().Wait(context.Background()); !errors.Is(err, chute.ErrDiskFull) {
				t.Fatalf("barrier while suspended: %v", err)
			}
			if j.Err() != nil || told.Load() != 1 || j.Rewinds() != 1 {
				t.Fatalf("err %v, told %d, rewinds %d", j.Err(), told.Load(), j.Rewinds())
			}
			sameRecs(t, reread(t, j), want)
			_, onDisk := openJournal(t, mem.CrashClone(nil), Options{SegmentSize: 1024})
			sameRecs(t, onDisk, want)

			j.Resume()
			for i := range 10 {
				p := payload(rng, 200+i)
				want = append(want, rec{appendWait(t, j, p), p})
			}
			crashed := mem.CrashClone(rng)
			j.Close()
			_, got := openJournal(t, crashed, Options{SegmentSize: 1024})
			sameRecs(t, got, want)
		})
	}
}

// TestNoSpaceOnAVolume: on a MemFS volume that fills up, appends fail with
// ErrDiskFull, the journal stays usable, and once the volume grows (space
// freed elsewhere) appends go on; a reopen has every confirmed record.
func TestNoSpaceOnAVolume(t *testing.T) {
	mem := vfs.NewMemFS()
	mem.SetCapacity(16 << 10)
	j, _ := openJournal(t, mem, Options{SegmentSize: 4096})
	rng := rand.New(rand.NewPCG(1, 2))
	var want []rec
	full := 0
	for i := 0; full < 3; i++ {
		p := payload(rng, i)
		pos, b, err := j.Append(p)
		if err == nil {
			err = b.Wait(context.Background())
		}
		switch {
		case err == nil:
			want = append(want, rec{pos, p})
		case errors.Is(err, chute.ErrDiskFull):
			full++
			sameRecs(t, reread(t, j), want)
			j.Resume()
		default:
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if free, _, _ := mem.Free("j"); free > 4096 {
		t.Fatalf("%d bytes free after the disk filled", free)
	}
	mem.SetCapacity(64 << 10)
	for i := range 20 {
		p := payload(rng, 1000+i)
		want = append(want, rec{appendWait(t, j, p), p})
	}
	j.Close()
	_, got := openJournal(t, mem.CrashClone(nil), Options{SegmentSize: 4096})
	sameRecs(t, got, want)
}

// TestNoSpaceFsyncIsSticky: an fsync that fails, even with ENOSPC, fails
// the journal for good (never trust a retried fsync), and so does a
// failure while undoing a batch.
func TestNoSpaceFsyncIsSticky(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules []vfs.Rule
	}{
		{"fsync ENOSPC", []vfs.Rule{{Op: vfs.OpSync, N: 1, Kind: vfs.FaultNoSpace}}},
		{"fsync EIO", []vfs.Rule{{Op: vfs.OpSync, N: 1, Kind: vfs.FaultEIO}}},
		{"truncate fails while undoing", []vfs.Rule{{Op: vfs.OpWrite, N: 1, Kind: vfs.FaultNoSpace, Keep: 0.5}, {Op: vfs.OpTruncate, N: 1}}},
		{"fsync fails while undoing", []vfs.Rule{{Op: vfs.OpWrite, N: 1, Kind: vfs.FaultNoSpace, Keep: 0.5}, {Op: vfs.OpSync, N: 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			j, _ := openJournal(t, faulty, Options{})
			good := appendWait(t, j, []byte("confirmed"))
			faulty.SetInject(vfs.NewSchedule(c.rules...).Inject)
			_, b, err := j.Append([]byte("doomed"))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Wait(context.Background()); err == nil {
				t.Fatal("batch confirmed")
			}
			faulty.SetInject(nil)
			j.Resume() // must not revive a failed journal
			if j.Err() == nil {
				t.Fatal("journal not failed")
			}
			if _, _, err := j.Append([]byte("after")); err == nil || !errors.Is(err, j.Err()) && err.Error() != j.Err().Error() {
				t.Fatalf("append after the failure: %v (must fail closed with %v)", err, j.Err())
			}
			j.Close()
			_, got := openJournal(t, mem.CrashClone(nil), Options{})
			if len(got) != 1 || got[0].pos != good {
				t.Fatalf("after reopen: %d records", len(got))
			}
		})
	}
}
