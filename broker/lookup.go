package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// GetMessage looks up one message of a queue without taking a delivery
// (engine.Lookup): under the lock, no record. A message named by ID is
// found through the queue's de-dup memory while it remembers the ID.
func (b *Broker) GetMessage(ctx context.Context, queue string, ref chute.MessageRef) (chute.MessageInfo, error) {
	if err := ref.Validate(); err != nil {
		return chute.MessageInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(); err != nil {
		return chute.MessageInfo{}, err
	}
	seq := ref.Seq
	if ref.ID != "" {
		var err error
		if seq, err = b.eng.SeqOfID(queue, ref.ID); err != nil {
			return chute.MessageInfo{}, err
		}
	}
	info, err := b.eng.Lookup(queue, seq)
	info.ID = ref.ID
	return info, err
}

// CancelMessages cancels ready and delayed messages of a queue: one cancel
// record for all of them, journaled like an admin record (one fsync).
func (b *Broker) CancelMessages(ctx context.Context, queue string, refs ...chute.MessageRef) ([]chute.CancelResult, error) {
	if len(refs) > chute.MaxCancel {
		return nil, fmt.Errorf("%w: %d messages to cancel (at most %d)", chute.ErrBatchTooLarge, len(refs), chute.MaxCancel)
	}
	for _, r := range refs {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	out := make([]chute.CancelResult, len(refs))
	err := b.mutate(ctx, func(now int64) (*engine.Record, error) {
		var seqs []uint64
		var at []int // out index of each seq
		for i, r := range refs {
			out[i] = chute.CancelResult{Ref: r, Seq: r.Seq}
			if r.ID != "" {
				seq, err := b.eng.SeqOfID(queue, r.ID)
				if err != nil && !errors.Is(err, chute.ErrMessageNotFound) {
					return nil, err
				}
				out[i].Seq = seq
			}
			if out[i].Seq != 0 {
				seqs = append(seqs, out[i].Seq)
				at = append(at, i)
			}
		}
		rec, states, err := b.eng.Cancel(now, queue, seqs)
		if err != nil {
			return nil, err
		}
		for j, st := range states {
			out[at[j]].State = st
		}
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		r := &out[i]
		switch r.State {
		case chute.MessageReady, chute.MessageDelayed:
			r.Cancelled, r.State = true, chute.MessageCancelled
		default:
			r.Err = chute.CancelError(r.State)
		}
	}
	return out, nil
}
