package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
	"github.com/chutemq/chute/internal/zbody"
)

// Broker is an embedded chute broker: queues and topics in a journal on
// disk, safe for concurrent use by any number of goroutines.
//
// How a change happens (see commitLocked): under b.mu the engine validates
// the operation and builds its record; the record is encoded and appended
// to the journal's pending batch; the engine applies it; b.mu is released;
// the caller waits for the batch's sync (group commit: one write and one
// fdatasync for every record appended meanwhile). Apply and append happen
// in the same order under the same lock, so the journal replays to exactly
// the state the broker had. A receive's deliver record does not wait for
// the sync: losing one in a crash loses only a delivery count.
//
// Lock order: b.mu, then the journal's own lock. b.mu is never held during
// file I/O or while waiting.
type Broker struct {
	opts Options
	log  *slog.Logger
	jrn  *journal.Journal
	mem  bool      // in-memory: nothing survives Close
	lock io.Closer // the data directory's lock (nil in memory); released after the journal closes
	dir  string    // the data directory, for messages

	mu       sync.Mutex
	eng      *engine.Engine           // guarded by mu
	waiters  map[string]chan struct{} // guarded by mu: closed when the queue gains messages
	encBuf   []byte                   // guarded by mu: record encoding buffer
	pubCount map[string]*pubCounters  // guarded by mu: publish outcomes the engine does not record (counters.go)
	brk      breakerSet               // guarded by mu, but for its kick channel (breaker.go)
	sch      schedState               // guarded by mu, but for its kick channel (schedule.go)

	segmentSize int64                        // the journal's segment size
	cacheBudget int64                        // the journal's read cache size (0: none)
	cacheLimit  int64                        // guarded by mu: the part of it in use
	memLimit    int64                        // guarded by mu: the last limit given to Options.MemoryLimit (0: none yet)
	heapLive    int64                        // guarded by mu: the live heap at the last sample (sampleHeap)
	nonHeap     int64                        // guarded by mu: what the runtime held besides the heap then
	readHeap    func() (live, nonHeap int64) // guarded by mu: heapNow; tests replace it
	closed      bool                         // guarded by mu

	recovery RecoveryStats // set by Open

	armed     atomic.Int64  // the engine event time the timer loop is armed for (0: none)
	timerKick chan struct{} // wakes the timer loop to re-arm
	maintKick chan struct{} // wakes the maintenance loop: a checkpoint may be due

	disk diskState        // free space, the reserve, rebuilds after ENOSPC (diskspace.go)
	zc   zbody.Compressor // zstd for bodies at rest (compress.go)

	ckptMu         sync.Mutex      // serialises checkpoints; never taken with mu held
	ckpt           checkpointState // guarded by ckptMu
	ckptAppendedAt atomic.Int64    // journal bytes appended at the last checkpoint
	ckptLastSize   atomic.Int64    // size of the last snapshot
	ckptTook       atomic.Int64    // how long the last checkpoint took (ns)
	ckptEndedAt    atomic.Int64    // when the last checkpoint ended (unix ns, wall clock)
	done           chan struct{}   // closed when Close begins
	wg             sync.WaitGroup
	closeOnce      sync.Once
	closeErr       error
}

var _ chute.API = (*Broker)(nil)

// Open opens the broker whose journal is in dir, creating it if needed,
// and recovers its state. An empty dir means an in-memory broker whose
// state is lost on Close (for tests and the demo).
func Open(dir string, opts *Options) (*Broker, error) {
	o := opts.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		opts:      o,
		log:       o.Logger,
		eng:       engine.New(),
		waiters:   make(map[string]chan struct{}),
		timerKick: make(chan struct{}, 1),
		maintKick: make(chan struct{}, 1),
		done:      make(chan struct{}),

		readHeap: heapNow,
	}
	fs := o.FS
	if dir == "" {
		b.mem = true
		fs, dir = vfs.NewMemFS(), "mem"
		o.Sync = SyncNever
	} else {
		if fs == nil {
			fs = vfs.OS
		}
		// The lock comes before anything is read: a second opener fails
		// here, having changed nothing.
		if err := fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		lock, err := LockDir(fs, dir)
		if err != nil {
			return nil, err
		}
		b.lock = lock
	}
	b.dir = dir
	j, err := journal.Open(journal.Options{
		FS: fs, Dir: dir, SegmentSize: o.SegmentSize, Sync: o.Sync.journal(),
		SyncInterval: o.SyncInterval, Logger: o.Logger, OnSync: o.OnSync,
		CacheBytes: cacheBytes(o.MemoryBudget, b.mem), OnNoSpace: b.onNoSpace,
		ReclaimSlice: journal.DefaultReclaimSlice, SyncDelay: max(o.SyncDelay, 0),
		FillAhead: journal.DefaultFillAhead,
	})
	if err != nil {
		b.unlock()
		return nil, wrapCorrupt(err)
	}
	b.cacheBudget = cacheBytes(o.MemoryBudget, b.mem)
	b.segmentSize = j.Stats().SegmentSize
	b.cacheLimit = b.cacheBudget
	b.jrn = j
	b.initDisk(fs, dir) // before recovery writes: a full volume gives back its reserve first
	if err := b.recover(); err != nil {
		j.Close()
		b.unlock()
		return nil, err
	}
	if err := b.checkpointAfterRecovery(); err != nil {
		j.Close()
		b.unlock()
		return nil, err
	}
	b.mu.Lock()
	b.budgetCacheLocked() // the backlog recovered: the cache sized for it now
	b.mu.Unlock()
	b.sampleHeap()
	b.goFunc(b.timerLoop)
	b.goFunc(b.maintenanceLoop)
	b.startDisk()
	b.startBreakers()
	b.startSchedules()
	return b, nil
}

