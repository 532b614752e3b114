package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/vfs"
)

// Checkpoints, reclamation and compaction.
//
// The journal only grows; this is what keeps it bounded. Invariants:
//
//  1. A checkpoint is a snapshot of the engine at a journal position P,
//     written only after every record before P is synced. Recovery
//     restores the newest checkpoint and replays from P, so no record
//     before P is ever read again: an ack before P has done its work (the
//     snapshot no longer holds the message it killed).
//  2. A segment entirely before P whose blobs no queued message refers to
//     (engine.Live) holds nothing anyone needs: it is released (deleted
//     once no reader holds it). The set is computed at the snapshot, under
//     the lock, and released only after the checkpoint is durable.
//  3. A sparse old segment (a few live messages among many dead ones) is
//     compacted: its live blobs are copied forward in a blobs record
//     (which replay ignores) and synced; the next checkpoint points every
//     entry at the copies (engine.Relocate) in the same critical section
//     as its snapshot, so the snapshot carries the move and the old segment
//     is released by the checkpoint after that. Until then a crash simply
//     finds the entries still pointing at the old segment.
//
// Steps of a checkpoint, in order: (under b.mu) relocate pending copies,
// snapshot, note P and the releasable segments, pick compaction candidates;
// (no lock) sync the journal through P, write the checkpoint file, release
// segments, read the candidates' blobs; (under b.mu) append their copies;
// (no lock) wait for them to be durable.

// checkpointState is guarded by Broker.ckptMu, which serialises checkpoints;
// it is never taken with b.mu held.
type checkpointState struct {
	reloc map[uint64]uint64 // durable copies waiting for the next checkpoint
	took  time.Duration     // how long the last checkpoint took
	count int64
}

// compaction tuning: a segment is sparse when its live bytes are under a
// quarter of the segment size; one checkpoint copies at most 16 MiB.
const (
	sparseFraction   = 4
	compactPerRound  = 16 << 20
	checkpointPeriod = time.Minute
)

// Checkpoint writes a checkpoint now, releases the segments it frees and
// copies forward the live messages of sparse ones. The broker calls it on
// its own (see checkpointDue; also every minute when anything changed, and
// on Close); it is exported for tools and tests.
func (b *Broker) Checkpoint(ctx context.Context) error {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	st := &b.ckpt
	start := time.Now()

	b.mu.Lock()
	if err := b.jrn.Err(); err != nil { // Close's final checkpoint runs after closed is set
		b.mu.Unlock()
		return err
	}
	// After a write found the disk full the engine may hold undone
	// records: never snapshot that (diskspace.go).
	if err := b.rebuildLocked(); err != nil {
		b.mu.Unlock()
		return fmt.Errorf("checkpoint: %w", err)
	}
	rewinds := b.jrn.Rewinds()
	if len(st.reloc) > 0 {
		b.eng.Relocate(st.reloc)
		st.reloc = nil
	}
	seg, off := b.jrn.Tail()
	pos := uint64(seg)<<32 | uint64(off)
	snap := b.eng.Snapshot(1 << 20)
	appended := b.jrn.Appended()
	var release []uint32
	sparse := map[uint32]bool{}
	for _, id := range b.jrn.Segments() {
		if id >= seg {
			break
		}
		switch u := b.eng.Live(id); {
		case u.Messages == 0:
			release = append(release, id)
		case id+1 < seg && u.Bytes < b.segSize()/sparseFraction:
			sparse[id] = true
		}
	}
	var cands map[uint64]uint32
	if len(sparse) > 0 && !b.diskShort() { // compaction writes before it frees (diskspace.go)
		cands = b.eng.Candidates(sparse, compactPerRound)
	}
	b.mu.Unlock()

	if err := b.jrn.Sync(ctx); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if b.jrn.Rewinds() != rewinds {
		// A batch was undone between the snapshot and the sync: records
		// before pos may be gone, and the snapshot holds them.
		return fmt.Errorf("checkpoint: %w: a journal write found no space meanwhile", chute.ErrDiskFull)
	}
	if err := b.jrn.WriteCheckpoint(pos, snap); err != nil {
		if vfs.IsNoSpace(err) {
			err = fmt.Errorf("%w: %w", chute.ErrDiskFull, err)
		}
		return fmt.Errorf("checkpoint: %w", err)
	}
	var size int64
	for _, p := range snap {
		size += int64(len(p))
	}
	b.ckptAppendedAt.Store(appended)
	b.ckptLastSize.Store(size)
	if size >= 8<<20 {
		// A large snapshot is garbage now; give its memory back at once
		// rather than let the heap grow to twice the index before the next
		// collection (the heap is mostly pointer-free: this is quick).
		debug.FreeOSMemory()
	}
	for _, id := range release {
		if err := b.jrn.Release(id); err != nil {
			b.log.Warn("release segment", "segment", id, "err", err)
		}
	}
	if len(release) > 0 {
		b.disk.invalidate() // space came back: measure it before the next refusal
	}
	if len(cands) > 0 {
		if err := b.copyForward(ctx, cands); err != nil {
			b.log.Warn("compaction", "err", err)
		}
	}
	st.took = time.Since(start)
	st.count++
	b.ckptTook.Store(int64(st.took))
	b.ckptEndedAt.Store(time.Now().UnixNano())
	b.log.Debug("checkpoint", "pos", fmt.Sprintf("%x", pos), "bytes", size, "released", len(release),
		"compacting", len(cands), "took", st.took)
	return nil
}

