package broker

import (
	"context"

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
	return b.eng.LookupRef(queue, ref)
}

// CancelMessages cancels ready and delayed messages of a queue: one cancel
// record for all of them, journaled like an admin record (one fsync).
func (b *Broker) CancelMessages(ctx context.Context, queue string, refs ...chute.MessageRef) ([]chute.CancelResult, error) {
	if err := engine.CheckRefs(refs, chute.MaxCancel, "cancel"); err != nil {
		return nil, err
	}
	var out []chute.CancelResult
	err := b.mutate(ctx, func(now int64) (r *engine.Record, err error) {
		r, out, err = b.eng.CancelRefs(now, queue, refs)
		return r, err
	})
	if err != nil {
		return nil, err
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
	var out []chute.RedriveResult
	err := b.mutate(ctx, func(now int64) (r *engine.Record, err error) {
		r, out, err = b.eng.RedriveRefs(now, deadLetterQueue, refs)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
