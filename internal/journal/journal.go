package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/commitdelay"
	"github.com/chutemq/chute/internal/vfs"
)

// SyncPolicy says when the journal calls fdatasync.
type SyncPolicy uint8

const (
	// SyncAlways syncs every batch before completing it: a completed append
	// survives a crash of the machine.
	SyncAlways SyncPolicy = iota
	// SyncInterval completes a batch once written and syncs at least every
	// SyncInterval: a crash of the machine may lose that much.
	SyncInterval
	// SyncNever completes a batch once written and leaves syncing to the
	// operating system (and Close): only a process crash is survived.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("sync(%d)", uint8(p))
}

// Options configure a journal. The zero value, with FS and Dir set, works.
type Options struct {
	FS  vfs.FS
	Dir string
	// SegmentSize is the size at which a new segment starts; 0 means 64 MiB.
	SegmentSize int64
	Sync        SyncPolicy
	// SyncInterval is the longest time between syncs with SyncInterval;
	// 0 means 100 ms.
	SyncInterval time.Duration
	Logger       *slog.Logger
	// OnSync, if set, is told the duration of every fdatasync.
	OnSync func(time.Duration)
	// CacheBytes keeps up to this many of the most recently written bytes
	// in memory, so that reading a fresh record needs no system call; older
	// records are read back from their segment. 0 keeps none.
	CacheBytes int64
	// OnNoSpace, if set, is called (from the writer, holding no lock) when
	// a batch failed for lack of space and was undone: the journal refuses
	// appends until the owner, having brought its state back in line with
	// the journal (Reread), calls Resume. See nospace.go.
	OnNoSpace func()
	// ReclaimSlice, when above 0, gives a released segment's blocks back
	// this many bytes at a time, ReclaimGap apart (0: 1 ms), from a
	// goroutine of the journal's, instead of unlinking it whole where it
	// is released: a whole segment's unlink holds up every sync on the
	// volume for tens of milliseconds (reclaim.go). 0 removes at once,
	// on the releasing goroutine (what the simulation needs: no goroutine
	// of the journal's own deciding when its files change).
	ReclaimSlice int64
	ReclaimGap   time.Duration
	// SyncDelay, with SyncAlways, is a commit delay: when the writer,
	// idle, is woken by an append less than SyncDelay after its last
	// sync ended, it waits until SyncDelay has passed since then before
	// it takes the appends, so that those arriving meanwhile share one
	// sync (as PostgreSQL's commit_delay). A writer busy syncing one batch
	// after another never waits, nor does an append after a quiet spell.
	// 0 never waits. See syncdelay.go for why and what it measured.
	SyncDelay time.Duration
	// Clock times SyncDelay; default the system clock.
	Clock chute.Clock
	// FillAhead, with SyncAlways, when above 0, keeps the tail segment
	// written with zeros this many bytes past its last record, from a
	// goroutine of the journal's, so that an append's sync writes data
	// alone, not the file's growth (fill.go; DefaultFillAhead). 0 fills
	// nothing (the simulation: no goroutine of the journal's own).
	FillAhead int64
}

// DefaultReclaimSlice is the ReclaimSlice the broker and cluster nodes
// use (measured in reclaim.go's note).
const DefaultReclaimSlice = 256 << 10

// ErrClosed is returned by calls on a closed journal.
var ErrClosed = errors.New("journal closed")

// ErrNotReplayed is returned by Append before Replay has run.
var ErrNotReplayed = errors.New("journal not replayed yet")

// CorruptionError is the public type (package chute): file, offset and
// reason of damage that is not a torn tail.
type CorruptionError = chute.CorruptionError