// copyForward stores copies of the blobs at cands in one blobs record and
// remembers where they went, for the next checkpoint to relocate.
func (b *Broker) copyForward(ctx context.Context, cands map[uint64]uint32) error {
	rec := &engine.Record{Type: engine.RecBlobs}
	olds := make([]uint64, 0, len(cands))
	for ref, size := range cands {
		blob, err := b.jrn.ReadAt(ref, int(size))
		if err != nil {
			return err
		}
		rec.Msgs = append(rec.Msgs, engine.PubMsg{Blob: blob})
		olds = append(olds, ref)
	}
	b.mu.Lock()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
	rec.Time = b.nowLocked()
	b.encBuf = rec.Encode(b.encBuf[:0])
	pos, batch, err := b.jrn.Append(b.encBuf)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := b.jrn.Sync(ctx); err != nil {
		return err
	}
	if err := batch.Wait(ctx); err != nil {
		return err
	}
	moved := make(map[uint64]uint64, len(olds))
	for i, old := range olds {
		moved[old] = pos + uint64(rec.Msgs[i].BlobOff)
	}
	b.ckpt.reloc = moved
	return nil
}

func (b *Broker) segSize() int64 { return b.segmentSize }

// Checkpoint triggers: replay cost, not a clock (issue 8). Recovery
// restores the newest checkpoint and replays every record after it, so the
// bytes appended since that checkpoint are the replay a crash would cost.
// A checkpoint is due once they reach Options.CheckpointBytes (default
// defaultCheckpointBytes: 32 MiB, or four segments if that is less — the
// replay time of 32 MiB has not been measured yet; tune it when it is),
// and Open writes one before it returns when its own replay went past that, so that a broker killed again and again, faster
// than it would checkpoint on its own, replays a bounded amount each time
// instead of an ever longer journal.
//
// The bound costs write volume when the index is large (each checkpoint
// writes the whole index). So that checkpoints cannot take over the
// disk, one is not started sooner after the last one ended than the last
// one took: they use at most half the time. Under a write load so heavy
// that this rule holds them back, replay may exceed the bound by what is
// appended meanwhile.
const defaultCheckpointBytes = 32 << 20

// checkpointEvery is the replay bound in bytes; 0 means never (only on
// Close and Broker.Checkpoint).
func (b *Broker) checkpointEvery() int64 {
	switch every := b.opts.CheckpointBytes; {
	case every < 0:
		return 0
	case every == 0:
		// Small segments: checkpoint every four, so that they are
		// released as promptly as large ones.
		return min(defaultCheckpointBytes, 4*b.segSize())
	default:
		return every
	}
}

