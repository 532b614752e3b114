// Package faults runs a broker's publish, receive, ack, nack, checkpoint
// and reclamation workload on a file system that fails system calls on a
// schedule drawn from a seed (vfs.RandomSchedule: an I/O error, a short
// write, a failed fsync or a full disk on the Nth write, sync, create,
// rename, truncate, fallocate, remove or directory sync), and after every
// fault checks what chute promises:
//
//   - the broker fails closed (the journal's sticky error: every later
//     call fails until it is reopened) or refuses cleanly (ErrDiskFull, for
//     a full disk, after which it carries on, or a failed checkpoint);
//   - reopened from what a power loss at the end would leave on disk
//     (MemFS.CrashClone, unsynced data dropped or torn), and again after a
//     clean Close, it holds exactly the confirmed state: every confirmed
//     publish is there unless an ack of it was confirmed (or attempted and
//     failed closed), no confirmed ack comes back, nothing refused with
//     ErrDiskFull was stored, and an ack refused with ErrDiskFull did not
//     happen.
//
// The workload runs from one goroutine, with automatic checkpoints off,
// so a cycle's system calls come in the same order every time: a seed
// reproduces. The test prints its seed and, for a failure, the command
// that runs that cycle alone:
//
//	go test ./tests/faults -faults.cycles=1000 -faults.seed=42
//	go test ./tests/faults -run 'TestFaults$' -faults.seed=42 -faults.cycle=17 -v
package faults

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/vfs"
)

var (
	cycles = flag.Int("faults.cycles", 50, "fault schedules to run")
	seed   = flag.Uint64("faults.seed", 0, "random seed (0: from the clock, printed)")
	only   = flag.Int("faults.cycle", -1, "run only this cycle of the seed (to reproduce a failure)")
)

// calls is about how many of each call a cycle's workload makes once the
// schedule is armed (measured: see TestFaultsCallCounts), so that most
// rules fire. Truncates happen only when a full disk undoes a batch, so a
// truncate rule fires only with a full-disk rule before it.
var calls = vfs.Calls{
	vfs.OpWrite: 140, vfs.OpSync: 120, vfs.OpCreate: 14, vfs.OpRename: 10,
	vfs.OpTruncate: 2, vfs.OpPreallocate: 4, vfs.OpRemove: 12, vfs.OpSyncDir: 14,
}

// tally is what the cycles found, for the report.
type tally struct {
	cycles, faults, failedClosed, diskFull, ckptRefused int
	byKind                                              map[string]int
	published, acked, present                           int // confirmed publishes and acks checked, messages found
	lost, resurrected, refusedStored, refusedAckDone    int
	rebuilds                                            int64
}

func TestFaults(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("faults: seed %d, %d cycles (reproduce: go test ./tests/faults -run 'TestFaults$' -faults.seed=%d -faults.cycles=%d)", s, *cycles, s, *cycles)
	tl := &tally{byKind: map[string]int{}}
	start := time.Now()
	for c := range *cycles {
		if *only >= 0 && c != *only {
			continue
		}
		if !runCycle(t, s, c, tl) {
			t.Fatalf("cycle %d of seed %d failed; reproduce it alone with:\n\tgo test ./tests/faults -run 'TestFaults$' -faults.seed=%d -faults.cycle=%d -v", c, s, s, c)
		}
	}
	kinds := slices.Sorted(maps.Keys(tl.byKind))
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s=%d", k, tl.byKind[k])
	}
	t.Logf("faults: %d cycles in %v; %d faults injected:%s", tl.cycles, time.Since(start).Round(time.Millisecond), tl.faults, b.String())
	t.Logf("faults: outcomes: %d failed closed, %d refused with ErrDiskFull (%d engine rebuilds), %d checkpoints refused",
		tl.failedClosed, tl.diskFull, tl.rebuilds, tl.ckptRefused)
	t.Logf("faults: checked %d confirmed publishes and %d confirmed acks (%d messages present after a crash), after a crash and after Close: %d lost, %d resurrected, %d refused but stored, %d refused acks done",
		tl.published, tl.acked, tl.present, tl.lost, tl.resurrected, tl.refusedStored, tl.refusedAckDone)
}

