package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// TestOpenLockedDir: a second Open of a directory in use fails with a
// *LockedError naming this process, and changes nothing; after Close the
// directory opens again.
func TestOpenLockedDir(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{Body: []byte("x")})
	before := dirState(t, dir)
	_, err = broker.Open(dir, &broker.Options{CheckpointBytes: 1})
	var le *broker.LockedError
	if !errors.Is(err, broker.ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() || le.Dir != dir {
		t.Fatalf("second open: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "in use by process") || !strings.Contains(msg, "point --data elsewhere") {
		t.Fatalf("message %q", msg)
	}
	if after := dirState(t, dir); !slices.Equal(before, after) {
		t.Fatalf("the second open changed the directory:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := broker.Repair(dir, broker.RepairOptions{DryRun: true}); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("repair of a directory in use: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := chutetest.MustOpen(t, dir, nil)
	if s, err := b2.QueueStats(context.Background(), "q"); err != nil || s.Ready != 1 {
		t.Fatalf("after reopen %+v %v", s, err)
	}
}

func dirState(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".seg") {
			// The running broker writes zeros ahead of its last record
			// (journal.Options.FillAhead) whenever it likes: they are not
			// a change.
			data = bytes.TrimRight(data, "\x00")
		}
		out = append(out, fmt.Sprintf("%s: %d bytes, crc %08x", e.Name(), len(data), crc32.ChecksumIEEE(data)))
	}
	return out
}

// TestOpenLockedMemFS: two brokers on one MemFS conflict like two
// processes on one directory; an in-memory broker takes no lock.
func TestOpenLockedMemFS(t *testing.T) {
	opts, _ := chutetest.MemOptions(nil)
	chutetest.MustOpen(t, "data", opts)
	if _, err := broker.Open("data", opts); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("second broker on one MemFS: %v", err)
	}
	chutetest.MustOpen(t, "", nil)
	chutetest.MustOpen(t, "", nil)
}

// damagedJournal builds a journal with a checkpoint after "acked" (acked)
// and "kept" (queued), then "after" published after the checkpoint, and
// returns a crash image of it with the byte at the first occurrence of
// flip flipped.
func damagedJournal(t *testing.T, flip string) *vfs.MemFS {
	t.Helper()
	opts, fs := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{Body: bytes.Repeat([]byte("acked-"), 200)})
	mustPublish(t, b, "q", chute.Message{Body: bytes.Repeat([]byte("kept-"), 200), Key: "k"})
	mustPublish(t, b, "q", chute.Message{Body: []byte("second of k"), Key: "k"})
	d := mustReceive(t, b, "q", chute.ReceiveOptions{})
	if string(d[0].Body[:6]) != "acked-" {
		t.Fatalf("received %q", d[0].Body)
	}
	if err := b.Ack(context.Background(), "q", d[0].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := b.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, b, "q", chute.Message{Body: bytes.Repeat([]byte("after-"), 100)})
	crashed := fs.CrashClone(nil)
	b.Close()
	data, err := crashed.Bytes("data/00000001.seg")
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(flip))
	if i < 0 {
		t.Fatalf("%q not in the segment", flip)
	}
	data[i+100] ^= 0x10
	crashed.SetBytes("data/00000001.seg", data)
	return crashed
}

// TestDamageBeforeCheckpoint: damage in records the checkpoint covers does
// not stop Open when it holds no queued body. When it does, Open refuses,
// naming the message and what to do, and Salvage dead-letters it instead.
func TestDamageBeforeCheckpoint(t *testing.T) {
	ctx := context.Background()
	t.Run("acked body", func(t *testing.T) {
		fs := damagedJournal(t, "acked-")
		b := chutetest.MustOpen(t, "data", &broker.Options{FS: fs})
		ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
		if got := len(ds); got != 2 || !bytes.HasPrefix(ds[0].Body, []byte("kept-")) {
			t.Fatalf("after damage to an acked body: %d messages", got)
		}
	})
	t.Run("queued body", func(t *testing.T) {
		fs := damagedJournal(t, "kept-")
		_, err := broker.Open("data", &broker.Options{FS: fs})
		var ce *chute.CorruptionError
		if !errors.Is(err, chute.ErrJournalCorrupt) || !errors.As(err, &ce) || ce.File != "data/00000001.seg" {
			t.Fatalf("open: %v", err)
		}
		for _, want := range []string{"q seq 2", "--salvage", "chute journal repair --dry-run data"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if fs.Locked("data/LOCK") {
			t.Fatal("a failed Open kept the lock")
		}
	})
	t.Run("salvage", func(t *testing.T) {
		fs := damagedJournal(t, "kept-")
		b, err := broker.Open("data", &broker.Options{FS: fs, Salvage: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.RecoveryStats().Salvaged; got != 1 {
			t.Fatalf("salvaged %d", got)
		}
		checkSalvaged := func(b *broker.Broker) {
			t.Helper()
			ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
			// The key passed on to the next message of k.
			if got := bodies(ds); len(got) != 2 || got[0] != "second of k" || !strings.HasPrefix(got[1], "after-") {
				t.Fatalf("left in q: %q", got)
			}
			for _, d := range ds {
				if err := b.Nack(ctx, "q", chute.Nack{Receipt: d.Receipt, Delay: -1}); err != nil {
					t.Fatal(err)
				}
			}
			dl := mustReceive(t, b, "q.dlq", chute.ReceiveOptions{Max: 10})
			if len(dl) != 1 || dl[0].DeadLetter == nil || dl[0].DeadLetter.Reason != "damaged" || dl[0].DeadLetter.SourceSeq != 2 ||
				len(dl[0].Body) != 0 || dl[0].Headers[broker.HeaderDamagedFile] != "data/00000001.seg" || dl[0].Headers[broker.HeaderDamagedError] == "" {
				t.Fatalf("dead letter %+v", dl)
			}
			if err := b.Nack(ctx, "q.dlq", chute.Nack{Receipt: dl[0].Receipt, Delay: -1}); err != nil {
				t.Fatal(err)
			}
		}
		checkSalvaged(b)
		crashed := fs.CrashClone(nil) // the damaged record is in the journal
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		checkSalvaged(chutetest.MustOpen(t, "data", &broker.Options{FS: crashed}))
		checkSalvaged(chutetest.MustOpen(t, "data", &broker.Options{FS: fs})) // from the final checkpoint
	})
}
