package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

type rec struct {
	pos     uint64
	payload []byte
}

func openJournal(t testing.TB, fs vfs.FS, opts Options) (*Journal, []rec) {
	t.Helper()
	opts.FS, opts.Dir = fs, "j"
	j, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []rec
	if err := j.Replay(0, func(p []byte, pos uint64) error {
		got = append(got, rec{pos, bytes.Clone(p)})
		return nil
	}); err != nil {
		j.Close()
		t.Fatalf("replay: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, got
}

func payload(rng *rand.Rand, i int) []byte {
	b := make([]byte, rng.IntN(300))
	for k := range b {
		b[k] = byte(rng.IntN(256))
	}
	return append([]byte(fmt.Sprintf("record-%d:", i)), b...)
}

func appendWait(t testing.TB, j *Journal, p []byte) uint64 {
	t.Helper()
	pos, b, err := j.Append(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pos
}

func sameRecs(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || !bytes.Equal(got[i].payload, want[i].payload) {
			t.Fatalf("record %d: got %x %q, want %x %q", i, got[i].pos, got[i].payload, want[i].pos, want[i].payload)
		}
	}
}

// replayedPrefix: what a crashed journal replayed (got) is a prefix of
// what was appended (attempted, in position order), at least as long as
// the confirmed records (at least confirmed of them; where confirmed ones
// are not a prefix, the caller checks each too).
func replayedPrefix(t *testing.T, got []rec, confirmed int, attempted []rec) {
	t.Helper()
	if len(got) < confirmed || len(got) > len(attempted) {
		t.Fatalf("replayed %d records; %d confirmed, %d attempted", len(got), confirmed, len(attempted))
	}
	sameRecs(t, got, attempted[:len(got)])
}

func TestAppendReplayAcrossSegments(t *testing.T) {
	fs := vfs.NewMemFS()
	rng := rand.New(rand.NewPCG(1, 1))
	j, got := openJournal(t, fs, Options{SegmentSize: 4096})
	if len(got) != 0 {
		t.Fatalf("new journal replayed %d records", len(got))
	}
	var want []rec
	for i := range 200 {
		p := payload(rng, i)
		want = append(want, rec{appendWait(t, j, p), p})
	}
	big := bytes.Repeat([]byte("B"), 10000) // larger than a segment: gets its own
	want = append(want, rec{appendWait(t, j, big), big})
	for _, r := range want {
		b, err := j.ReadAt(r.pos, len(r.payload))
		if err != nil || !bytes.Equal(b, r.payload) {
			t.Fatalf("ReadAt %x: %q, %v", r.pos, b, err)
		}
	}
	if n := len(j.Segments()); n < 10 {
		t.Fatalf("only %d segments for ~60 KB in 4 KB segments", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2, got := openJournal(t, fs, Options{SegmentSize: 4096})
	sameRecs(t, got, want)
	// Appends continue after the replayed tail.
	p := []byte("after reopen")
	want = append(want, rec{appendWait(t, j2, p), p})
	j2.Close()
	_, got = openJournal(t, fs, Options{SegmentSize: 4096})
	sameRecs(t, got, want)
}

func TestGroupCommit(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{})
	var wg sync.WaitGroup
	const writers, each = 32, 200
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				appendWait(t, j, []byte(fmt.Sprintf("%d/%d", w, i)))
			}
		}()
	}
	wg.Wait()
	st := j.Stats()
	if st.Records != writers*each {
		t.Fatalf("records %d", st.Records)
	}
	if st.Syncs >= st.Records {
		t.Fatalf("%d syncs for %d records: no grouping", st.Syncs, st.Records)
	}
	t.Logf("%d records in %d syncs", st.Records, st.Syncs)
}

func TestReleaseWaitsForReaders(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{SegmentSize: 1024})
	first := appendWait(t, j, bytes.Repeat([]byte("a"), 900))
	appendWait(t, j, bytes.Repeat([]byte("b"), 900))
	s := j.segs[uint32(first>>32)]
	if _, ok := s.acquire(); !ok {
		t.Fatal("acquire")
	}
	if err := j.Release(uint32(first >> 32)); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Bytes(s.name); err != nil {
		t.Fatalf("segment removed while a reader holds it: %v", err)
	}
	if err := s.releaseRef(j.removeSegment); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Bytes(s.name); !vfs.IsNotExist(err) {
		t.Fatalf("segment still there after its last reader: %v", err)
	}
	if _, err := j.ReadAt(first, 10); err == nil {
		t.Fatal("read from a released segment")
	}
}

// TestCrashKeepsEverythingConfirmed: crash at random points (power loss,
// with random torn tails) and check that replay returns every confirmed
// record, then a prefix of the rest, and never reports corruption.
func TestCrashKeepsEverythingConfirmed(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			j, _ := openJournal(t, faulty, Options{SegmentSize: 2048})
			var confirmed, attempted []rec
			n := 20 + rng.IntN(80)
			failAt := rng.IntN(n)
			for i := range n {
				if i == failAt { // from here on the disk refuses to sync
					faulty.SetInject(func(op vfs.Op, _ string) error {
						if op == vfs.OpSync {
							return vfs.ErrInjected
						}
						return nil
					})
				}
				p := payload(rng, i)
				pos, b, err := j.Append(p)
				if err != nil {
					break
				}
				attempted = append(attempted, rec{pos, p})
				if b.Wait(context.Background()) == nil {
					confirmed = append(confirmed, rec{pos, p})
				}
			}
			crashed := mem.CrashClone(rng)
			j.Close()
			_, got := openJournal(t, crashed, Options{SegmentSize: 2048})
			replayedPrefix(t, got, len(confirmed), attempted)
		})
	}
}