// Journal is chute's write-ahead log: append-only segment files written by
// one goroutine with group commit. Positions (segment id << 32 | offset of
// a record's payload) are stable for the life of the data.
//
// Lock order: callers may hold their own lock while calling Append; the
// journal's mu is always taken last and never held during file I/O.
type Journal struct {
	opts    Options
	segSize int64
	log     *slog.Logger

	mu       sync.Mutex
	err      error               // sticky: the first write or sync failure
	full     error               // a batch failed for lack of space: appends refused until Resume (nospace.go)
	reinit   bool                // the tail segment's file was undone: Resume queues its header again
	closed   bool                // Close has begun
	replayed bool                // Replay has run; appends allowed
	segs     map[uint32]*segment // every segment not yet released
	tail     *segment            // the segment appends go to
	tailOff  int64               // where the next frame goes in tail (incl. pending)
	pending  []chunk             // appended, not yet taken by the writer
	spare    [][]byte            // buffers to reuse for pending chunks
	cur      *Batch              // collecting appends; nil when none pending
	inflight *Batch              // being written by the writer
	kick     chan struct{}       // wakes the writer (buffered, 1)
	quit     chan struct{}       // closed by Close: ends a SyncDelay wait
	flushReq chan chan error     // asks the writer to sync now
	writing  []chunk             // taken by the writer, being written
	// Hurry (hurry.go): while the writer syncs a batch, a caller that
	// needs a later batch only written may write it itself.
	wmu     sync.Mutex     // held by whoever writes chunks: the writer (from taking a batch to its sync), or a hurrying caller
	syncing *segment       // the segment the writer is syncing, with wmu free: a caller may hurry appends to it
	hurried []hurriedBatch // batches hurried during the writer's sync, in order; the writer syncs and completes them
	// syncStarts is closed when the writer next begins a sync (made on
	// demand by Hurry for a caller that could not hurry yet).
	syncStarts chan struct{}
	reclaim    *reclaimer    // gives released segments back in slices; nil: removed at once
	fill       *filler       // writes zeros ahead of the tail (FillAhead); nil: none
	cache      *readCache    // recently written bytes, outside the Go heap
	done       chan struct{} // closed when the writer exits
	skipped    []Damage      // damage Replay skipped before the checkpoint (reader.go)

	noPrealloc atomic.Bool // SetPreallocate(false): the disk is short of space
	fullSet    atomic.Bool // full != nil (written under mu), for Suspended's fast path

	stats struct {
		records, bytes, writes, syncs, syncNanos atomic.Int64
		cacheHits, fileReads                     atomic.Int64
		rewinds                                  atomic.Int64 // batches undone for lack of space
		hurried                                  atomic.Int64 // batches written by Hurry
		delayed                                  atomic.Int64 // SyncDelay waits
		hurryLater                               atomic.Int64 // Hurry calls that could not hurry yet (retry)
		filled                                   atomic.Int64 // zeros written ahead of the tail (fill.go)
		released                                 atomic.Int64 // segments released (Release)
	}
}

// chunk is a run of frames to write at off in seg.
type chunk struct {
	seg  *segment
	off  int64
	data []byte
	init bool // the segment file must be created first
}

// Batch is the group of appends completed together by one write (and, with
// SyncAlways, one sync).
type Batch struct {
	written chan struct{} // closed once the batch is in the files (synced or not)
	done    chan struct{}
	err     error
}

// Written is closed when the batch has been written to the segment files
// (before the sync): it then survives a crash of the process, if not of
// the machine. A batch whose write failed is never Written; select on
// Done as well.
func (b *Batch) Written() <-chan struct{} { return b.written }

// Done is closed when the batch is durable (per the sync policy) or failed.
func (b *Batch) Done() <-chan struct{} { return b.done }

// Err is the batch's outcome; valid after Done is closed.
func (b *Batch) Err() error { return b.err }

// Wait waits for the batch or for ctx.
func (b *Batch) Wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Batch) complete(err error) {
	b.err = err
	if err == nil {
		select {
		case <-b.written:
		default:
			close(b.written)
		}
	}
	close(b.done)
}

// failedBatch is a batch already complete with err.
func failedBatch(err error) *Batch {
	b := newBatch()
	b.complete(err)
	return b
}

func newBatch() *Batch { return &Batch{written: make(chan struct{}), done: make(chan struct{})} }