// cacheBytes: an in-memory broker's segments are in memory already.
func cacheBytes(budget int64, mem bool) int64 {
	if mem {
		return 0
	}
	return max(budget, 0)
}

// ErrLocked: the data directory is in use by another broker or tool, in
// this process or another; errors.As with *LockedError says which.
var ErrLocked = errors.New("data directory in use")

// LockedError is Open's error (and the journal tools') when another
// process holds the data directory. It matches ErrLocked.
type LockedError struct {
	Dir   string
	PID   int       // the holder's process id (0: unknown)
	Host  string    // the holder's host name
	Since time.Time // when it took the lock
}

func (e *LockedError) Error() string {
	return (&vfs.LockedError{Dir: e.Dir, Holder: vfs.Holder{PID: e.PID, Host: e.Host, Since: e.Since}}).Error()
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockDir takes the exclusive lock of data directory dir (DIR/LOCK; see
// internal/vfs/lock.go) for as long as the result is open, or returns a
// *LockedError naming the holder. fs nil means the OS. The directory must
// exist. Open takes it; so do the offline journal tools.
func LockDir(fs vfs.FS, dir string) (io.Closer, error) {
	if fs == nil {
		fs = vfs.OS
	}
	l, err := vfs.LockDir(fs, dir)
	var le *vfs.LockedError
	if errors.As(err, &le) {
		return nil, &LockedError{Dir: dir, PID: le.Holder.PID, Host: le.Holder.Host, Since: le.Holder.Since}
	}
	return l, err
}

func (b *Broker) unlock() {
	if b.lock != nil {
		if err := b.lock.Close(); err != nil {
			b.log.Warn("release data directory lock", "err", err)
		}
	}
}

func wrapCorrupt(err error) error {
	var ce *journal.CorruptionError
	if errors.As(err, &ce) || errors.Is(err, engine.ErrCorruptRecord) {
		return fmt.Errorf("%w: %w", chute.ErrJournalCorrupt, err)
	}
	return err
}

// goFunc starts a goroutine owned by the broker: Close waits for it.
func (b *Broker) goFunc(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Close shuts the broker down: it refuses new calls, wakes every waiting
// receive (with ErrClosed), stops its goroutines, and flushes and closes
// the journal. Leases still held end and their messages are ready again
// (on the next Open), without counting those deliveries towards
// MaxDeliveries: a shutdown is not the message's fault. (Leases lost in a
// crash do count: a message that crashes its consumer, or the broker,
// still reaches its max deliveries.) It is safe to call more than once.
func (b *Broker) Close() error { return b.Shutdown(context.Background()) }

// Shutdown is Close with a deadline for the journal's final flush.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		close(b.done)
		for q, ch := range b.waiters {
			close(ch)
			delete(b.waiters, q)
		}
		// Hand the leases back, uncounted, in a record: after it the next
		// Open finds none to release (and count).
		if b.jrn.Err() == nil {
			if r := b.eng.ReturnLeases(b.nowLocked()); r != nil {
				if _, err := b.commitLocked(r); err != nil {
					b.log.Warn("return leases at shutdown", "err", err)
				}
			}
		}
		b.mu.Unlock()
		b.wg.Wait()
		// A final checkpoint makes the next Open quick.
		if b.jrn.Err() == nil && b.jrn.Appended() != b.ckptAppendedAt.Load() {
			if err := b.Checkpoint(ctx); err != nil {
				b.log.Warn("final checkpoint", "err", err)
			}
		}
		errc := make(chan error, 1)
		go func() {
			err := b.jrn.Close()
			b.unlock() // only once nothing more is written
			errc <- err
		}()
		select {
		case b.closeErr = <-errc:
		case <-ctx.Done():
			b.closeErr = ctx.Err()
		}
		b.zc.Close() // waits for a compression or decompression in progress
	})
	return b.closeErr
}

