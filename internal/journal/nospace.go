package journal

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/vfs"
)

// A full disk is not a broken disk.
//
// A write or fsync that fails for any other reason fails the journal for
// good (the sticky err, journal.go): after a failed fsync the kernel may
// have dropped the dirty pages and marked them clean, so a second fsync
// that succeeds proves nothing (the "fsyncgate" lesson of PostgreSQL,
// 2018), and a failed write may have left anything behind it. ENOSPC from
// a write is different: the volume refused to allocate, the kernel kept
// nothing it was not given, and nothing of the batch was confirmed yet
// (with every sync policy a batch completes only after its write). So the
// writer undoes the batch instead (rewind):
//
//  1. Under mu: the batch, and every append made since the writer took it
//     (pending, cur), fail with an error matching chute.ErrDiskFull and
//     ENOSPC; appends are refused with it from now on (full); the tail
//     goes back to where the batch began.
//  2. Segment files created by the batch are closed and removed, and the
//     directory synced, before anything else: a crash must never find a
//     later segment after a shortened one.
//  3. The segment the batch began in is truncated back to where the batch
//     began, and synced. That fsync is the first since the failed write,
//     not a retry of a failed one. (When the batch began a new segment,
//     that segment's file is removed in step 2 and its header is queued
//     again by Resume.)
//  4. OnNoSpace tells the owner, which has applied the undone records to
//     its own state already (the broker applies before it appends), so it
//     rebuilds that state from the journal (Reread, from its newest
//     checkpoint) and calls Resume. Until then every append fails, so
//     nothing that depends on an undone record can reach the disk.
//
// Any error in steps 2 and 3 fails the journal for good. An fsync that
// fails with ENOSPC (possible with delayed allocation and on network file
// systems) is an fsync failure like any other: sticky.

// noSpaceError marks a write or create that failed for lack of space.
type noSpaceError struct{ err error }

func (e *noSpaceError) Error() string { return e.err.Error() }
func (e *noSpaceError) Unwrap() error { return e.err }

// noSpace marks err when it means the disk is full.
func noSpace(err error) error {
	if vfs.IsNoSpace(err) {
		return &noSpaceError{err}
	}
	return err
}

// rewind undoes the batch whose chunks failed to be written for lack of
// space (steps 1 to 3 above) and returns the error to complete it with:
// the disk-full error, or the sticky error if the undoing failed.
func (j *Journal) rewind(w *writer, chunks []chunk, cause error) error {
	full := fmt.Errorf("%w: %w", chute.ErrDiskFull, cause)
	first := chunks[0]
	j.mu.Lock()
	late, lateBatch := j.pending, j.cur
	j.pending, j.cur, j.inflight, j.writing = nil, nil, nil, nil
	j.full = full
	j.fullSet.Store(true)
	var drop []*segment
	for id, s := range j.segs {
		if id > first.seg.id {
			drop = append(drop, s)
			delete(j.segs, id)
		}
	}
	j.tail, j.tailOff = first.seg, first.off
	if first.init {
		j.tailOff, j.reinit = segHeaderSize, true
	}
	j.recycleChunksLocked(late)
	j.mu.Unlock()
	j.stats.rewinds.Add(1)
	j.log.Warn("journal write failed for lack of space: batch undone, appends refused until the state is rebuilt",
		"segment", first.seg.id, "offset", first.off, "err", cause)

	err := j.undo(w, first, drop)
	if err != nil {
		j.fail(fmt.Errorf("undo a batch that failed for lack of space: %w", err))
		err = j.Err()
	} else {
		err = full
	}
	if lateBatch != nil {
		lateBatch.complete(err)
	}
	if err == full && j.opts.OnNoSpace != nil {
		j.opts.OnNoSpace()
	}
	return err
}