// Open opens (or creates) the journal in opts.Dir. Call Replay next.
func Open(opts Options) (*Journal, error) {
	if opts.FS == nil {
		opts.FS = vfs.OS
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	if opts.SegmentSize > 1<<32-1 {
		return nil, fmt.Errorf("segment size %d above 4 GiB", opts.SegmentSize)
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = chute.SystemClock()
	}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("journal dir: %w", err)
	}
	cache, err := newReadCache(opts.CacheBytes)
	if err != nil {
		return nil, fmt.Errorf("journal read cache: %w", err)
	}
	j := &Journal{
		opts: opts, segSize: opts.SegmentSize, log: opts.Logger, cache: cache,
		segs:     make(map[uint32]*segment),
		kick:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		flushReq: make(chan chan error),
		done:     make(chan struct{}),
	}
	names, err := opts.FS.List(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("list journal dir: %w", err)
	}
	for _, name := range names {
		if id, ok := parseSegName(name); ok {
			j.segs[id] = &segment{id: id, name: segName(opts.Dir, id)}
		}
	}
	if opts.FillAhead > 0 && opts.Sync == SyncAlways {
		j.fill = newFiller(opts.FillAhead, opts.SegmentSize)
	}
	if opts.ReclaimSlice > 0 {
		j.reclaim = newReclaimer(opts.FS, opts.Dir, opts.ReclaimSlice, opts.ReclaimGap, j.log, j.shortOfSpace)
		j.reclaim.leftovers(names)
	} else {
		removeLeftovers(opts.FS, opts.Dir, names, j.log)
	}
	return j, nil
}

// removeSegment removes a released segment's file: at once, or through
// the reclaimer.
func (j *Journal) removeSegment(name string) error {
	if j.reclaim == nil {
		return j.opts.FS.Remove(name)
	}
	return j.reclaim.release(name)
}

// shortOfSpace reports whether the volume is short of space: a batch was
// undone for lack of it, or preallocation is off.
func (j *Journal) shortOfSpace() bool { return j.fullSet.Load() || j.noPrealloc.Load() }

// Append adds a record and returns its position and the batch that will
// complete it. Records are written in the order of their Append calls.
// payload is copied.
func (j *Journal) Append(payload []byte) (uint64, *Batch, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.err != nil:
		return 0, nil, j.err
	case j.full != nil:
		return 0, nil, j.full
	case j.closed:
		return 0, nil, ErrClosed
	case !j.replayed:
		return 0, nil, ErrNotReplayed
	case len(payload) > MaxRecordSize:
		return 0, nil, fmt.Errorf("record of %d bytes above the %d-byte maximum", len(payload), MaxRecordSize)
	}
	size := int64(frameSize(len(payload)))
	if j.tail == nil || j.tailOff > segHeaderSize && j.tailOff+size > j.segSize {
		j.rollLocked()
	}
	pos := uint64(j.tail.id)<<32 | uint64(j.tailOff+frameHeaderSize)
	var c *chunk
	if n := len(j.pending); n > 0 && j.pending[n-1].seg == j.tail {
		c = &j.pending[n-1]
	} else {
		j.pending = append(j.pending, chunk{seg: j.tail, off: j.tailOff, data: j.spareLocked()})
		c = &j.pending[len(j.pending)-1]
	}
	c.data = appendFrame(c.data, j.tail.id, payload)
	j.tailOff += size
	if j.cur == nil {
		j.cur = newBatch()
	}
	j.stats.records.Add(1)
	j.stats.bytes.Add(size)
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return pos, j.cur, nil
}

func (j *Journal) spareLocked() []byte {
	if n := len(j.spare); n > 0 {
		b := j.spare[n-1]
		j.spare = j.spare[:n-1]
		return b[:0]
	}
	return nil
}

// rollLocked starts a new segment for the next append. The writer creates
// its file when it reaches the first chunk.
func (j *Journal) rollLocked() {
	var id uint32 = 1
	if j.tail != nil {
		id = j.tail.id + 1
	}
	s := &segment{id: id, name: segName(j.opts.Dir, id)}
	j.segs[id] = s
	j.tail = s
	j.tailOff = segHeaderSize
	j.pending = append(j.pending, chunk{seg: s, off: 0, data: segHeader(id, time.Now().UnixNano()), init: true})
}

// SetPreallocate says whether new segments get their whole size
// reserved up front (the default). The broker turns it off while the disk
// is short of space: a segment's preallocation would take at once what
// acks and checkpoints need, for records that are not written yet.
func (j *Journal) SetPreallocate(on bool) { j.noPrealloc.Store(!on) }