// model is what the workload was told.
type model struct {
	published   map[string]bool // publish confirmed
	refused     map[string]bool // publish refused with ErrDiskFull
	unknown     map[string]bool // publish failed otherwise: may or may not be stored
	acked       map[string]bool // ack confirmed
	ackRefused  map[string]bool // ack refused with ErrDiskFull (and not confirmed since)
	ackUnknown  map[string]bool // ack failed otherwise
	held        []chute.Delivery
	nextID      int
	failed      error // the broker failed closed with this
	faultsSeen  int
	ckptRefused int
	diskFull    int
}

func newModel() *model {
	return &model{published: map[string]bool{}, refused: map[string]bool{}, unknown: map[string]bool{},
		acked: map[string]bool{}, ackRefused: map[string]bool{}, ackUnknown: map[string]bool{}}
}

func options(fs vfs.FS) *broker.Options {
	return &broker.Options{FS: fs, SegmentSize: 64 << 10, CheckpointBytes: -1, DiskReserve: 64 << 10,
		DiskCheckInterval: time.Millisecond, MaxBatch: 10000}
}

// openCycle opens a broker on a fresh memory file system behind a faulty
// one (no fault injected yet) with the queue q; nil (reported) on error.
func openCycle(t *testing.T, c int) (*broker.Broker, *vfs.Faulty, *vfs.MemFS) {
	t.Helper()
	mem := vfs.NewMemFS()
	faulty := vfs.NewFaulty(mem, nil)
	b, err := broker.Open("data", options(faulty))
	if err != nil {
		t.Errorf("cycle %d: open: %v", c, err)
		return nil, nil, nil
	}
	err = b.CreateQueue(context.Background(), "q", chute.QueueConfig{MaxDeliveries: -1, VisibilityTimeout: time.Hour})
	if err != nil {
		t.Errorf("cycle %d: create: %v", c, err)
		b.Close()
		return nil, nil, nil
	}
	return b, faulty, mem
}

// runCycle runs one schedule; false means an invariant broke (reported).
func runCycle(t *testing.T, s uint64, c int, tl *tally) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(s, uint64(c)))
	b, faulty, mem := openCycle(t, c)
	if b == nil {
		return false
	}
	defer b.Close()
	m := newModel()
	for range 20 + rng.IntN(40) { // something to start from
		step(t, b, rng, m, opPublish)
	}
	sched := vfs.RandomSchedule(rng, 1+rng.IntN(3), calls)
	faulty.SetInject(sched.Inject)
	ok := true
	for i := range 80 + rng.IntN(80) {
		wasFailed := m.failed != nil
		op := pickOp(rng)
		if err := step(t, b, rng, m, op); err != nil {
			t.Errorf("cycle %d (%s), op %d (%s): %v", c, sched, i, op, err)
			ok = false
			break
		}
		// (A fault may surface an operation later: a receive returns once
		// its record is written, before the sync that then fails.)
		if m.failed != nil && !wasFailed && len(sched.Fired()) == 0 {
			t.Errorf("cycle %d (%s), op %d (%s): failed with no fault injected: %v", c, sched, i, op, m.failed)
			ok = false
			break
		}
		if m.failed != nil && i > 0 && rng.IntN(4) == 0 {
			break // failed closed and checked: enough
		}
	}
	fired := sched.Fired()
	faulty.SetInject(nil)
	if err := settle(b); err != nil {
		t.Errorf("cycle %d (%s): %v", c, sched, err)
		ok = false
	}
	crashed := mem.CrashClone(rng)
	ds := b.DiskStats()
	b.Close()
	if ok {
		ok = check(t, fmt.Sprintf("cycle %d (%s), after a crash", c, sched), crashed, m, tl, true)
	}
	if ok {
		ok = check(t, fmt.Sprintf("cycle %d (%s), after Close", c, sched), mem, m, tl, false)
	}
	tl.cycles++
	tl.faults += len(fired)
	for _, f := range fired {
		tl.byKind[f.Rule.Op.String()+"/"+f.Rule.Kind.String()]++
	}
	if m.failed != nil {
		tl.failedClosed++
	}
	tl.diskFull += m.diskFull
	tl.ckptRefused += m.ckptRefused
	tl.rebuilds += ds.Rebuilds
	if testing.Verbose() {
		t.Logf("cycle %d: %s: fired %d, %d published, %d acked, failed closed: %v, %+v", c, sched, len(fired), len(m.published), len(m.acked), m.failed, ds)
	}
	return ok
}

