package journal

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute/internal/vfs"
)

// opLog records the file-system operations on one file, in order.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) inject(file string, hook func(vfs.Op)) func(vfs.Op, string) error {
	return func(op vfs.Op, name string) error {
		if name == file || name == file+freeSuffix || op == vfs.OpSyncDir {
			l.mu.Lock()
			l.ops = append(l.ops, op.String())
			l.mu.Unlock()
			if hook != nil {
				hook(op)
			}
		}
		return nil
	}
}

func (l *opLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...)
}

// waitReclaimed waits for the journal's reclaimer to have given back
// every file it took (the bound is a failure bound).
func waitReclaimed(t *testing.T, j *Journal) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); j.Stats().Reclaiming > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d files still being given back", j.Stats().Reclaiming)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReclaimInSlices: a released segment is renamed aside at once, the
// directory synced before any block goes, the file cut a slice at a time,
// then removed; its records are no longer read, the later ones are.
func TestReclaimInSlices(t *testing.T) {
	defer goleak.VerifyNone(t)
	mem := vfs.NewMemFS()
	faulty := vfs.NewFaulty(mem, nil)
	j, _ := openJournal(t, faulty, Options{SegmentSize: 4096, ReclaimSlice: 1000, ReclaimGap: time.Microsecond})
	first := appendWait(t, j, bytes.Repeat([]byte("a"), 3000))
	last := appendWait(t, j, bytes.Repeat([]byte("b"), 3000))
	seg := uint32(first >> 32)
	name := segName("j", seg)
	data, err := mem.Bytes(name)
	if err != nil {
		t.Fatal(err)
	}
	var log opLog
	faulty.SetInject(log.inject(name, nil))
	if err := j.Release(seg); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Bytes(name); !vfs.IsNotExist(err) {
		t.Fatalf("released segment still under its name: %v", err)
	}
	waitReclaimed(t, j)
	if _, err := mem.Bytes(name + freeSuffix); !vfs.IsNotExist(err) {
		t.Fatalf("reclaimed file still there: %v", err)
	}
	want := []string{"rename", "syncdir", "open"}
	for range (len(data) + 999) / 1000 {
		want = append(want, "truncate")
	}
	want = append(want, "remove")
	if got := log.get(); !slicesEqual(got, want) {
		t.Fatalf("operations %v, want %v (file of %d bytes)", got, want, len(data))
	}
	if _, err := j.ReadAt(first, 10); err == nil {
		t.Fatal("read from a released segment")
	}
	if got, err := j.ReadAt(last, 3000); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("b"), 3000)) {
		t.Fatalf("read the later record: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReclaimCrash: a power loss while a released segment is being given
// back leaves it under its .free name, never cut short under its segment
// name; the next Open removes it (at once without a reclaimer, by its
// reclaimer with one), and replays every record after the released one.
func TestReclaimCrash(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, slice := range []int64{0, 512} {
		mem := vfs.NewMemFS()
		faulty := vfs.NewFaulty(mem, nil)
		j, err := Open(Options{FS: faulty, Dir: "j", SegmentSize: 2048, ReclaimSlice: 512, ReclaimGap: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Replay(0, func([]byte, uint64) error { return nil }); err != nil {
			t.Fatal(err)
		}
		first := appendWait(t, j, bytes.Repeat([]byte("a"), 1500))
		var want [][]byte
		for i := range 5 {
			p := bytes.Repeat([]byte{byte('b' + i)}, 1500)
			appendWait(t, j, p)
			want = append(want, p)
		}
		seg := uint32(first >> 32)
		name := segName("j", seg)
		cut := make(chan struct{})
		var once sync.Once
		var log opLog
		faulty.SetInject(log.inject(name, func(op vfs.Op) {
			if op == vfs.OpTruncate {
				once.Do(func() { close(cut) })
			}
		}))
		if err := j.Release(seg); err != nil {
			t.Fatal(err)
		}
		<-cut // the first slice is being cut; the next waits an hour
		crashed := mem.CrashClone(rand.New(rand.NewPCG(uint64(slice), 1)))
		if err := j.Close(); err != nil { // Close does not wait the hour
			t.Fatal(err)
		}
		if _, err := mem.Bytes(name + freeSuffix); !vfs.IsNotExist(err) {
			t.Fatalf("Close left the released file: %v", err)
		}
		if _, err := crashed.Bytes(name); !vfs.IsNotExist(err) {
			t.Fatalf("after the crash the released segment is back under its name: %v", err)
		}
		if _, err := crashed.Bytes(name + freeSuffix); err != nil {
			t.Fatalf("after the crash: %v", err)
		}

		j2, err := Open(Options{FS: crashed, Dir: "j", SegmentSize: 2048, ReclaimSlice: slice, ReclaimGap: time.Microsecond})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		if err := j2.Replay(uint64(seg+1)<<32, func(p []byte, _ uint64) error {
			got = append(got, bytes.Clone(p))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("slice %d: replayed %d records, want %d", slice, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("slice %d: record %d differs", slice, i)
			}
		}
		if slice > 0 {
			waitReclaimed(t, j2)
		}
		if _, err := crashed.Bytes(name + freeSuffix); !vfs.IsNotExist(err) {
			t.Fatalf("slice %d: the .free file is still there after Open: %v", slice, err)
		}
		if err := j2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
