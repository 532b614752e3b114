package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/chutemq/chute"

	"github.com/chutemq/chute/internal/engine"
)

// Receive leases up to opts.Max ready messages of queue, best first
// (priority, then publish order), waiting for one to become ready: a
// publish, a delay coming due, a lease expiring or a nack all wake it,
// without polling. It returns no messages and no error when opts.Wait
// passes, and ctx.Err() when ctx ends.
func (b *Broker) Receive(ctx context.Context, queue string, opts chute.ReceiveOptions) ([]chute.Delivery, error) {
	ds, recorded, err := b.ReceiveAsync(ctx, queue, opts)
	if err != nil || len(ds) == 0 {
		return ds, err
	}
	if err := recorded(ctx); err != nil {
		return nil, err
	}
	return ds, nil
}

// ReceiveAsync is Receive without the wait for the deliveries to be
// recorded: it returns the deliveries and a function that waits until the
// record of the delivery is written to the journal (not synced: a crash of
// the process then cannot lose the delivery count; one of the machine may
// lose an increment). A caller must call it before handing the deliveries
// on; the server uses the gap to receive the next batch meanwhile.
func (b *Broker) ReceiveAsync(ctx context.Context, queue string, opts chute.ReceiveOptions) ([]chute.Delivery, func(context.Context) error, error) {
	// A full disk refuses this first (diskspace.go).
	if err := b.checkSpace(spaceDeliver); err != nil {
		return nil, nil, err
	}
	max := opts.Max
	if max <= 0 {
		max = 1
	}
	if max > b.opts.MaxBatch {
		return nil, nil, fmt.Errorf("%w: max %d, at most %d", chute.ErrBatchTooLarge, max, b.opts.MaxBatch)
	}
	var waitTimer chute.Timer
	var timeout <-chan time.Time
	defer func() {
		if waitTimer != nil {
			waitTimer.Stop()
		}
	}()
	holder := holderOf(ctx) // for lookups (broker.WithHolder)
	for {
		b.mu.Lock()
		if err := b.checkLocked(); err != nil {
			b.mu.Unlock()
			return nil, nil, err
		}
		// A half-open circuit breaker lets only its probes through (breaker.go).
		rec, ds, err := b.eng.ReceiveAs(b.nowLocked(), queue, b.probeLimitLocked(queue, max), int64(opts.Lease), holder)
		if err != nil {
			b.mu.Unlock()
			return nil, nil, err
		}
		b.probesTakenLocked(queue, len(ds))
		if len(ds) > 0 {
			batch, err := b.commitLocked(rec)
			b.mu.Unlock()
			if err != nil {
				return nil, nil, err
			}
			out, err := b.deliveries(queue, ds, true)
			if err != nil {
				return nil, nil, err
			}
			recorded := func(ctx context.Context) error {
				// Not behind another batch's fsync (journal/hurry.go).
				return b.jrn.WaitWritten(ctx, batch)
			}
			return out, recorded, nil
		}
		ch := b.waitChanLocked(queue)
		b.mu.Unlock()
		if opts.Wait < 0 {
			return nil, nil, nil
		}
		if opts.Wait > 0 && waitTimer == nil {
			waitTimer = b.opts.Clock.NewTimer(opts.Wait)
			timeout = waitTimer.C()
		}
		select {
		case <-ch:
		case <-timeout:
			return nil, nil, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-b.done:
			return nil, nil, chute.ErrClosed
		}
	}
}

// Peek returns up to max ready messages in delivery order, without leasing
// them.
func (b *Broker) Peek(ctx context.Context, queue string, max int) ([]chute.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	max = min(max, b.opts.MaxBatch)
	b.mu.Lock()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	ds, err := b.eng.Peek(queue, max)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return b.deliveries(queue, ds, false)
}