type opKind string

const (
	opPublish    opKind = "publish"
	opReceive    opKind = "receive"
	opAck        opKind = "ack"
	opNack       opKind = "nack"
	opCheckpoint opKind = "checkpoint"
)

func pickOp(rng *rand.Rand) opKind {
	switch x := rng.IntN(100); {
	case x < 40:
		return opPublish
	case x < 65:
		return opReceive
	case x < 85:
		return opAck
	case x < 90:
		return opNack
	}
	return opCheckpoint
}

// step runs one operation and records its outcome. It returns an error
// when the outcome breaks a promise that can be checked at once: an
// error that is neither ErrDiskFull nor leaves the broker failed closed.
func step(t *testing.T, b *broker.Broker, rng *rand.Rand, m *model, op opKind) error {
	ctx := context.Background()
	var err error
	switch op {
	case opPublish:
		msgs := make([]chute.Message, 1+rng.IntN(4))
		for i := range msgs {
			m.nextID++
			msgs[i] = chute.Message{ID: fmt.Sprint("m", m.nextID), Body: make([]byte, 200+rng.IntN(3000))}
		}
		_, err = b.Publish(ctx, "q", msgs...)
		for _, msg := range msgs {
			switch {
			case err == nil:
				m.published[msg.ID] = true
			case errors.Is(err, chute.ErrDiskFull):
				m.refused[msg.ID] = true
			default:
				m.unknown[msg.ID] = true
			}
		}
	case opReceive:
		var ds []chute.Delivery
		ds, err = b.Receive(ctx, "q", chute.ReceiveOptions{Max: 1 + rng.IntN(5), Wait: -1})
		m.held = append(m.held, ds...)
	case opAck, opNack:
		if len(m.held) == 0 {
			return nil
		}
		n := 1 + rng.IntN(min(len(m.held), 4))
		rng.Shuffle(len(m.held), func(i, j int) { m.held[i], m.held[j] = m.held[j], m.held[i] })
		batch := m.held[:n]
		receipts := make([]string, n)
		for i, d := range batch {
			receipts[i] = d.Receipt
		}
		if op == opAck {
			err = b.Ack(ctx, "q", receipts...)
		} else {
			nacks := make([]chute.Nack, n)
			for i, r := range receipts {
				nacks[i] = chute.Nack{Receipt: r, Delay: -1}
			}
			err = b.Nack(ctx, "q", nacks...)
		}
		var re *chute.ReceiptErrors
		if errors.As(err, &re) {
			return fmt.Errorf("%s: receipts refused: %w", op, err)
		}
		if op == opAck {
			for _, d := range batch {
				switch {
				case err == nil:
					m.acked[d.ID] = true
					delete(m.ackRefused, d.ID)
				case errors.Is(err, chute.ErrDiskFull):
					if !m.acked[d.ID] {
						m.ackRefused[d.ID] = true
					}
				default:
					m.ackUnknown[d.ID] = true
				}
			}
		}
		if err == nil || m.failed != nil || !errors.Is(err, chute.ErrDiskFull) {
			m.held = m.held[n:] // settled (or the broker is gone); a refused one is held still
		}
	case opCheckpoint:
		err = b.Checkpoint(ctx)
		if err != nil && b.Healthy() == nil {
			m.ckptRefused++ // the checkpoint failed, the broker did not
			return nil
		}
	}
	switch {
	case err == nil:
		if m.failed != nil {
			return fmt.Errorf("%s succeeded after the broker failed closed (%v)", op, m.failed)
		}
		return nil
	case errors.Is(err, chute.ErrDiskFull):
		m.diskFull++
		// Refused cleanly: the broker must carry on once it has rebuilt.
		if err := settle(b); err != nil {
			return err
		}
		return nil
	}
	if m.failed != nil {
		return nil // still failed: as it must be
	}
	// Any other error must leave the broker failed closed.
	if h := b.Healthy(); h == nil {
		return fmt.Errorf("%s failed (%v) but the broker did not fail closed", op, err)
	}
	if _, perr := b.Publish(ctx, "q", chute.Message{ID: "probe"}); perr == nil {
		return fmt.Errorf("%s failed (%v) but a publish after it succeeded", op, err)
	}
	m.failed = err
	return nil
}

