package broker

import (
	"context"
	"errors"

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
	if err := engine.CheckRefs(refs, chute.MaxCancel, "cancel"); err != nil {
		return nil, err
	}
	out := make([]chute.CancelResult, len(refs))
	err := b.mutate(ctx, func(now int64) (*engine.Record, error) {
		seqs, at, err := b.seqsOfLocked(queue, refs, b.eng.SeqOfID, func(i int, seq uint64) {
			out[i] = chute.CancelResult{Ref: refs[i], Seq: seq}
		})
		if err != nil {
			return nil, err
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

// RedriveMessages moves chosen dead letters back to their source queues:
// one redrive record for those that move, journaled like an admin record
// (one fsync). Receivers of the source queues are woken as for a publish.
// A dead letter named by ID is found through its source queue's memory of
// the ID (engine.DeadLetterSeqOfID).
func (b *Broker) RedriveMessages(ctx context.Context, deadLetterQueue string, refs ...chute.MessageRef) ([]chute.RedriveResult, error) {
	if err := engine.CheckRefs(refs, chute.MaxRedrive, "redrive"); err != nil {
		return nil, err
	}
	out := make([]chute.RedriveResult, len(refs))
	err := b.mutate(ctx, func(now int64) (*engine.Record, error) {
		seqs, at, err := b.seqsOfLocked(deadLetterQueue, refs, b.eng.DeadLetterSeqOfID, func(i int, seq uint64) {
			out[i] = chute.RedriveResult{Ref: refs[i], Seq: seq, Err: chute.ErrMessageNotFound}
		})
		if err != nil {
			return nil, err
		}
		rec, outcomes, err := b.eng.RedriveSeqs(now, deadLetterQueue, seqs)
		if err != nil {
			return nil, err
		}
		for j, o := range outcomes {
			r := &out[at[j]]
			r.Moved, r.Queue, r.NewSeq, r.State, r.Err = o.Moved, o.Source, o.NewSeq, o.State, o.Err
			if o.Moved {
				r.State = chute.MessageRedriven
			}
		}
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// seqsOfLocked resolves refs to sequences of queue, IDs through byID:
// ref i with sequence seq (0 when its ID is not remembered) is reported
// to set, and those with a sequence are returned with their index in
// refs.
func (b *Broker) seqsOfLocked(queue string, refs []chute.MessageRef, byID func(queue, id string) (uint64, error),
	set func(i int, seq uint64)) (seqs []uint64, at []int, err error) {
	for i, r := range refs {
		seq := r.Seq
		if r.ID != "" {
			if seq, err = byID(queue, r.ID); err != nil && !errors.Is(err, chute.ErrMessageNotFound) {
				return nil, nil, err
			}
		}
		set(i, seq)
		if seq != 0 {
			seqs = append(seqs, seq)
			at = append(at, i)
		}
	}
	return seqs, at, nil
}
