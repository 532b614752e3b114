package journal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/vfs"
)

// gatedSyncs makes a Faulty whose syncs of segment files, once armed,
// announce themselves on started and wait for release (closed once: from
// then on syncs pass); writes fail while failWrites is set.
type gatedSyncs struct {
	armed      atomic.Bool
	failWrites atomic.Bool
	started    chan struct{}
	release    chan struct{}
}

func newGatedSyncs() *gatedSyncs {
	return &gatedSyncs{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gatedSyncs) inject(op vfs.Op, _ string) error {
	switch {
	case op == vfs.OpWrite && g.failWrites.Load():
		return &vfs.WriteFault{Keep: 0.5, Err: vfs.ErrInjected}
	case op == vfs.OpSync && g.armed.Load():
		g.started <- struct{}{}
		<-g.release
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// fileBytes reads n bytes at a record position straight from the segment
// file (not the journal's memory).
func fileBytes(t *testing.T, fs vfs.FS, pos uint64, n int) []byte {
	t.Helper()
	f, err := fs.Open(segName("j", uint32(pos>>32)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, int64(pos&0xffffffff)); err != nil {
		t.Fatal(err)
	}
	return buf
}

// TestHurryWritesDuringSync: a batch appended while the writer syncs an
// earlier one is written by Hurry at once — in the file, readable — while
// that sync still runs, and completed (synced) only after it, in order.
func TestHurryWritesDuringSync(t *testing.T) {
	mem := vfs.NewMemFS()
	g := newGatedSyncs()
	j, _ := openJournal(t, vfs.NewFaulty(mem, g.inject), Options{})
	appendWait(t, j, []byte("first")) // the segment exists, its header synced

	g.armed.Store(true)
	_, a, err := j.Append([]byte("record A"))
	if err != nil {
		t.Fatal(err)
	}
	<-g.started // the writer syncs A
	posB, b, err := j.Append([]byte("record B"))
	if err != nil {
		t.Fatal(err)
	}
	if isClosed(b.Written()) {
		t.Fatal("B written before Hurry while the writer syncs A")
	}
	j.Hurry(b)
	if !isClosed(b.Written()) {
		t.Fatal("Hurry during A's sync did not write B")
	}
	if got := fileBytes(t, mem, posB, 8); string(got) != "record B" {
		t.Fatalf("file at B: %q", got)
	}
	if got, err := j.ReadAt(posB, 8); err != nil || string(got) != "record B" {
		t.Fatalf("ReadAt B during the sync: %q, %v", got, err)
	}
	if isClosed(a.Done()) || isClosed(b.Done()) {
		t.Fatal("a batch completed before its sync")
	}
	if j.Barrier() != b {
		t.Fatal("Barrier is not the hurried batch, the newest")
	}
	g.armed.Store(false)
	close(g.release)
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !isClosed(a.Done()) || a.Err() != nil {
		t.Fatal("B completed before A")
	}
	j.Close()
	_, got := openJournal(t, mem, Options{})
	want := []string{"first", "record A", "record B"}
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		if string(got[i].payload) != w {
			t.Fatalf("record %d: %q, want %q", i, got[i].payload, w)
		}
	}
}

// TestHurryWriteFails: a hurried write that fails leaves the batch
// unwritten; the writer writes it again after its sync and completes it.
func TestHurryWriteFails(t *testing.T) {
	mem := vfs.NewMemFS()
	g := newGatedSyncs()
	j, _ := openJournal(t, vfs.NewFaulty(mem, g.inject), Options{})
	appendWait(t, j, []byte("first"))
	g.armed.Store(true)
	if _, _, err := j.Append([]byte("record A")); err != nil {
		t.Fatal(err)
	}
	<-g.started
	_, b, err := j.Append([]byte("record B"))
	if err != nil {
		t.Fatal(err)
	}
	g.failWrites.Store(true)
	j.Hurry(b)
	g.failWrites.Store(false)
	if isClosed(b.Written()) {
		t.Fatal("a failed hurried write marked its batch written")
	}
	// A later batch may not hurry past the unwritten one.
	_, c, err := j.Append([]byte("record C"))
	if err != nil {
		t.Fatal(err)
	}
	j.Hurry(c)
	if isClosed(c.Written()) {
		t.Fatal("C hurried past B, whose write failed")
	}
	g.armed.Store(false)
	close(g.release)
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Err() != nil || !isClosed(b.Written()) {
		t.Fatalf("B: %v", b.Err())
	}
	j.Close()
	_, got := openJournal(t, mem, Options{})
	var names []string
	for _, r := range got {
		names = append(names, string(r.payload))
	}
	if !slices.Equal(names, []string{"first", "record A", "record B", "record C"}) {
		t.Fatalf("replayed %q", names)
	}
}

// TestHurryCrash: appenders that hurry their batches while others wait
// for theirs, then a crash of the machine (unsynced writes lost at random):
// what is replayed is a prefix of what was appended, in order, and holds
// every confirmed record. With a commit delay too (SyncDelay, real
// timers), so that batches are hurried during the writer's waits as well
// as during its syncs, across segment boundaries.
func TestHurryCrash(t *testing.T) {
	for _, delay := range []time.Duration{0, 200 * time.Microsecond} {
		t.Run(fmt.Sprint("delay=", delay), func(t *testing.T) { testHurryCrash(t, delay) })
	}
}

// stillNow is a clock whose Now never moves and whose timers are real.
type stillNow struct{ chute.Clock }

func (stillNow) Now() time.Time { return time.Unix(1e9, 0) }

func testHurryCrash(t *testing.T, delay time.Duration) {
	var hurried, delayed atomic.Int64
	t.Cleanup(func() {
		t.Logf("hurried %d, delayed %d", hurried.Load(), delayed.Load())
		if hurried.Load() == 0 {
			t.Error("no batch was hurried in any run: the test did not test Hurry")
		}
	})
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			mem := vfs.NewMemFS()
			// A memory file system syncs at once, and on a loaded machine
			// the writer could then finish every sync before an appender
			// hurries: a sync here takes as long as a fast disk's, which
			// is what gives appenders the time to hurry during it.
			slowSyncs := vfs.NewFaulty(mem, func(op vfs.Op, _ string) error {
				if op == vfs.OpSync {
					time.Sleep(100 * time.Microsecond)
				}
				return nil
			})
			// The delay's rule waits only when the writer is woken less
			// than SyncDelay after its last sync ended; on a loaded
			// machine (CI, with -race) the wakes can come later than
			// 200 µs, and once the writer never waited in 30 seeds. A
			// clock whose Now stands still puts every idle wake right
			// after a sync, so the writer waits (while waits pay), and its
			// timers are real, so the appenders hurry during real waits.
			j, _ := openJournal(t, slowSyncs, Options{SegmentSize: 4096, SyncDelay: delay, Clock: stillNow{chute.SystemClock()}})
			var mu sync.Mutex
			// A first record, synced, leaves the writer idle: the
			// appenders' first append then wakes it right after a sync,
			// before any wait was fruitless, so with a delay every seed
			// waits at least once, while the appenders run.
			first := []byte("first")
			attempted := []rec{{appendWait(t, j, first), first}}
			confirmed := slices.Clone(attempted)
			var wg sync.WaitGroup
			for w := range 4 {
				wseed := rng.Uint64()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(wseed, uint64(w)))
					for i := range 40 {
						p := payload(r, w*1000+i)
						mu.Lock() // positions and attempted in the same order
						pos, b, err := j.Append(p)
						if err == nil {
							attempted = append(attempted, rec{pos, p})
						}
						mu.Unlock()
						if err != nil {
							t.Error(err)
							return
						}
						if r.IntN(2) == 0 {
							j.Hurry(b)
							select {
							case <-b.Written():
							case <-b.Done():
							}
						}
						if b.Wait(context.Background()) == nil {
							mu.Lock()
							confirmed = append(confirmed, rec{pos, p})
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			crashed := mem.CrashClone(rng)
			hurried.Add(j.Stats().Hurried)
			delayed.Add(j.Stats().Delayed)
			if delay > 0 && j.Stats().Delayed == 0 {
				t.Error("the writer never waited out a delay: the test did not test SyncDelay")
			}
			j.Close()
			_, got := openJournal(t, crashed, Options{SegmentSize: 4096})
			replayedPrefix(t, got, len(confirmed), attempted)
			for _, c := range confirmed {
				if !slices.ContainsFunc(got, func(r rec) bool { return r.pos == c.pos && bytes.Equal(r.payload, c.payload) }) {
					t.Fatalf("confirmed record at %x lost", c.pos)
				}
			}
		})
	}
}

// TestWaitWrittenHurriesAtTheNextSync: a batch appended while the writer
// writes an earlier one cannot be hurried yet; WaitWritten hurries it as
// soon as the writer begins that batch's sync, so it is written while the
// sync still runs.
func TestWaitWrittenHurriesAtTheNextSync(t *testing.T) {
	mem := vfs.NewMemFS()
	g := newGatedSyncs()
	writing := make(chan struct{}, 1)
	writeGate := make(chan struct{})
	var gateWrites atomic.Bool
	j, _ := openJournal(t, vfs.NewFaulty(mem, func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && gateWrites.CompareAndSwap(true, false) {
			writing <- struct{}{}
			<-writeGate
		}
		return g.inject(op, name)
	}), Options{})
	appendWait(t, j, []byte("first"))

	gateWrites.Store(true)
	g.armed.Store(true)
	_, a, err := j.Append([]byte("record A"))
	if err != nil {
		t.Fatal(err)
	}
	<-writing // the writer is writing A
	_, b, err := j.Append([]byte("record B"))
	if err != nil {
		t.Fatal(err)
	}
	if j.Hurry(b) == nil {
		t.Fatal("Hurry during A's write gave no channel to try again on")
	}
	waited := make(chan error, 1)
	go func() { waited <- j.WaitWritten(context.Background(), b) }()
	// Until WaitWritten has tried and been told to try again, A stays in
	// its write: then the hurry must come from the retry.
	for deadline := time.Now().Add(10 * time.Second); j.stats.hurryLater.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("WaitWritten never tried to hurry B")
		}
		runtime.Gosched()
	}
	close(writeGate) // A written; the writer begins A's sync, which blocks
	<-g.started
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // A's sync waits for the test: B would wait for ever
		close(g.release)
		t.Fatal("B not written during A's sync")
	}
	if isClosed(a.Done()) {
		t.Fatal("B was written only after A's sync")
	}
	g.armed.Store(false)
	close(g.release)
	if err := b.Wait(context.Background()); err != nil || a.Err() != nil {
		t.Fatalf("A %v, B %v", a.Err(), err)
	}
}