// Barrier returns the newest batch not yet complete, or nil when every
// append so far is complete. Waiting for it waits for everything appended.
func (j *Journal) Barrier() *Batch {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.full != nil {
		// What the caller observed may have been in the undone batch.
		return failedBatch(j.full)
	}
	if j.cur != nil {
		return j.cur
	}
	if n := len(j.hurried); n > 0 {
		return j.hurried[n-1].b
	}
	return j.inflight
}

// Appended is the number of bytes appended since Open.
func (j *Journal) Appended() int64 { return j.stats.bytes.Load() }

// Sync writes everything appended so far and syncs it, whatever the sync
// policy (a checkpoint needs the records before it on disk).
func (j *Journal) Sync(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case j.flushReq <- reply:
	case <-j.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err returns the sticky I/O error, if any.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// writeLoop is the only goroutine that writes or syncs segment files.
//
// A cycle: take the pending appends as one batch (under mu), write and
// sync them (holding no lock), then — in one hold of mu — move the
// batch's chunks to the read cache and take the next batch, which
// collected while this one synced; then complete the batch. Taking the
// next batch in the same hold saves a lock and a pass through the select
// per cycle under load. (Completing before the cache copy was tried: the
// woken callers then wait for mu behind the copy, and plain publishes got
// slower.) A Sync request is served between batches, so that a steady
// load cannot starve it.
func (j *Journal) writeLoop() {
	defer close(j.done)
	var tick <-chan time.Time
	if j.opts.Sync == SyncInterval {
		t := time.NewTicker(j.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	var w writer
	w.j = j
	w.delay.Delay = j.opts.SyncDelay
	w.lastSync = time.Now()
	var (
		next    takenBatch // taken in the previous cycle; the writer holds wmu for it
		flushed chan error
	)
	for {
		flushed = nil
		t := next
		next = takenBatch{}
		pretaken := !t.empty()
		if pretaken {
			select {
			case flushed = <-j.flushReq:
			default:
			}
		} else {
			select {
			case <-j.kick:
			case flushed = <-j.flushReq:
			case <-tick:
				if w.dirty != nil && time.Since(w.lastSync) >= j.opts.SyncInterval {
					if err := w.sync(); err != nil {
						j.fail(err)
					}
				}
				continue
			}
			if flushed == nil {
				j.delaySync(&w)
			}
			t = j.take()
		}
		if !t.empty() {
			next = j.writeBatch(&w, t, flushed == nil && !t.closing)
		}
		if flushed != nil && pretaken {
			// The batch was taken before the request came: what was
			// appended in between must be synced too.
			rest := j.take()
			if !rest.empty() {
				j.writeBatch(&w, rest, false)
			}
			t.closing = t.closing || rest.closing
		}
		if flushed != nil {
			err := j.Err()
			if err == nil {
				err = j.Suspended()
			}
			if err == nil {
				if err = w.sync(); err != nil {
					j.fail(err)
				}
			}
			flushed <- err
		}
		if t.closing {
			if err := w.finish(); err != nil {
				j.fail(err)
			}
			return
		}
	}
}

// takenBatch is what the writer has taken: the chunks to write, the
// batches they complete, the batches hurried before them (written
// already, in preSeg, to be synced), whether the journal was closing
// then, and the sticky error then.
type takenBatch struct {
	chunks  []chunk
	bs      []*Batch
	pre     []*Batch
	preSeg  *segment
	closing bool
	failed  error
}

func (t *takenBatch) empty() bool { return len(t.bs) == 0 && len(t.pre) == 0 }

// take takes the writer's next batch, taking wmu first; when there is
// nothing to write it lets wmu go again. The writer holds wmu from taking
// a batch until it syncs it (writeBatch), so that a hurrying caller never
// writes while the writer does.
func (j *Journal) take() takenBatch {
	j.wmu.Lock()
	j.mu.Lock()
	t := j.takeLocked()
	j.mu.Unlock()
	if t.empty() {
		j.wmu.Unlock()
	}
	return t
}

// takeLocked takes the pending appends, behind what was hurried during the
// last sync, as the batch to write; the caller holds wmu. Hurried chunks
// that were written go to the read cache now, after the chunks of the
// batch before them (the cache keeps positions in order); a hurried write
// that failed is written again, first.
func (j *Journal) takeLocked() takenBatch {
	t := takenBatch{closing: j.closed, failed: j.err}
	for _, h := range j.hurried {
		if h.written {
			j.keepLocked(h.chunks)
			t.pre, t.preSeg = append(t.pre, h.b), h.chunks[0].seg
			continue
		}
		t.chunks = append(t.chunks, h.chunks...)
		t.bs = append(t.bs, h.b)
	}
	clear(j.hurried)
	j.hurried = j.hurried[:0]
	if t.chunks == nil {
		t.chunks = j.pending
	} else {
		t.chunks = append(t.chunks, j.pending...)
	}
	if j.cur != nil {
		t.bs = append(t.bs, j.cur)
	}
	j.pending, j.cur, j.writing = nil, nil, t.chunks
	j.inflight = nil
	switch {
	case len(t.bs) > 0:
		j.inflight = t.bs[len(t.bs)-1]
	case len(t.pre) > 0:
		j.inflight = t.pre[len(t.pre)-1]
	}
	if !t.empty() {
		select { // the kick of these appends: taken with them
		case <-j.kick:
		default:
		}
	}
	return t
}

// writeBatch writes and syncs a taken batch and completes it; the caller
// holds wmu, and writeBatch lets it go. If it was written and takeNext is
// set, it returns the next batch (taken in the same hold of mu that caches
// this one's chunks, wmu then still held for it), or none when nothing is
// pending.
//
// wmu is let go during the sync (SyncAlways or SyncInterval), with
// j.syncing set: a caller may then hurry later appends (Hurry) into the
// file, and the next cycle syncs them.
func (j *Journal) writeBatch(w *writer, t takenBatch, takeNext bool) takenBatch {
	err := t.failed
	if err == nil {
		if t.preSeg != nil && w.dirty == nil {
			w.dirty = t.preSeg
		}
		err = w.write(t.chunks)
	}
	if err == nil {
		for _, b := range t.bs {
			close(b.written)
		}
		if j.opts.Sync == SyncAlways || j.opts.Sync == SyncInterval && time.Since(w.lastSync) >= j.opts.SyncInterval {
			j.mu.Lock()
			j.letHurryLocked(w.dirty)
			j.mu.Unlock()
			j.wmu.Unlock()
			err = w.sync()
			j.wmu.Lock()
		}
	}
	var ns *noSpaceError
	preErr := err
	switch {
	case err == nil:
		var next takenBatch
		j.mu.Lock()
		j.syncing = nil
		j.inflight, j.writing = nil, nil
		j.keepLocked(t.chunks)
		if takeNext && (j.cur != nil || len(j.hurried) > 0) {
			next = j.takeLocked()
		}
		j.mu.Unlock()
		if next.empty() {
			j.wmu.Unlock()
		}
		completeAll(t.pre, nil)
		completeAll(t.bs, nil)
		return next
	case t.failed == nil && errors.As(err, &ns):
		// Nothing of the batch was confirmed: undo it and stay usable
		// (nospace.go). What was hurried before it is in the file before
		// the undone part, and synced by then (undo syncs the segment it
		// truncates; a write to a new segment synced the one before).
		err = j.rewind(w, t.chunks, ns.err)
		preErr = j.Err() // nil unless the undoing failed

	default:
		j.fail(err)
		err = j.Err()
		preErr = err
	}
	j.mu.Lock()
	j.syncing = nil
	j.inflight, j.writing = nil, nil
	j.recycleChunksLocked(t.chunks)
	j.mu.Unlock()
	j.wmu.Unlock()
	completeAll(t.pre, preErr)
	completeAll(t.bs, err)
	return takenBatch{}
}

// completeAll completes batches in order with err.
func completeAll(bs []*Batch, err error) {
	for _, b := range bs {
		b.complete(err)
	}
}

// fail records the first I/O error; the journal is broken from then on.
// Every failed fsync ends here, whatever its errno: it is never retried
// (see nospace.go for the one failure that is not sticky, a write that
// found the disk full).
func (j *Journal) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = fmt.Errorf("journal failed, reopen to recover: %w", err)
		j.log.Error("journal write failed; failing closed", "err", err)
	}
}

// writer is the write loop's state.
type writer struct {
	j        *Journal
	dirty    *segment // segment with writes not yet synced
	lastSync time.Time
	// delay is the commit delay's rule (Options.SyncDelay, syncdelay.go).
	delay commitdelay.Rule
}

// write writes chunks in order; the policy's sync is writeBatch's.
func (w *writer) write(chunks []chunk) error {
	j := w.j
	for _, c := range chunks {
		if c.seg != w.dirty && w.dirty != nil {
			// Seal the previous segment before touching the next, so that
			// only the last segment can have a torn tail.
			if err := w.sync(); err != nil {
				return err
			}
		}
		if c.init {
			f, err := j.opts.FS.Create(c.seg.name)
			if err != nil {
				return noSpace(fmt.Errorf("create segment %d: %w", c.seg.id, err))
			}
			if !j.noPrealloc.Load() {
				if err := f.Preallocate(j.segSize); err != nil {
					j.log.Warn("preallocate segment", "segment", c.seg.id, "err", err)
				}
			}
			c.seg.mu.Lock()
			c.seg.f = f
			c.seg.mu.Unlock()
		}
		if _, err := c.seg.f.WriteAt(c.data, c.off); err != nil {
			return noSpace(fmt.Errorf("write segment %d at %d: %w", c.seg.id, c.off, err))
		}
		if j.fill != nil {
			j.fill.wrote(c.seg.id, c.off+int64(len(c.data)))
		}
		j.stats.writes.Add(1)
		w.dirty = c.seg
		if c.init {
			if err := w.sync(); err != nil {
				return err
			}
			if err := j.opts.FS.SyncDir(j.opts.Dir); err != nil {
				return fmt.Errorf("sync journal dir: %w", err)
			}
		}
	}
	return nil
}

// keepLocked copies written chunks into the read cache and recycles their
// buffers for later appends.
func (j *Journal) keepLocked(chunks []chunk) {
	for _, c := range chunks {
		if c.init {
			continue
		}
		j.cache.add(c.seg.id, c.off, c.data)
		j.recycleLocked(c.data)
	}
}

// recycleChunksLocked recycles the buffers of chunks that were not written
// (nothing of them may be cached: their positions will be reused).
func (j *Journal) recycleChunksLocked(chunks []chunk) {
	for _, c := range chunks {
		if !c.init {
			j.recycleLocked(c.data)
		}
	}
}

func (j *Journal) recycleLocked(b []byte) {
	if cap(b) <= 1<<20 && len(j.spare) < 8 {
		j.spare = append(j.spare, b)
	}
}

// lookupLocked finds the n bytes at pos in memory: appended and not yet
// written, being written, or in the read cache.
func (j *Journal) lookupLocked(pos uint64, n int) []byte {
	id, off := uint32(pos>>32), int64(pos&0xffffffff)
	in := func(c *chunk) []byte {
		if c.seg.id == id && off >= c.off && off+int64(n) <= c.off+int64(len(c.data)) {
			return c.data[off-c.off : off-c.off+int64(n)]
		}
		return nil
	}
	for _, list := range [][]chunk{j.pending, j.writing} {
		for i := range list {
			if b := in(&list[i]); b != nil {
				return b
			}
		}
	}
	for _, h := range j.hurried {
		for i := range h.chunks {
			if b := in(&h.chunks[i]); b != nil {
				return b
			}
		}
	}
	return j.cache.get(id, off, n)
}

func (w *writer) sync() error {
	if w.dirty == nil {
		return nil
	}
	start := time.Now()
	err := w.dirty.f.Sync()
	d := time.Since(start)
	w.lastSync = start
	if err != nil {
		return fmt.Errorf("sync segment %d: %w", w.dirty.id, err)
	}
	w.dirty = nil
	if w.j.opts.SyncDelay > 0 {
		w.delay.Synced(w.j.opts.Clock.Now())
	}
	w.j.stats.syncs.Add(1)
	w.j.stats.syncNanos.Add(int64(d))
	if w.j.opts.OnSync != nil {
		w.j.opts.OnSync(d)
	}
	return nil
}

// finish syncs what is left on Close, whatever the policy.
func (w *writer) finish() error {
	if w.j.Err() != nil {
		return nil
	}
	return w.sync()
}

// Close completes every pending append, syncs, and closes the files. It is
// safe to call more than once.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		<-j.done
		return j.Err()
	}
	j.closed = true
	close(j.quit)
	started := j.replayed
	j.mu.Unlock()
	if started {
		select {
		case j.kick <- struct{}{}:
		default:
		}
		<-j.done
		j.closeFill() // before the files it writes to are closed
	} else {
		close(j.done)
	}
	j.mu.Lock()
	segs := j.segs
	err := j.err
	j.mu.Unlock()
	for _, s := range segs {
		if cerr := s.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if j.reclaim != nil {
		j.reclaim.close()
	}
	j.mu.Lock()
	j.cache.close()
	j.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return err
}