// checkpointDue reports whether the journal has grown enough since the
// last checkpoint to need one. It runs after every commit: the byte test
// comes first and is one atomic load.
func (b *Broker) checkpointDue() bool {
	every := b.checkpointEvery()
	if every == 0 || b.jrn.Appended()-b.ckptAppendedAt.Load() < every {
		return false
	}
	return time.Duration(time.Now().UnixNano()-b.ckptEndedAt.Load()) >= time.Duration(b.ckptTook.Load())
}

// reclaimCheck is how often the maintenance loop looks for segments that
// a checkpoint would give back (reclaimDue).
const reclaimCheck = 2 * time.Second

// snapshotEntryBytes is a generous estimate of a queued message's share
// of a checkpoint (its index entry).
const snapshotEntryBytes = 64

// reclaimDue reports whether a checkpoint now would release at least two
// segments that hold no live message, at a small cost next to what it
// frees: the index it writes (snapshotEntryBytes per queued message) is
// under an eighth of those segments' bytes, and the last checkpoint ended
// at least as long ago as it took. Without it, a drained backlog gives its
// disk back only at the next checkpoint by size or by the minute (issue 11:
// within seconds of the last ack). Something must have been appended since
// the last checkpoint: otherwise that one already released what it could.
func (b *Broker) reclaimDue() bool {
	if b.opts.CheckpointBytes < 0 || b.jrn.Appended() == b.ckptAppendedAt.Load() {
		return false
	}
	if time.Duration(time.Now().UnixNano()-b.ckptEndedAt.Load()) < time.Duration(b.ckptTook.Load()) {
		return false
	}
	segs := int64(b.jrn.Stats().Segments)
	b.mu.Lock()
	live, queued := int64(b.eng.LiveUnitCount()), b.eng.QueuedMessages()
	b.mu.Unlock()
	free := segs - 1 - live // the segment being written stays
	return free >= 2 && queued*snapshotEntryBytes < free*b.segSize()/8
}

// checkpointAfterRecovery writes a checkpoint at Open when the replay was
// longer than the bound, so that the next start does not replay it again.
func (b *Broker) checkpointAfterRecovery() error {
	every := b.checkpointEvery()
	if b.mem || every == 0 || b.recovery.Bytes < every {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Checkpoint(ctx); err != nil {
		if errors.Is(err, chute.ErrDiskFull) {
			// A full disk must not stop a restart: the next Open replays
			// this much again, that is all.
			b.log.Warn("checkpoint after recovery", "err", err)
			return nil
		}
		return fmt.Errorf("checkpoint after recovery: %w", err)
	}
	b.log.Info("checkpoint after recovery", "replayed_bytes", b.recovery.Bytes, "bound", every)
	return nil
}

// maintenanceLoop writes checkpoints when due: when kicked because the
// journal grew, and every checkpointPeriod when anything changed.
func (b *Broker) maintenanceLoop() {
	t := time.NewTicker(checkpointPeriod)
	defer t.Stop()
	r := time.NewTicker(reclaimCheck)
	defer r.Stop()
	var heapTick <-chan time.Time // the body cache and memory limit follow the heap (budgetCacheLocked)
	if b.opts.MemoryLimit != nil {
		h := time.NewTicker(heapSample)
		defer h.Stop()
		heapTick = h.C
	}
	for {
		select {
		case <-heapTick:
			b.sampleHeap()
			continue
		case <-r.C:
			if !b.reclaimDue() {
				continue
			}
		case <-b.maintKick:
			// A kick may have been queued while the last checkpoint ran:
			// look again, so that two are not written back to back.
			if !b.checkpointDue() {
				continue
			}
		case <-t.C:
			if b.opts.CheckpointBytes < 0 || b.jrn.Appended() == b.ckptAppendedAt.Load() {
				continue
			}
		case <-b.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := b.Checkpoint(ctx); err != nil {
			b.log.Error("checkpoint failed", "err", err)
		}
		cancel()
	}
}

// CheckpointStats describes the last checkpoint.
type CheckpointStats struct {
	Count    int64
	Bytes    int64
	Duration time.Duration
}

// CheckpointStats returns facts about the checkpoints written so far.
func (b *Broker) CheckpointStats() CheckpointStats {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	return CheckpointStats{Count: b.ckpt.count, Bytes: b.ckptLastSize.Load(), Duration: b.ckpt.took}
}
