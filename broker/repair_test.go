package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// replayedDamage builds a journal without checkpoint: six single-message
// publishes, the first acked, and returns a crash image whose third
// publish record (message "m2") is damaged: Open must replay it.
func replayedDamage(t *testing.T) *vfs.MemFS {
	t.Helper()
	opts, fs := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	for i := range 6 {
		mustPublish(t, b, "q", chute.Message{Body: []byte(fmt.Sprintf("m%d-%s", i, strings.Repeat("x", 600)))})
	}
	d := mustReceive(t, b, "q", chute.ReceiveOptions{})
	if err := b.Ack(context.Background(), "q", d[0].Receipt); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(nil)
	b.Close()
	data, _ := crashed.Bytes("data/00000001.seg")
	i := bytes.Index(data, []byte("m2-"))
	data[i+50] ^= 1
	crashed.SetBytes("data/00000001.seg", data)
	return crashed
}

// TestRepairReplayedDamage: a damaged record after the checkpoint stops
// Open; repair --dry-run says what is lost and changes nothing; repair
// keeps every intact record (also those after the damage in the same
// segment, whose bodies it carries forward), quarantines the original,
// and the broker opens with exactly the lost message missing.
func TestRepairReplayedDamage(t *testing.T) {
	fs := replayedDamage(t)
	_, err := broker.Open("data", &broker.Options{FS: fs})
	if !errors.Is(err, chute.ErrJournalCorrupt) || !strings.Contains(err.Error(), "chute journal repair --dry-run data") {
		t.Fatalf("open: %v", err)
	}
	before, _ := fs.Bytes("data/00000001.seg")
	names, _ := fs.List("data")
	rep, err := broker.Repair("data", broker.RepairOptions{FS: fs, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sound() || len(rep.Damage) != 1 || rep.Damage[0].File != "data/00000001.seg" ||
		!slices.Equal(rep.LostSeqs, [][2]uint64{{3, 3}}) || len(rep.Lost) != 0 || rep.Carried != 3 {
		t.Fatalf("dry run report %+v", rep)
	}
	after, _ := fs.Bytes("data/00000001.seg")
	names2, _ := fs.List("data")
	if !bytes.Equal(before, after) || !slices.Equal(names, names2) {
		t.Fatalf("dry run changed the directory: %v -> %v", names, names2)
	}

	rep, err = broker.Repair("data", broker.RepairOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Moved) != 1 || rep.Checkpoint == 0 {
		t.Fatalf("report %+v", rep)
	}
	q, err := fs.List(rep.Quarantine)
	if err != nil || !slices.Equal(q, []string{"00000001.seg"}) {
		t.Fatalf("quarantine %v %v", q, err)
	}
	orig, _ := fs.Bytes(path.Join(rep.Quarantine, "00000001.seg"))
	if !bytes.Equal(orig, before) {
		t.Fatal("the quarantined segment is not the original")
	}
	b := chutetest.MustOpen(t, "data", &broker.Options{FS: fs})
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
	var got []string
	for _, d := range ds {
		got = append(got, string(d.Body[:2]))
	}
	if !slices.Equal(got, []string{"m1", "m3", "m4", "m5"}) {
		t.Fatalf("after repair: %v", got)
	}
	// Sound now: a second repair has nothing to do.
	b.Close()
	if rep, err := broker.Repair("data", broker.RepairOptions{FS: fs, DryRun: true}); err != nil || !rep.Sound() {
		t.Fatalf("repair after repair: %+v %v", rep, err)
	}
}

// TestRepairDamagedBody: a queued message's body damaged behind the
// checkpoint is reported lost by (queue, seq) and dead-lettered.
func TestRepairDamagedBody(t *testing.T) {
	fs := damagedJournal(t, "kept-")
	rep, err := broker.Repair("data", broker.RepairOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Lost) != 1 || rep.Lost[0].Queue != "q" || rep.Lost[0].Seq != 2 || len(rep.LostSeqs) != 0 {
		t.Fatalf("report %+v", rep)
	}
	b := chutetest.MustOpen(t, "data", &broker.Options{FS: fs})
	if got := bodies(mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})); len(got) != 2 || got[0] != "second of k" {
		t.Fatalf("left in q: %q", got)
	}
	dl := mustReceive(t, b, "q.dlq", chute.ReceiveOptions{Max: 10})
	if len(dl) != 1 || dl[0].DeadLetter.Reason != "damaged" || dl[0].DeadLetter.SourceSeq != 2 {
		t.Fatalf("dead letters %+v", dl)
	}
}

// TestRepairSoundAndTorn: a sound journal, or one whose only damage is a
// torn tail (which Open cuts), needs no repair, and repair changes nothing.
func TestRepairSoundAndTorn(t *testing.T) {
	opts, fs := chutetest.MemOptions(nil)
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{Body: []byte("one")})
	crashed := fs.CrashClone(nil)
	b.Close()
	data, _ := crashed.Bytes("data/00000001.seg")
	crashed.SetBytes("data/00000001.seg", append(data, 0xde, 0xad, 0xbe, 0xef))
	rep, err := broker.Repair("data", broker.RepairOptions{FS: crashed})
	if err != nil || !rep.Sound() || rep.Torn == nil || len(rep.Moved) != 0 {
		t.Fatalf("torn tail: %+v %v", rep, err)
	}
	b = chutetest.MustOpen(t, "data", &broker.Options{FS: crashed})
	if got := bodies(mustReceive(t, b, "q", chute.ReceiveOptions{})); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("after a torn tail: %v", got)
	}
}