func TestTornTailIsCutAndAppendsContinue(t *testing.T) {
	mem := vfs.NewMemFS()
	j, _ := openJournal(t, mem, Options{})
	var want []rec
	for i := range 5 {
		p := []byte(fmt.Sprint("r", i))
		want = append(want, rec{appendWait(t, j, p), p})
	}
	j.Close()
	name := segName("j", 1)
	data, _ := mem.Bytes(name)
	for k, tail := range [][]byte{{0, 0, 0}, bytes.Repeat([]byte{0xAB}, 40), append(make([]byte, 16), 1, 2, 3)} {
		if err := mem.SetBytes(name, append(bytes.Clone(data), tail...)); err != nil {
			t.Fatal(err)
		}
		j2, got := openJournal(t, mem, Options{})
		sameRecs(t, got, want)
		p := []byte(fmt.Sprint("next ", k))
		want = append(want, rec{appendWait(t, j2, p), p})
		j2.Close()
		j3, got := openJournal(t, mem, Options{})
		sameRecs(t, got, want)
		j3.Close()
		data, _ = mem.Bytes(name)
	}
}

func TestFlippedByteIsCorruption(t *testing.T) {
	mem := vfs.NewMemFS()
	j, _ := openJournal(t, mem, Options{SegmentSize: 1024})
	for i := range 40 {
		appendWait(t, j, []byte(fmt.Sprint("record ", i, " with some padding to fill segments")))
	}
	j.Close()
	for _, c := range []struct {
		name string
		seg  uint32
		off  int
	}{
		{"sealed segment, payload", 1, segHeaderSize + frameHeaderSize + 3},
		{"sealed segment, length", 2, segHeaderSize + 5},
		{"sealed segment, header", 1, 9},
		{"last segment, followed by valid frames", 0, segHeaderSize + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := mem.CrashClone(nil)
			seg := c.seg
			if seg == 0 {
				ids, _ := fs.List("j")
				seg, _ = parseSegName(ids[len(ids)-1])
			}
			name := segName("j", seg)
			data, _ := fs.Bytes(name)
			data[c.off] ^= 0x40
			fs.SetBytes(name, data)
			j, err := Open(Options{FS: fs, Dir: "j", SegmentSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			err = j.Replay(0, func([]byte, uint64) error { return nil })
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.File != name {
				t.Fatalf("got %v, want a corruption error in %s", err, name)
			}
			t.Log(ce)
		})
	}
}

func TestFailClosed(t *testing.T) {
	for _, c := range []struct {
		name string
		op   vfs.Op
		err  error
	}{{"write", vfs.OpWrite, vfs.ErrInjected}, {"sync", vfs.OpSync, vfs.ErrInjected}, {"no space", vfs.OpWrite, vfs.ErrNoSpace}} {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			j, _ := openJournal(t, faulty, Options{})
			good := appendWait(t, j, []byte("confirmed"))
			faulty.SetInject(func(op vfs.Op, _ string) error {
				if op == c.op {
					return c.err
				}
				return nil
			})
			_, b, err := j.Append([]byte("doomed"))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Wait(context.Background()); !errors.Is(err, c.err) {
				t.Fatalf("batch error %v, want %v", err, c.err)
			}
			faulty.SetInject(nil)
			if _, _, err := j.Append([]byte("after")); !errors.Is(err, c.err) {
				t.Fatalf("append after the failure: %v (must fail closed)", err)
			}
			j.Close()
			_, got := openJournal(t, mem.CrashClone(nil), Options{})
			if len(got) != 1 || got[0].pos != good {
				t.Fatalf("after reopen: %d records", len(got))
			}
		})
	}
}

// TestReadManyTogether: records side by side in a segment, not in memory,
// are read with one file read per run (a backlog's drain), and each gets
// its own bytes; records out of order or far apart are read apart.
func TestReadManyTogether(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{}) // no cache: every read goes to the file
	rng := rand.New(rand.NewPCG(3, 4))
	var pos []uint64
	var sizes []uint32
	var want [][]byte
	for i := range 200 {
		p := payload(rng, i)
		pos = append(pos, appendWait(t, j, p))
		sizes = append(sizes, uint32(len(p)))
		want = append(want, p)
	}
	check := func(order []int, maxReads int64) {
		t.Helper()
		ps, ns := make([]uint64, len(order)), make([]uint32, len(order))
		for k, i := range order {
			ps[k], ns[k] = pos[i], sizes[i]
		}
		before := j.Stats().FileReads
		got, err := j.ReadMany(ps, ns)
		if err != nil {
			t.Fatal(err)
		}
		for k, i := range order {
			if !bytes.Equal(got[k], want[i]) {
				t.Fatalf("record %d: got %q, want %q", i, got[k], want[i])
			}
		}
		if reads := j.Stats().FileReads - before; reads > maxReads {
			t.Fatalf("%d records in %d file reads, want at most %d", len(order), reads, maxReads)
		}
	}
	all := make([]int, len(pos))
	for i := range all {
		all[i] = i
	}
	check(all, 1)               // one run
	check([]int{0, 2, 4, 6}, 1) // small gaps: still one
	check([]int{5, 4, 3}, 3)    // backwards: one each
	check([]int{10, 11, 150, 151}, 2)
}