// ReadAt reads n bytes at pos (a position from Append plus an offset inside
// the record). The record must be complete (its batch done). It holds a
// reference on the segment while reading, never a journal-wide lock.
func (j *Journal) ReadAt(pos uint64, n int) ([]byte, error) {
	id, off := uint32(pos>>32), int64(pos&0xffffffff)
	buf := make([]byte, n)
	j.mu.Lock()
	if b := j.lookupLocked(pos, n); b != nil {
		copy(buf, b)
		j.mu.Unlock()
		j.stats.cacheHits.Add(1)
		return buf, nil
	}
	j.mu.Unlock()
	if err := j.readFile(id, off, buf); err != nil {
		return nil, fmt.Errorf("read %x: %w", pos, err)
	}
	return buf, nil
}

// readFile reads len(buf) bytes at off in segment id from its file (they
// are not in memory: the caller looked).
func (j *Journal) readFile(id uint32, off int64, buf []byte) error {
	j.mu.Lock()
	if t := j.tail; t != nil && (id > t.id || id == t.id && off+int64(len(buf)) > j.tailOff) {
		// Past the end and not pending: a record whose write was undone
		// (nospace.go), read by a caller that saw it before the undo.
		j.mu.Unlock()
		return fmt.Errorf("%w: the record's write was undone", chute.ErrDiskFull)
	}
	s := j.segs[id]
	j.mu.Unlock()
	if s == nil {
		return fmt.Errorf("segment %d released", id)
	}
	f, ok := s.acquire()
	if !ok {
		return fmt.Errorf("segment %d not open", id)
	}
	_, err := f.ReadAt(buf, off)
	if rerr := s.releaseRef(j.removeSegment); err == nil {
		err = rerr
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("read segment %d at %d: %w", id, off, err)
	}
	j.stats.fileReads.Add(1)
	return nil
}