// deliveries reads the blobs of delivered messages (no broker lock held)
// and builds the Deliveries.
func (b *Broker) deliveries(queue string, ds []engine.Delivered, leased bool) ([]chute.Delivery, error) {
	out := make([]chute.Delivery, len(ds))
	blobs, err := b.readBlobs(ds)
	if err != nil {
		return nil, fmt.Errorf("read messages of %q: %w", queue, err)
	}
	for i, d := range ds {
		id, key, headers, body, err := b.decodeBlob(blobs[i]) // decompressed if stored so (compress.go)
		if isClosed(err) {
			return nil, err
		}
		if err != nil {
			// Damage on disk: say where, never deliver it.
			file, off := b.jrn.Location(d.Ref)
			b.log.Error("damaged message in the journal", "queue", queue, "seq", d.Seq, "file", file, "offset", off, "err", err)
			return nil, fmt.Errorf("%w: message %d of %q: %w", chute.ErrJournalCorrupt, d.Seq, queue,
				&chute.CorruptionError{File: file, Offset: off, Reason: err.Error()})
		}
		dl := chute.Delivery{
			Queue: queue, Seq: d.Seq, Body: body, Headers: headers,
			Priority: int(d.Prio), ID: id, Key: key,
			Published: time.Unix(0, d.Pub), Deliveries: int(d.Counted), LastError: d.LastErr,
		}
		if leased {
			dl.Receipt = formatReceipt(d.QueueID, d.Seq, d.Deliv)
			dl.LeaseDeadline = time.Unix(0, d.Deadline)
		}
		if d.Dead != nil {
			dl.DeadLetter, dl.Headers = d.Dead.Describe(dl.Headers)
		}
		out[i] = dl
	}
	return out, nil
}

// readBlob returns a message's stored blob: from the journal's memory if it
// is recent (or not even written yet), else from its segment file.
func (b *Broker) readBlob(ref uint64, size uint32) ([]byte, error) {
	return b.jrn.ReadAt(ref, int(size))
}

// readBlobs returns the stored blobs of deliveries, as readBlob does for
// each, in one call to the journal.
func (b *Broker) readBlobs(ds []engine.Delivered) ([][]byte, error) {
	if len(ds) == 1 {
		blob, err := b.readBlob(ds[0].Ref, ds[0].Size)
		return [][]byte{blob}, err
	}
	refs := make([]uint64, len(ds))
	sizes := make([]uint32, len(ds))
	for i := range ds {
		refs[i], sizes[i] = ds[i].Ref, ds[i].Size
	}
	return b.jrn.ReadMany(refs, sizes)
}

// A receipt names one lease: the queue's id (so that a receipt never
// matches a later queue of the same name), the message's sequence, and the
// delivery count (so that it never matches a later delivery). The count in
// a receipt is every delivery, the lease's epoch — not Delivery.Deliveries,
// which leaves out the deliveries handed back uncounted.
func formatReceipt(qid uint32, seq uint64, deliv uint16) string {
	buf := make([]byte, 0, 32)
	buf = strconv.AppendUint(buf, uint64(qid), 36)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, seq, 36)
	buf = append(buf, '.')
	buf = strconv.AppendUint(buf, uint64(deliv), 36)
	return string(buf)
}

func parseReceipt(s string) (qid uint32, seq uint64, deliv uint16, err error) {
	var parts [3]uint64
	p := 0
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		if p == 3 {
			return 0, 0, 0, fmt.Errorf("%w: %.40q", chute.ErrInvalidReceipt, s)
		}
		v, perr := strconv.ParseUint(s[start:i], 36, 64)
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("%w: %.40q", chute.ErrInvalidReceipt, s)
		}
		parts[p] = v
		p++
		start = i + 1
	}
	if p != 3 || parts[0] > 1<<32-1 || parts[2] > 1<<16-1 {
		return 0, 0, 0, fmt.Errorf("%w: %.40q", chute.ErrInvalidReceipt, s)
	}
	return uint32(parts[0]), parts[1], uint16(parts[2]), nil
}
