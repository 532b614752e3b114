package journal

import "context"

// Hurry: a delivery must not wait out another batch's fsync.
//
// A receive hands a message out once the record of its delivery is
// written to the segment file (Batch.Written), not synced: a crash of the
// process then cannot lose the delivery. With SyncAlways the writer syncs
// each batch before it writes the next, so a delivery record appended
// while the writer syncs waited for that sync (a disk's fdatasync: 0.2 ms
// to several ms) before its own write — at low load, most of the time
// between a publish and its delivery (issue 11).
//
// Hurry lets the caller write its batch itself while the writer syncs: a
// write to the page cache, which fdatasync on the same file does not
// block. The hurried batch is then Written at once; it is synced by the
// writer's next cycle, with what was appended after it, and completed
// (Done) in order. Under load the writer's rhythm — one write, one sync,
// the next batch taken in the same lock hold — does not change: only a
// caller that needs Written hurries, and only while a sync runs.
//
// The rules that keep the file in order:
//   - one writer of chunks at a time: wmu, held by the writer from taking a
//     batch to its sync and by a hurrying caller for its write (taken with
//     TryLock under mu, so that no one waits for wmu holding mu);
//   - a hurried batch is written only when everything before it is
//     written: the writer's batch (it is syncing it) and every batch
//     hurried before (none failed);
//   - only a batch of one chunk in the segment being synced is hurried: a
//     new segment's file and header are the writer's (its creation is
//     synced with the directory);
//   - hurried chunks reach the read cache when the writer takes them, after
//     the chunks of the batch before (the cache keeps positions in order);
//     until then lookups find them in hurried;
//   - a hurried write that fails is written again by the writer, first,
//     with the writer's handling of errors (a full disk undoes it).

// hurriedBatch is a batch a caller wrote during the writer's sync.
type hurriedBatch struct {
	chunks  []chunk
	b       *Batch
	written bool // false: the write failed, the writer writes it again
}

// Hurry writes b now, in the calling goroutine, if b is still collecting
// appends and the writer is syncing an earlier batch; b is then Written
// when Hurry returns, and the writer syncs and completes it with its next
// cycle. Otherwise Hurry does nothing and the writer writes b as soon as
// it is free; if b might still be hurried — the writer is busy writing an
// earlier batch, or between cycles — Hurry returns a channel closed when
// the writer next begins a sync, the moment to try again (WaitWritten).
func (j *Journal) Hurry(b *Batch) (retry <-chan struct{}) {
	j.mu.Lock()
	n := len(j.hurried)
	if b == nil || b != j.cur || j.err != nil || j.full != nil ||
		len(j.pending) != 1 || j.pending[0].init || n > 0 && !j.hurried[n-1].written {
		j.mu.Unlock()
		return nil // written, or being written, or not to be hurried
	}
	if j.syncing == nil || j.pending[0].seg != j.syncing || !j.wmu.TryLock() {
		if j.syncStarts == nil {
			j.syncStarts = make(chan struct{})
		}
		ch := j.syncStarts
		j.mu.Unlock()
		j.stats.hurryLater.Add(1)
		return ch
	}
	c := j.pending[0]
	j.hurried = append(j.hurried, hurriedBatch{chunks: j.pending, b: b})
	j.pending, j.cur = nil, nil
	j.mu.Unlock()

	_, err := c.seg.f.WriteAt(c.data, c.off)
	if err == nil {
		j.stats.writes.Add(1)
		j.stats.hurried.Add(1)
	}
	j.mu.Lock()
	if err == nil {
		// The writer takes hurried batches only holding wmu: the entry is
		// still the n-th.
		j.hurried[n].written = true
		close(b.written)
	}
	j.mu.Unlock()
	j.wmu.Unlock()
	select { // the writer syncs it (or writes it again) next
	case j.kick <- struct{}{}:
	default:
	}
	return nil
}

// letHurryLocked lets callers hurry appends to seg from now until the
// writer sets syncing back to nil (it syncs seg, or waits out SyncDelay
// with everything before synced), and wakes those waiting to try
// (WaitWritten). The caller holds mu, and the writer has let wmu go or
// does not hold it.
func (j *Journal) letHurryLocked(seg *segment) {
	j.syncing = seg
	if j.syncStarts != nil {
		close(j.syncStarts)
		j.syncStarts = nil
	}
}

// WaitWritten waits until b is written (Batch.Written), done, or ctx ends,
// hurrying b (Hurry) now and whenever the writer begins a sync meanwhile:
// a caller that needs its records only in the file never waits out a
// sync of records it does not need.
func (j *Journal) WaitWritten(ctx context.Context, b *Batch) error {
	for {
		retry := j.Hurry(b)
		select {
		case <-b.Written():
			return nil
		case <-b.Done():
			return b.Err()
		case <-ctx.Done():
			return ctx.Err()
		case <-retry:
		}
	}
}
