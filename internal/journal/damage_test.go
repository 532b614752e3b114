package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestTornWriteReorderedSectors: power fails while a batch is written but
// not yet synced, and the file system wrote some of its sectors and not
// others, so zeros can lie between valid frames. Recovery must open, keep
// every confirmed record, and keep none of the failed batch past its first
// hole. The crash images must include holes followed by valid frames, or
// the test would prove nothing.
func TestTornWriteReorderedSectors(t *testing.T) {
	holesBeforeFrames := 0
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := vfs.NewMemFS()
		faulty := vfs.NewFaulty(mem, nil)
		j, _ := openJournal(t, faulty, Options{})
		var confirmed []rec
		for i := range 1 + rng.IntN(10) {
			p := bytes.Repeat([]byte{byte(i + 1)}, 1+rng.IntN(1500))
			confirmed = append(confirmed, rec{appendWait(t, j, p), p})
		}
		// The writer takes one record and blocks in its sync while the
		// doomed ones pile up behind it; they are then written in one batch
		// whose sync fails.
		entered, release := make(chan struct{}), make(chan struct{})
		syncs := 0
		faulty.SetInject(func(op vfs.Op, _ string) error {
			if op != vfs.OpSync {
				return nil
			}
			if syncs++; syncs == 1 {
				close(entered)
				<-release
				return nil
			}
			return vfs.ErrInjected
		})
		p := []byte("trigger")
		pos, first, err := j.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		<-entered
		var doomed []rec
		var batch *Batch
		for i := range 2 + rng.IntN(20) {
			p := bytes.Repeat([]byte{byte(100 + i)}, 1+rng.IntN(1500))
			pos, b, err := j.Append(p)
			if err != nil {
				t.Fatal(err)
			}
			batch = b
			doomed = append(doomed, rec{pos, p})
		}
		close(release)
		if err := first.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		confirmed = append(confirmed, rec{pos, p})
		if err := batch.Wait(context.Background()); err == nil {
			t.Fatal("batch confirmed without a sync")
		}
		crashed := mem.CrashCloneReordered(rng)
		j.Close()
		data, _ := crashed.Bytes(segName("j", 1))
		for _, r := range resyncFrames(data, 1, nil) {
			if r.End < int64(len(data)) {
				holesBeforeFrames++
				break
			}
		}
		_, got := openJournal(t, crashed, Options{})
		if len(got) < len(confirmed) {
			t.Fatalf("seed %d: %d records after the crash, %d confirmed", seed, len(got), len(confirmed))
		}
		sameRecs(t, got[:len(confirmed)], confirmed)
		sameRecs(t, got[len(confirmed):], doomed[:len(got)-len(confirmed)])
	}
	if holesBeforeFrames == 0 {
		t.Fatal("no crash image had zeroed sectors followed by valid frames")
	}
	t.Logf("%d of 60 images had holes before valid frames", holesBeforeFrames)
}

// TestGarbageBeforeFramesInLastSegment: damage that is not zero-shaped,
// followed by valid frames, stays corruption even in the last segment.
func TestGarbageBeforeFramesInLastSegment(t *testing.T) {
	mem := vfs.NewMemFS()
	j, _ := openJournal(t, mem, Options{})
	var pos []uint64
	for i := range 6 {
		pos = append(pos, appendWait(t, j, bytes.Repeat([]byte{byte(i + 1)}, 700)))
	}
	j.Close()
	name := segName("j", 1)
	data, _ := mem.Bytes(name)
	// Records 2 and 3 overwritten with non-zero garbage, a sector and more.
	off := int(pos[2]&0xffffffff) - frameHeaderSize
	for i := off; i < int(pos[4]&0xffffffff)-frameHeaderSize; i++ {
		data[i] = 0xA5
	}
	mem.SetBytes(name, data)
	j2, err := Open(Options{FS: mem, Dir: "j"})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	err = j2.Replay(0, func([]byte, uint64) error { return nil })
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Offset != int64(off) {
		t.Fatalf("got %v, want corruption at %d", err, off)
	}
	// The same region zeroed instead is a torn write: cut, and the journal opens.
	clear(data[off : int(pos[4]&0xffffffff)-frameHeaderSize])
	mem.SetBytes(name, data)
	_, got := openJournal(t, mem, Options{})
	if len(got) != 2 {
		t.Fatalf("after a zeroed region: %d records, want the 2 before it", len(got))
	}
}

// TestDamageBeforeCheckpointIsSkipped: in the checkpoint's own segment,
// damage before the checkpoint position is skipped and listed (no record
// there is needed); damage after it is corruption.
func TestDamageBeforeCheckpointIsSkipped(t *testing.T) {
	mem := vfs.NewMemFS()
	j, _ := openJournal(t, mem, Options{})
	var recs []rec
	for i := range 10 {
		p := []byte(fmt.Sprintf("record %d", i))
		recs = append(recs, rec{appendWait(t, j, p), p})
	}
	j.Close()
	name := segName("j", 1)
	data, _ := mem.Bytes(name)
	data[int(recs[3].pos&0xffffffff)+2] ^= 1
	mem.SetBytes(name, data)
	frame := func(i int) uint64 { return recs[i].pos - frameHeaderSize }

	j2, err := Open(Options{FS: mem.CrashClone(nil), Dir: "j"})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	var got []rec
	if err := j2.Replay(frame(8), func(p []byte, pos uint64) error {
		got = append(got, rec{pos, bytes.Clone(p)})
		return nil
	}); err != nil {
		t.Fatalf("replay from after the damage: %v", err)
	}
	sameRecs(t, got, recs[8:])
	sk := j2.Skipped()
	if len(sk) != 1 || sk[0].File != name || sk[0].Off != int64(frame(3)&0xffffffff) || sk[0].End != int64(frame(4)&0xffffffff) {
		t.Fatalf("skipped %+v", sk)
	}

	j3, err := Open(Options{FS: mem.CrashClone(nil), Dir: "j"})
	if err != nil {
		t.Fatal(err)
	}
	defer j3.Close()
	err = j3.Replay(frame(2), func([]byte, uint64) error { return nil })
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Offset != int64(frame(3)&0xffffffff) {
		t.Fatalf("replay across the damage: %v", err)
	}
}
