package chute

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chutemq/chute/internal/engine"
)

// ReceiptErrors lists the receipts of an ack, nack or extend that failed;
// the call applied the others. errors.Is(err, ErrStaleReceipt) reports
// whether any failed for that reason.
type ReceiptErrors struct {
	Failed []ReceiptError
}

// ReceiptError is one failed receipt.
type ReceiptError struct {
	Index   int
	Receipt string
	Err     error
}

func (e *ReceiptErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d receipt(s) failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; #%d %.40s: %v", f.Index, f.Receipt, f.Err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As every cause.
func (e *ReceiptErrors) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}

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
// deliveries. n.Error is kept as the message's last error.
func (b *Broker) Nack(ctx context.Context, queue string, nacks ...Nack) error {
	receipts := make([]string, len(nacks))
	items := make([]engine.Item, len(nacks))
	for i, n := range nacks {
		receipts[i] = n.Receipt
		items[i].Value = int64(n.Delay) // 0: back-off; negative: at once
		if len(n.Error) > maxHeaderValue {
			n.Error = n.Error[:maxHeaderValue]
		}
		items[i].Err = n.Error
	}
	return b.settle(ctx, engine.RecNack, queue, receipts, items)
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

func (b *Broker) settle(ctx context.Context, typ engine.RecordType, queue string, receipts []string, items []engine.Item) error {
	if len(receipts) > b.opts.MaxBatch {
		return fmt.Errorf("%w: %d receipts, at most %d", ErrBatchTooLarge, len(receipts), b.opts.MaxBatch)
	}
	var failed []ReceiptError
	qids := make([]uint32, len(receipts))
	for i, r := range receipts {
		qid, seq, deliv, err := parseReceipt(r)
		if err != nil {
			failed = append(failed, ReceiptError{i, r, err})
			continue
		}
		qids[i], items[i].Seq, items[i].Deliv = qid, seq, deliv
	}
	var errs []error // from the engine, for the receipts in index
	var index []int
	err := b.mutate(ctx, func(now int64) (*engine.Record, error) {
		id, ok := b.eng.QueueID(queue)
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrQueueNotFound, queue)
		}
		// Receipts that failed to parse or name another queue are left out.
		valid := make([]engine.Item, 0, len(items))
		for i := range items {
			switch {
			case qids[i] == 0:
			case qids[i] != id:
				failed = append(failed, ReceiptError{i, receipts[i], fmt.Errorf("%w: not a receipt of %q now", ErrStaleReceipt, queue)})
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
		return rec, err
	})
	if err != nil {
		return err
	}
	for k, e := range errs {
		if e != nil {
			failed = append(failed, ReceiptError{index[k], receipts[index[k]], e})
		}
	}
	if len(failed) > 0 {
		return &ReceiptErrors{Failed: failed}
	}
	return nil
}