// nowLocked is the time for the next record: the clock, but never before
// the engine's time (time never goes backwards in the journal).
func (b *Broker) nowLocked() int64 {
	return max(b.opts.Clock.Now().UnixNano(), b.eng.Now())
}

// checkLocked refuses calls on a closed or failed broker.
func (b *Broker) checkLocked() error {
	if b.closed {
		return chute.ErrClosed
	}
	return b.jrn.Err()
}

// commitLocked journals a record the engine has already applied (every
// record but a publish) and returns the batch that will confirm it. A nil
// record (nothing changed) returns the newest pending batch instead, so
// that the caller still waits for everything it may have observed.
func (b *Broker) commitLocked(r *engine.Record) (*journal.Batch, error) {
	defer b.afterChangeLocked()
	if r == nil {
		return b.jrn.Barrier(), nil
	}
	b.encBuf = r.Encode(b.encBuf[:0])
	_, batch, err := b.jrn.Append(b.encBuf)
	if err != nil {
		// The engine is now ahead of the journal; the journal has failed
		// closed, so every later call fails and a reopen replays the truth.
		return nil, err
	}
	return batch, nil
}

// wait waits for a batch (nil: nothing to wait for).
func wait(ctx context.Context, batch *journal.Batch) error {
	if batch == nil {
		return nil
	}
	return batch.Wait(ctx)
}

// afterChangeLocked wakes receivers of queues that gained messages and the
// timer loop if the engine's next event moved earlier.
func (b *Broker) afterChangeLocked() {
	b.eng.DrainWakeups(func(q string) {
		if ch := b.waiters[q]; ch != nil {
			close(ch)
			delete(b.waiters, q)
		}
	})
	b.budgetCacheLocked()
	if b.checkpointDue() {
		select {
		case b.maintKick <- struct{}{}:
		default:
		}
	}
	if next := b.eng.NextEvent(); next != 0 {
		if armed := b.armed.Load(); armed == 0 || next < armed {
			select {
			case b.timerKick <- struct{}{}:
			default:
			}
		}
	}
}

// indexBytesPerMessage is what the engine's index costs per queued message
// (32 bytes measured, plus slack for its other tables); the memory budget
// pays for the index first and caches bodies with the rest.
const indexBytesPerMessage = 40

// MemoryAllowance is the heap's room beyond the budget: request and
// response buffers, streams, the engine's other tables, and the
// collector's headroom (see budgetCacheLocked).
const MemoryAllowance = 32 << 20

// budgetCacheLocked shares Options.MemoryBudget between the engine's index
// and the journal's cache of recent bodies: as a backlog grows, bodies
// yield to the index, so the broker's memory stays near the budget plus
// the index beyond it. The index counts twice — it is on the garbage-
// collected heap, which grows to about twice what is live — so that at
// 1M queued messages under the default budget no bodies are cached
// (issue 11: a server's resident memory stayed above the budget by the
// heap's headroom). The cache is resized only on changes of an eighth of
// the budget (resizing down empties it).
//
// With Options.MemoryLimit set (the broker owns the process: chute serve)
// the cache also yields to the rest of the heap — heap and cache share the
// budget plus MemoryAllowance, the heap counted at twice what was live at
// the last sample (sampleHeap, every heapSample) — and the Go memory
// limit keeps heap and cache within that: the budget (or the index when it
// outgrows it) plus the allowance, less the cache. Two floors keep the
// limit from starving the collector, which then runs without pause: the
// live heap plus as much again of what is live besides the index (the
// index is pointer-free and does not churn; buffers and streams do: the
// headroom GOGC=100 would give them), at least half the allowance; and,
// on top, what the runtime holds besides the heap, goroutine stacks above
// all. Without them, 1,000 queues with a stream each way (7,500
// goroutines, 55 MB of stacks) ran at 165–800 messages/s with the
// server's CPU in the collector, against 3.5k/s without a limit.
func (b *Broker) budgetCacheLocked() {
	budget := b.cacheBudget
	if budget <= 0 {
		return
	}
	index := b.eng.Entries() * indexBytesPerMessage
	want := max(budget-2*index, 0)
	if b.opts.MemoryLimit != nil && b.heapLive > 0 {
		want = min(want, max(budget+MemoryAllowance-2*b.heapLive, 0))
	}
	if d := want - b.cacheLimit; d >= budget/8 || -d >= budget/8 || want == 0 && b.cacheLimit > 0 {
		b.cacheLimit = want
		b.jrn.SetCacheLimit(want)
	}
	if b.opts.MemoryLimit != nil {
		churn := max(b.heapLive-index, MemoryAllowance/2) // what is live besides the index
		heap := max(max(budget, index)+MemoryAllowance-b.cacheLimit, b.heapLive+churn)
		limit := heap + b.nonHeap
		if d := limit - b.memLimit; d >= budget/8 || -d >= budget/8 || b.memLimit == 0 {
			b.memLimit = limit
			b.opts.MemoryLimit(limit)
		}
	}
}

