package broker

import (
	"fmt"
	"time"

	"github.com/chutemq/chute/internal/engine"
)

// Rebuilding the engine after a write found the disk full.
//
// The engine applies a record before the journal has it on disk (publish
// applies at append, every other command before it): that is what lets
// one write and one fsync confirm a whole batch. When a batch's write
// fails for lack of space the journal undoes it (internal/journal/
// nospace.go) and the engine is ahead of the journal by every record of
// that batch and of those appended after it. Those records were never
// confirmed, and the journal refuses appends until the engine is back in
// line, so nothing that depends on them reaches the disk; but the engine
// must forget them before anything else is done with it. There is no undo
// in the engine (it is a state machine driven forward by records), so the
// broker does what recovery does: restore the newest checkpoint and apply
// every record after it, read back from the segment files — the state
// the journal holds, which is the confirmed state plus confirmed-to-be
// records of batches written before the failure. Unlike a restart,
// leases whose deliver records survived are still held: their consumers'
// receipts stay good.
//
// It costs a replay of what follows the checkpoint (bounded by
// Options.CheckpointBytes, 32 MiB by default: about 100 ms), under b.mu,
// and happens only when the floors did not keep the disk from filling.

// rebuildAfterNoSpace rebuilds the engine after the journal undid a batch
// (the disk loop calls it when the journal says so).
func (b *Broker) rebuildAfterNoSpace() {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.rebuildLocked(); err != nil {
		b.log.Error("rebuild after a write found the disk full failed: the broker fails closed until reopened", "err", err)
	}
}

// rebuildLocked replaces the engine with one rebuilt from the journal,
// if the journal is suspended after undoing a batch, and resumes it. The
// caller holds ckptMu (no checkpoint may release a segment the replay
// reads, or write one from the engine half built) and b.mu. If the
// rebuild fails the journal is failed for good: the broker fails closed,
// and a reopen replays the truth.
func (b *Broker) rebuildLocked() error {
	if b.jrn.Suspended() == nil || b.jrn.Err() != nil {
		return b.jrn.Err()
	}
	start := time.Now()
	from, snap, err := b.jrn.LoadCheckpoint()
	eng := engine.New()
	if err == nil && snap != nil {
		eng, err = engine.Restore(snap)
	}
	n := 0
	if err == nil {
		err = b.jrn.Reread(from, func(payload []byte, pos uint64) error {
			r, err := engine.Decode(payload)
			if err != nil {
				return err
			}
			n++
			return eng.Apply(r, pos)
		})
	}
	if err != nil {
		err = fmt.Errorf("rebuild the state after a write found the disk full: %w", err)
		b.jrn.Fail(err)
		return b.jrn.Err()
	}
	b.eng = eng
	b.resyncSchedulesLocked()      // schedule.go
	for q, ch := range b.waiters { // wake every receive: what it waited on may be gone
		close(ch)
		delete(b.waiters, q)
	}
	b.jrn.Resume()
	b.afterChangeLocked()
	b.disk.rebuilds.Add(1)
	b.log.Warn("state rebuilt from the journal after a write found the disk full",
		"checkpoint bytes", len(snap), "records", n, "took", time.Since(start).Round(time.Microsecond))
	return nil
}