// settle waits until the broker is over a full disk: its engine rebuilt,
// publishes accepted again and its reserve made again (or it failed
// closed). The workload goes on only then, so that what happens next does
// not depend on timing, and a seed reproduces. (An injected ENOSPC is a
// full disk that statfs does not show: the broker tries again after 100
// sampling intervals, 100 ms here.)
func settle(b *broker.Broker) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := b.DiskStats()
		if b.Healthy() != nil || !ds.Suspended && !ds.Full && ds.Released == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if ds.Suspended {
				return fmt.Errorf("the journal stayed suspended after a full disk: %+v", ds)
			}
			return nil // the reserve could not be made again (a fault): go on
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// check reopens fs without faults and compares what it holds with what
// the workload was told.
func check(t *testing.T, what string, fs *vfs.MemFS, m *model, tl *tally, count bool) bool {
	t.Helper()
	b, err := broker.Open("data", &broker.Options{FS: fs, MaxBatch: 10000, CheckpointBytes: -1})
	if err != nil {
		t.Errorf("%s: reopen: %v", what, err)
		return false
	}
	defer b.Close()
	ds, err := b.Peek(context.Background(), "q", 10000)
	if err != nil {
		t.Errorf("%s: peek: %v", what, err)
		return false
	}
	present := map[string]bool{}
	for _, d := range ds {
		present[d.ID] = true
	}
	ok := true
	fail := func(format string, args ...any) {
		t.Errorf("%s: "+format, append([]any{what}, args...)...)
		ok = false
	}
	for id := range m.published {
		if !present[id] && !m.acked[id] && !m.ackUnknown[id] {
			tl.lost++
			fail("confirmed publish %s lost", id)
		}
	}
	for id := range m.acked {
		if present[id] {
			tl.resurrected++
			fail("confirmed ack of %s undone: the message is back", id)
		}
	}
	for id := range m.refused {
		if present[id] {
			tl.refusedStored++
			fail("publish %s refused with ErrDiskFull, but stored", id)
		}
	}
	for id := range m.ackRefused {
		if m.published[id] && !present[id] && !m.ackUnknown[id] {
			tl.refusedAckDone++
			fail("ack of %s refused with ErrDiskFull, but done", id)
		}
	}
	if count {
		tl.published += len(m.published)
		tl.acked += len(m.acked)
		tl.present += len(present)
	}
	return ok
}