// heapSample is how often sampleHeap runs: often enough that a heap that
// grows fast (thousands of streams opening) is not held for long under a
// limit set for a smaller one, where the collector runs without pause.
const heapSample = 250 * time.Millisecond

// sampleHeap reads the heap for budgetCacheLocked (only when the broker
// owns the process: Options.MemoryLimit set): what is live, and what the
// runtime holds besides the heap.
func (b *Broker) sampleHeap() {
	if b.opts.MemoryLimit == nil || b.cacheBudget <= 0 {
		return
	}
	b.mu.Lock()
	read := b.readHeap
	b.mu.Unlock()
	live, nonHeap := read()
	b.mu.Lock()
	b.heapLive, b.nonHeap = live, nonHeap
	b.budgetCacheLocked()
	b.mu.Unlock()
}

// The runtime's counts (runtime/metrics) that sampleHeap reads: the
// heap's live bytes at the last collection; all the memory the runtime
// has mapped; and the heap's share of it (objects, unused and free slots,
// pages given back).
var heapMetrics = []string{"/gc/heap/live:bytes", "/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes"}

// heapNow reads heapMetrics: the live heap, and what the runtime holds
// besides the heap (stacks, its own structures).
func heapNow() (live, nonHeap int64) {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := make([]int64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			v[i] = int64(s[i].Value.Uint64())
		}
	}
	return v[0], max(v[1]-v[2]-v[3]-v[4]-v[5], 0)
}

// waitChanLocked returns a channel closed when queue q may have gained
// deliverable messages.
func (b *Broker) waitChanLocked(q string) chan struct{} {
	ch := b.waiters[q]
	if ch == nil {
		ch = make(chan struct{})
		b.waiters[q] = ch
	}
	return ch
}

// timerLoop fires the engine's timers (delays coming due, leases and
// messages expiring) when they are due, so that waiting receivers wake. It
// holds one timer, armed for the engine's earliest event.
//
// The invariant that keeps a wake-up from being lost: b.armed, read by
// afterChangeLocked to decide whether a change needs a kick, is set under
// b.mu in the same hold that read the engine's next event. Set after
// unlocking (as it once was), a change made in between saw the old value:
// a retry nacked for 10 ms, after the loop had found no event left but
// before it stored 0, saw the expired timer's time still armed, did not
// kick, and the loop went to sleep with no timer at all
// (TestPriorityNoInversion): a waiting receive then slept on until its
// wait ran out or some unrelated call advanced the engine.
// The timer itself is armed after unlocking: a change then that needs an
// earlier time kicks, and the kick waits in timerKick until the select.
func (b *Broker) timerLoop() {
	var t chute.Timer
	var tc <-chan time.Time
	stop := func() {
		if t != nil {
			t.Stop()
			t, tc = nil, nil
		}
	}
	defer stop()
	for {
		b.mu.Lock()
		next := b.eng.NextEvent()
		if now := b.nowLocked(); next != 0 && next <= now {
			b.eng.Advance(now)
			b.afterChangeLocked()
			next = b.eng.NextEvent()
		}
		rearm := next != b.armed.Load() || t == nil && next != 0
		if rearm {
			b.armed.Store(next)
		}
		b.mu.Unlock()
		if rearm {
			stop()
			if next != 0 {
				t, tc = timerAt(b.opts.Clock, time.Unix(0, next))
			}
		}
		select {
		case <-tc:
			// Fired: until the loop has looked again (under b.mu), every
			// change kicks.
			t, tc = nil, nil
			b.armed.Store(0)
		case <-b.timerKick:
		case <-b.done:
			return
		}
	}
}

// The optional capabilities of package chute that the embedded broker has.
var (
	_ chute.AsyncPublisher = (*Broker)(nil)
	_ chute.AsyncReceiver  = (*Broker)(nil)
	_ chute.HealthReporter = (*Broker)(nil)
)
