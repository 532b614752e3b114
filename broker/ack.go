package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/text"
)

// Ack settles deliveries: the messages are done and leave the queue. It
// returns once the acks are durable. A receipt whose lease is over fails
// with ErrStaleReceipt (inside a *ReceiptErrors) and does not touch a later
// delivery of the same message.
func (b *Broker) Ack(ctx context.Context, queue string, receipts ...string) error {
	items := make([]engine.Item, len(receipts))
	return b.settle(ctx, engine.RecAck, queue, receipts, items)
}

// Nack returns deliveries: after n.Delay (0: the queue's back-off;
// negative: at once), or to the dead-letter queue if they used their
// deliveries. n.Error is kept as the message's last error. A nack with
// Unstarted hands back a delivery the consumer never began: ready again at
// once, and the delivery does not count towards MaxDeliveries.
func (b *Broker) Nack(ctx context.Context, queue string, nacks ...chute.Nack) error {
	receipts := make([]string, len(nacks))
	items := make([]engine.Item, len(nacks))
	var unstarted []bool
	for i, n := range nacks {
		receipts[i] = n.Receipt
		items[i].Value = int64(n.Delay) // 0: back-off; negative: at once
		items[i].Err = engine.NackError(n.Error)
		if n.Unstarted {
			if unstarted == nil {
				unstarted = make([]bool, len(nacks))
			}
			unstarted[i] = true
		}
	}
	return b.settle(ctx, engine.RecNack, queue, receipts, items, unstarted...)
}

// Extend moves the deadline of leases to lease from now (0: the queue's
// visibility timeout; at most 12 hours).
func (b *Broker) Extend(ctx context.Context, queue string, lease time.Duration, receipts ...string) error {
	items := make([]engine.Item, len(receipts))
	for i := range items {
		items[i].Value = int64(lease)
	}
	return b.settle(ctx, engine.RecExtend, queue, receipts, items)
}

// settle parses receipts and applies typ to their leases. For a nack, the
// items marked unstarted are returned instead (engine.Return), in a record
// of their own.
func (b *Broker) settle(ctx context.Context, typ engine.RecordType, queue string, receipts []string, items []engine.Item, unstarted ...bool) error {
	if len(receipts) > b.opts.MaxBatch {
		return fmt.Errorf("%w: %d receipts, at most %d", chute.ErrBatchTooLarge, len(receipts), b.opts.MaxBatch)
	}
	var failed []chute.ReceiptError
	qids := make([]uint32, len(receipts))
	for i, r := range receipts {
		qid, seq, deliv, err := parseReceipt(r)
		if err != nil {
			failed = append(failed, chute.ReceiptError{Index: i, Receipt: r, Err: err})
			continue
		}
		qids[i], items[i].Seq, items[i].Deliv = qid, seq, deliv
	}
	var errs []error // from the engine, for the receipts in index
	var index []int
	err := b.mutateMany(ctx, func(now int64) ([]*engine.Record, error) {
		id, ok := b.eng.QueueID(queue)
		if !ok {
			return nil, fmt.Errorf("%w: %s", chute.ErrQueueNotFound, text.Quote(queue))
		}
		// Receipts that failed to parse or name another queue are left out.
		valid := make([]engine.Item, 0, len(items))
		var returns []engine.Item // nacks of unstarted deliveries
		var returnIndex []int
		for i := range items {
			switch {
			case qids[i] == 0:
			case qids[i] != id && b.eng.QueueExists(qids[i]):
				failed = append(failed, chute.ReceiptError{Index: i, Receipt: receipts[i], Err: fmt.Errorf("%w: a receipt of another queue, not %q", chute.ErrInvalidReceipt, queue)})
			case qids[i] != id: // its queue was deleted (perhaps recreated under this name)
				failed = append(failed, chute.ReceiptError{Index: i, Receipt: receipts[i], Err: fmt.Errorf("%w: its queue was deleted", chute.ErrStaleReceipt)})
			case len(unstarted) > i && unstarted[i]:
				returns = append(returns, items[i])
				returnIndex = append(returnIndex, i)
			default:
				valid = append(valid, items[i])
				index = append(index, i)
			}
		}
		var rec *engine.Record
		var err error
		switch typ {
		case engine.RecAck:
			rec, errs, err = b.eng.Ack(now, queue, valid)
		case engine.RecNack:
			rec, errs, err = b.eng.Nack(now, queue, valid)
		case engine.RecExtend:
			rec, errs, err = b.eng.Extend(now, queue, valid)
		}
		if err != nil || len(returns) == 0 {
			return []*engine.Record{rec}, err
		}
		ret, retErrs, err := b.eng.Return(now, queue, returns)
		errs, index = append(errs, retErrs...), append(index, returnIndex...)
		return []*engine.Record{rec, ret}, err
	})
	if err != nil {
		return err
	}
	for k, e := range errs {
		if e != nil {
			failed = append(failed, chute.ReceiptError{Index: index[k], Receipt: receipts[index[k]], Err: e})
		}
	}
	if len(failed) > 0 {
		slices.SortStableFunc(failed, func(a, b chute.ReceiptError) int { return a.Index - b.Index })
		return &chute.ReceiptErrors{Failed: failed}
	}
	return nil
}