// Reads from files that ReadMany puts together: records at most
// maxReadGap bytes apart in one segment (a backlog drains in the order it
// was published, its bodies side by side in their records) are read with
// one system call, up to maxReadRun bytes. Measured (issue 11): a server
// draining 1M × 1 KiB spent a fifth of its CPU in one pread per message.
const (
	maxReadGap = 16 << 10
	maxReadRun = 1 << 20
)

// ReadMany reads several records' bytes, as ReadAt does for each: those
// in memory under one hold of the journal's lock (a receive of many
// messages would otherwise contend for it once per message with the
// appends), the rest from their segment files. The results share one
// allocation.
func (j *Journal) ReadMany(pos []uint64, sizes []uint32) ([][]byte, error) {
	total := 0
	for _, n := range sizes {
		total += int(n)
	}
	all := make([]byte, total)
	out := make([][]byte, len(pos))
	var miss []int
	j.mu.Lock()
	for i, p := range pos {
		n := int(sizes[i])
		out[i], all = all[:n:n], all[n:]
		if b := j.lookupLocked(p, n); b != nil {
			copy(out[i], b)
		} else {
			miss = append(miss, i)
		}
	}
	j.mu.Unlock()
	j.stats.cacheHits.Add(int64(len(pos) - len(miss)))
	var run []byte // reused for runs of nearby records
	for k := 0; k < len(miss); {
		i := miss[k]
		id, start := uint32(pos[i]>>32), int64(pos[i]&0xffffffff)
		end := start + int64(sizes[i])
		m := k + 1
		for ; m < len(miss); m++ {
			p, n := pos[miss[m]], int64(sizes[miss[m]])
			o := int64(p & 0xffffffff)
			if uint32(p>>32) != id || o < end || o-end > maxReadGap || o+n-start > maxReadRun {
				break
			}
			end = o + n
		}
		if m == k+1 {
			if err := j.readFile(id, start, out[i]); err != nil {
				return nil, fmt.Errorf("read %x: %w", pos[i], err)
			}
			k++
			continue
		}
		if int64(cap(run)) < end-start {
			run = make([]byte, end-start)
		}
		run = run[:end-start]
		if err := j.readFile(id, start, run); err != nil {
			return nil, fmt.Errorf("read %x: %w", pos[i], err)
		}
		for _, x := range miss[k:m] {
			copy(out[x], run[int64(pos[x]&0xffffffff)-start:])
		}
		k = m
	}
	return out, nil
}