// undo removes the files of the segments a failed batch created and
// truncates the one it began in (steps 2 and 3).
func (j *Journal) undo(w *writer, first chunk, drop []*segment) error {
	fs := j.opts.FS
	if first.init {
		drop = append(drop, first.seg)
	}
	removed := false
	for _, s := range drop {
		r, err := s.discard(fs, s != first.seg)
		if err != nil {
			return err
		}
		removed = removed || r
	}
	if removed {
		if err := fs.SyncDir(j.opts.Dir); err != nil {
			return fmt.Errorf("sync journal dir: %w", err)
		}
	}
	if !first.init {
		f := first.seg.f
		if err := f.Truncate(first.off); err != nil {
			return fmt.Errorf("truncate segment %d to %d: %w", first.seg.id, first.off, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync segment %d: %w", first.seg.id, err)
		}
	}
	w.dirty = nil
	return nil
}

// Suspended returns the disk-full error that suspended appends: nil when
// appends are accepted, or refused for good (Err).
func (j *Journal) Suspended() error {
	if !j.fullSet.Load() { // the common case, without the lock
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return nil
	}
	return j.full
}

// Resume accepts appends again after a batch failed for lack of space.
// The owner calls it once its state matches the journal again (Reread).
// It writes nothing: if the tail segment was undone, its header is queued
// for the next write.
func (j *Journal) Resume() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.full == nil || j.err != nil {
		return
	}
	j.full = nil
	j.fullSet.Store(false)
	if j.reinit {
		j.reinit = false
		j.pending = append(j.pending, chunk{seg: j.tail, off: 0, data: segHeader(j.tail.id, time.Now().UnixNano()), init: true})
		j.tailOff = segHeaderSize
		j.cur = newBatch() // nobody waits for it; the next write or Sync takes it
	}
}

// Rewinds is the number of batches undone for lack of space since Open.
// A caller that snapshots its state at a position and then waits for the
// journal to sync through it checks that this did not change meanwhile:
// if it did, records before the position may have been undone.
func (j *Journal) Rewinds() int64 { return j.stats.rewinds.Load() }

// Fail fails the journal for good with err, as a failed write does (for
// an owner that could not rebuild its state after a rewind).
func (j *Journal) Fail(err error) { j.fail(err) }

// Reread calls fn with every record from position from (a checkpoint's)
// to the end of the journal, in order, read from the segment files. It is
// for the owner rebuilding its state while appends are suspended after a
// rewind, so the end does not move; it fails otherwise. Damage is
// reported as by Replay, except that there is no torn tail to cut: every
// byte read was written by this process.
func (j *Journal) Reread(from uint64, fn func(payload []byte, pos uint64) error) error {
	j.mu.Lock()
	if j.err != nil || j.full == nil {
		err := j.err
		j.mu.Unlock()
		if err == nil {
			err = errors.New("reread: appends are not suspended")
		}
		return err
	}
	fromSeg, fromOff := uint32(from>>32), int(from&0xffffffff)
	var segs []*segment
	for id, s := range j.segs {
		if id >= fromSeg {
			segs = append(segs, s)
		}
	}
	tail, tailOff, reinit := j.tail, j.tailOff, j.reinit
	j.mu.Unlock()
	slices.SortFunc(segs, func(a, b *segment) int { return int(a.id) - int(b.id) })
	var buf []byte
	for i, s := range segs {
		if i > 0 && s.id != segs[i-1].id+1 || i == 0 && fromSeg != 0 && s.id != fromSeg {
			return &CorruptionError{File: s.name, Reason: "reread: a segment is missing before this one"}
		}
		if s == tail && reinit {
			break // undone: nothing in it
		}
		data, err := j.readSegment(s, s == tail, tailOff, &buf)
		if err != nil {
			return err
		}
		start := segHeaderSize
		if s.id == fromSeg {
			start = fromOff
		}
		_, err = walkFrames(data, s.name, s.id, false, start, 0, func(off int, payload []byte) error {
			if off < start {
				return nil
			}
			return fn(payload, uint64(s.id)<<32|uint64(off+frameHeaderSize))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readSegment reads a segment file whole (the tail up to end).
func (j *Journal) readSegment(s *segment, isTail bool, end int64, buf *[]byte) ([]byte, error) {
	f, ok := s.acquire()
	if !ok {
		return nil, fmt.Errorf("reread: segment %d not open", s.id)
	}
	defer s.releaseRef(j.removeSegment)
	size := end
	if !isTail {
		var err error
		if size, err = f.Size(); err != nil {
			return nil, fmt.Errorf("reread: size of segment %d: %w", s.id, err)
		}
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	data := (*buf)[:size]
	if n, err := f.ReadAt(data, 0); err != nil && n < len(data) {
		return nil, fmt.Errorf("reread: segment %d: %w", s.id, err)
	}
	return data, nil
}