// TestFaultsCallCounts runs one cycle's workload with a schedule that
// fails nothing and reports how many calls of each kind it made after
// the warm-up: what calls above is tuned from.
func TestFaultsCallCounts(t *testing.T) {
	var mu sync.Mutex
	counts := map[vfs.Op]int{}
	counting := false
	mem := vfs.NewMemFS()
	faulty := vfs.NewFaulty(mem, func(op vfs.Op, _ string) error {
		mu.Lock()
		if counting {
			counts[op]++
		}
		mu.Unlock()
		return nil
	})
	b, err := broker.Open("data", options(faulty))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateQueue(context.Background(), "q", chute.QueueConfig{MaxDeliveries: -1, VisibilityTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	m := newModel()
	for range 40 {
		step(t, b, rng, m, opPublish)
	}
	mu.Lock()
	counting = true
	mu.Unlock()
	for range 120 {
		if err := step(t, b, rng, m, pickOp(rng)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	counting = false
	for op := range vfs.OpFree + 1 {
		if counts[op] > 0 {
			t.Logf("%s: %d", op, counts[op])
		}
	}
}

// TestFaultsConcurrent runs the same promises with the calls made from
// several goroutines at once (publishers, consumers that ack and nack,
// and checkpoints), where a batch holds many callers' records and an
// undone batch fails them all. Which call is the Nth then depends on the
// interleaving, so a seed does not reproduce a cycle exactly; it runs a
// tenth as many cycles as TestFaults.
func TestFaultsConcurrent(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	n := max(*cycles/10, 3)
	t.Logf("faults: seed %d, %d concurrent cycles", s, n)
	tl := &tally{byKind: map[string]int{}}
	for c := range n {
		if !runConcurrentCycle(t, s, c, tl) {
			t.Fatalf("concurrent cycle %d of seed %d failed", c, s)
		}
	}
	t.Logf("faults: %d concurrent cycles, %d faults injected; %d failed closed; checked %d confirmed publishes and %d confirmed acks: %d lost, %d resurrected, %d refused but stored",
		tl.cycles, tl.faults, tl.failedClosed, tl.published, tl.acked, tl.lost, tl.resurrected, tl.refusedStored)
}

func runConcurrentCycle(t *testing.T, s uint64, c int, tl *tally) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(s, 1<<32+uint64(c)))
	b, faulty, mem := openCycle(t, c)
	if b == nil {
		return false
	}
	defer b.Close()
	ctx := context.Background()
	sched := vfs.RandomSchedule(rng, 1+rng.IntN(3), calls)
	faulty.SetInject(sched.Inject)
	m := newModel()
	var mu sync.Mutex
	var violation error
	// classify checks an error as step does: ErrDiskFull, or the broker
	// failed closed.
	classify := func(op opKind, err error) {
		if err == nil || errors.Is(err, chute.ErrDiskFull) {
			return
		}
		if b.Healthy() == nil {
			mu.Lock()
			violation = fmt.Errorf("%s failed (%v) but the broker did not fail closed", op, err)
			mu.Unlock()
			return
		}
		mu.Lock()
		if m.failed == nil {
			m.failed = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for p := range 3 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(s, uint64(c)<<8|uint64(p)))
			for i := range 40 {
				msgs := make([]chute.Message, 1+r.IntN(4))
				for k := range msgs {
					msgs[k] = chute.Message{ID: fmt.Sprintf("p%d-%d-%d", p, i, k), Body: make([]byte, 200+r.IntN(3000))}
				}
				_, err := b.Publish(ctx, "q", msgs...)
				mu.Lock()
				for _, msg := range msgs {
					switch {
					case err == nil:
						m.published[msg.ID] = true
					case errors.Is(err, chute.ErrDiskFull):
						m.refused[msg.ID] = true
					default:
						m.unknown[msg.ID] = true
					}
				}
				mu.Unlock()
				classify(opPublish, err)
			}
		})
	}
	for q := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(s, uint64(c)<<8|0x80|uint64(q)))
			for range 40 {
				ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 1 + r.IntN(5), Wait: -1})
				classify(opReceive, err)
				if len(ds) == 0 {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				var acks []string
				var nacks []chute.Nack
				for _, d := range ds {
					if r.IntN(5) == 0 {
						nacks = append(nacks, chute.Nack{Receipt: d.Receipt, Delay: -1})
					} else {
						acks = append(acks, d.Receipt)
					}
				}
				if len(nacks) > 0 {
					classify(opNack, b.Nack(ctx, "q", nacks...))
				}
				if len(acks) == 0 {
					continue
				}
				err = b.Ack(ctx, "q", acks...)
				var re *chute.ReceiptErrors
				if errors.As(err, &re) {
					mu.Lock()
					violation = fmt.Errorf("ack: receipts refused: %w", err)
					mu.Unlock()
				}
				mu.Lock()
				for _, d := range ds {
					if !slices.Contains(acks, d.Receipt) {
						continue
					}
					switch {
					case err == nil:
						m.acked[d.ID] = true
						delete(m.ackRefused, d.ID)
					case errors.Is(err, chute.ErrDiskFull):
						if !m.acked[d.ID] {
							m.ackRefused[d.ID] = true
						}
					default:
						m.ackUnknown[d.ID] = true
					}
				}
				mu.Unlock()
				classify(opAck, err)
			}
		})
	}
	wg.Go(func() {
		for range 8 {
			b.Checkpoint(ctx) // fails or not: the broker goes on or fails closed
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	fired := sched.Fired()
	faulty.SetInject(nil)
	ok := violation == nil
	if !ok {
		t.Errorf("concurrent cycle %d (%s): %v", c, sched, violation)
	}
	if err := settle(b); err != nil {
		t.Errorf("concurrent cycle %d (%s): %v", c, sched, err)
		ok = false
	}
	crashed := mem.CrashClone(rng)
	b.Close()
	if ok {
		ok = check(t, fmt.Sprintf("concurrent cycle %d (%s), after a crash", c, sched), crashed, m, tl, true)
	}
	if ok {
		ok = check(t, fmt.Sprintf("concurrent cycle %d (%s), after Close", c, sched), mem, m, tl, false)
	}
	tl.cycles++
	tl.faults += len(fired)
	if m.failed != nil {
		tl.failedClosed++
	}
	return ok
}