// SetCacheLimit sets how many bytes the read cache may use, up to
// Options.CacheBytes. Lowering it empties the cache (so call it only when
// the limit changes by a good amount).
func (j *Journal) SetCacheLimit(n int64) {
	j.mu.Lock()
	j.cache.setLimit(n)
	j.mu.Unlock()
}

// Location names the file and offset of a position, for error messages.
func (j *Journal) Location(pos uint64) (string, int64) {
	return segName(j.opts.Dir, uint32(pos>>32)), int64(pos & 0xffffffff)
}

// Release deletes segment id once no reader uses it. The caller promises
// nothing in it is needed any more. The tail segment is never released.
func (j *Journal) Release(id uint32) error {
	j.mu.Lock()
	s := j.segs[id]
	if s == nil || s == j.tail {
		j.mu.Unlock()
		return nil
	}
	delete(j.segs, id)
	j.mu.Unlock()
	j.stats.released.Add(1)
	j.log.Debug("releasing segment", "segment", id)
	return s.release(j.removeSegment)
}

// Segments returns the ids of the segments not yet released, ascending.
func (j *Journal) Segments() []uint32 {
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := make([]uint32, 0, len(j.segs))
	for id := range j.segs {
		ids = append(ids, id)
	}
	sortIDs(ids)
	return ids
}

// Tail is the position where the next record's frame will start.
func (j *Journal) Tail() (seg uint32, off int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.tail == nil {
		return 0, 0
	}
	return j.tail.id, j.tailOff
}

// Stats is a snapshot of the journal's counters.
type Stats struct {
	Records, Bytes int64 // appended
	Writes, Syncs  int64
	SyncTime       time.Duration // total time in fdatasync
	CacheHits      int64         // reads served from memory
	FileReads      int64         // reads from segment files
	CacheBytes     int64         // bytes held by the read cache
	Segments       int
	SegmentSize    int64
	Policy         SyncPolicy
	Rewinds        int64 // batches undone because the disk was full
	Released       int64 // segments released (deleted once unread) since Open
	Reclaiming     int   // released files still being given back in slices (ReclaimSlice)
	Hurried        int64 // batches written by a caller during a sync (Hurry)
	Delayed        int64 // times the writer waited out SyncDelay
	Filled         int64 // bytes of zeros written ahead of the tail (FillAhead)
}

func (j *Journal) Stats() Stats {
	j.mu.Lock()
	n, cached := len(j.segs), j.cache.bytes()
	j.mu.Unlock()
	var reclaiming int
	if j.reclaim != nil {
		reclaiming = j.reclaim.reclaiming()
	}
	return Stats{
		Reclaiming: reclaiming,
		CacheHits:  j.stats.cacheHits.Load(), FileReads: j.stats.fileReads.Load(), CacheBytes: cached,
		Records: j.stats.records.Load(), Bytes: j.stats.bytes.Load(),
		Writes: j.stats.writes.Load(), Syncs: j.stats.syncs.Load(),
		SyncTime: time.Duration(j.stats.syncNanos.Load()), Segments: n,
		SegmentSize: j.segSize, Policy: j.opts.Sync, Rewinds: j.stats.rewinds.Load(),
		Released: j.stats.released.Load(), Hurried: j.stats.hurried.Load(),
		Delayed: j.stats.delayed.Load(), Filled: j.stats.filled.Load(),
	}
}
