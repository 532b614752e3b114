package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// Commit applies a transaction atomically (see chute.Tx): under b.mu the
// engine checks every receipt, publish and name against its state and
// builds ONE record; the record is appended to the journal's pending batch
// and applied; then the call waits for the batch's sync, like a publish
// (group commit: concurrent commits, publishes and acks share one write
// and one fsync). Deliveries it acks release their leases; receivers of
// the queues it publishes to wake as after a publish.
//
// If ctx ends first the outcome is unknown: retry with the same ID, which
// returns the original result if the first attempt was committed.
func (b *Broker) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	received := b.opts.Clock.Now()
	tb := txBuilds.Get().(*txBuild)
	defer tb.release()
	if err := tb.build(b, &tx); err != nil {
		return chute.TxResult{}, err
	}
	etx, receipts, msgs := &tb.etx, tb.parts, tb.msgs
	var err error
	if len(msgs) > 0 {
		if err := b.checkSpace(spacePublish); err != nil {
			return chute.TxResult{}, err
		}
	}

	b.mu.Lock()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return chute.TxResult{}, err
	}
	now := b.nowLocked()
	for i := range msgs {
		stampTimes(msgs[i].pm, msgs[i].m, now)
	}
	var stale []string
	for i := range etx.Settle { // receipts of a deleted queue are stale
		p := &etx.Settle[i]
		id, ok := b.eng.QueueID(p.Queue)
		if !ok {
			b.mu.Unlock()
			return chute.TxResult{}, fmt.Errorf("%w: %q", chute.ErrQueueNotFound, p.Queue)
		}
		for j, qid := range receipts[i].qids {
			switch {
			case qid == id:
			case b.eng.QueueExists(qid):
				b.mu.Unlock()
				return chute.TxResult{}, fmt.Errorf("%w: %.40q is a receipt of another queue, not %q", chute.ErrInvalidReceipt, receipts[i].text[j], p.Queue)
			default:
				stale = append(stale, receipts[i].text[j])
			}
		}
	}
	var rec *engine.Record
	var res [][]engine.PubResult
	if len(stale) == 0 {
		rec, res, err = b.eng.PrepareTx(now, etx)
		if err != nil {
			b.eng.ReleaseTx()
		}
	}
	if se, ok := err.(*engine.StaleError); ok {
		for _, it := range se.Items {
			stale = append(stale, receipts[it.Part].text[it.Item])
		}
	}
	if len(stale) > 0 {
		b.mu.Unlock()
		return chute.TxResult{}, &chute.StaleReceiptsError{Receipts: stale}
	}
	if err != nil {
		b.mu.Unlock()
		return chute.TxResult{}, err
	}
	// The same path as a publish: encode, append, apply at the record's
	// position (its blobs' location). A nil record (a remembered ID, or
	// nothing to store) waits for the newest pending batch, which holds or
	// follows the first commit.
	batch, err := b.appendPublishLocked(rec)
	b.eng.ReleaseTx() // the record is encoded: drop its bodies
	// The engine reuses res in the next PrepareTx: copy it under the lock.
	out := chute.TxResult{Published: txPublished(res)}
	b.mu.Unlock()
	if err != nil {
		return chute.TxResult{}, err
	}
	if err := wait(ctx, batch); err != nil {
		return chute.TxResult{}, err
	}
	if len(msgs) > 0 && b.opts.lat != nil {
		b.opts.lat.observeConfirm(b.opts.Clock.Now().Sub(received))
	}
	return out, nil
}

// txSmall holds the results of a transaction with one publish of a few
// messages (the common case) in one allocation.
type txSmall struct {
	outer [1][]chute.PublishResult
	inner [4]chute.PublishResult
}

// txPublished converts a transaction's publish results: in one
// allocation for the common case (txSmall), two otherwise.
func txPublished(res [][]engine.PubResult) [][]chute.PublishResult {
	n := 0
	for _, rs := range res {
		n += len(rs)
	}
	var out [][]chute.PublishResult
	var all []chute.PublishResult
	if len(res) == 1 && n <= len(txSmall{}.inner) {
		s := new(txSmall)
		out, all = s.outer[:], s.inner[:n:n]
	} else {
		out = make([][]chute.PublishResult, len(res))
		all = make([]chute.PublishResult, n)
	}
	for i, rs := range res {
		out[i] = all[:len(rs):len(rs)]
		all = all[len(rs):]
		for j, r := range rs {
			out[i][j] = chute.PublishResult{Seq: r.Seq, Duplicate: r.Duplicate}
		}
	}
	return out
}

// txReceipts are the parsed receipts of one settle part.
type txReceipts struct {
	qids []uint32
	text []string
}

// txMsg pairs a message with its engine form, for stamping times.
type txMsg struct {
	m  *chute.Message
	pm *engine.PubMsg
}

// txBuild is a transaction's engine form and what goes with it, built
// before any lock; pooled, so that a small transaction allocates about
// what a publish does.
type txBuild struct {
	etx   engine.Tx
	parts []txReceipts // per etx.Settle
	msgs  []txMsg
	pms   []engine.PubMsg // every message's engine form, in one array
	items []engine.Item   // every item, in one array
	qids  []uint32
	texts []string // every receipt, in one array
}

var txBuilds = sync.Pool{New: func() any { return new(txBuild) }}

// release returns the build to the pool, holding no message.
func (tb *txBuild) release() {
	if cap(tb.pms) > chute.MaxTxOps || cap(tb.items) > chute.MaxTxOps {
		return // a large one is left to the collector
	}
	clear(tb.pms)
	clear(tb.msgs)
	clear(tb.etx.Pubs)
	clear(tb.etx.Settle)
	clear(tb.parts)
	clear(tb.texts)
	tb.etx = engine.Tx{Pubs: tb.etx.Pubs[:0], Settle: tb.etx.Settle[:0]}
	tb.parts, tb.msgs, tb.pms, tb.items, tb.qids, tb.texts = tb.parts[:0], tb.msgs[:0], tb.pms[:0], tb.items[:0], tb.qids[:0], tb.texts[:0]
	txBuilds.Put(tb)
}

// build checks a transaction's limits and builds its engine form (without
// times): acks first, then nacks (unstarted ones as returns), each
// queue's settle parts in the order given.
func (tb *txBuild) build(b *Broker, tx *chute.Tx) error {
	ops := tx.Ops()
	if ops > chute.MaxTxOps {
		return fmt.Errorf("%w: a transaction of %d messages and receipts, at most %d", chute.ErrBatchTooLarge, ops, chute.MaxTxOps)
	}
	if len(tx.ID) > chute.MaxTxIDLen {
		return fmt.Errorf("%w: transaction ID longer than %d bytes", chute.ErrInvalidMessage, chute.MaxTxIDLen)
	}
	tb.etx.ID = tx.ID
	// Sized once: the slices below point into these arrays.
	tb.pms = slices.Grow(tb.pms[:0], ops)
	tb.items = slices.Grow(tb.items[:0], ops)
	tb.qids = slices.Grow(tb.qids[:0], ops)
	tb.texts = slices.Grow(tb.texts[:0], ops)
	size := 0
	for i := range tx.Publish {
		p := &tx.Publish[i]
		if err := chute.ValidateName(p.Target); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
		ep := engine.TxPub{Target: p.Target}
		if len(p.Messages) > 0 {
			s, err := engine.SessionOf(p.Messages)
			if err != nil {
				return fmt.Errorf("publish %d: %w", i, err)
			}
			ep.Session = s
		}
		start := len(tb.pms)
		for j := range p.Messages {
			m := &p.Messages[j]
			if err := b.checkMessage(m); err != nil {
				return fmt.Errorf("publish %d: message %d: %w", i, j, err)
			}
			size += engine.MessageSize(m)
			tb.pms = append(tb.pms, engine.PubMsg{Prio: uint8(m.Priority), ID: m.ID, Key: m.Key, Headers: m.Headers, Body: m.Body})
			tb.msgs = append(tb.msgs, txMsg{m: m, pm: &tb.pms[len(tb.pms)-1]})
		}
		ep.Msgs = tb.pms[start:len(tb.pms):len(tb.pms)]
		tb.etx.Pubs = append(tb.etx.Pubs, ep)
	}
	if size > chute.MaxTxBytes {
		return fmt.Errorf("%w: a transaction of %d message bytes, at most %d", chute.ErrBatchTooLarge, size, chute.MaxTxBytes)
	}
	for i, a := range tx.Ack {
		if err := chute.ValidateName(a.Queue); err != nil {
			return fmt.Errorf("ack %d: %w", i, err)
		}
		if err := tb.settle(a.Queue, engine.RecAck, len(a.Receipts), func(j int) (string, time.Duration, string) { return a.Receipts[j], 0, "" }); err != nil {
			return fmt.Errorf("ack %d: %w", i, err)
		}
	}
	for i, k := range tx.Nack {
		if err := chute.ValidateName(k.Queue); err != nil {
			return fmt.Errorf("nack %d: %w", i, err)
		}
		for _, typ := range []engine.RecordType{engine.RecNack, engine.RecReturn} {
			var pick []int
			for j, n := range k.Nacks {
				if n.Unstarted == (typ == engine.RecReturn) {
					pick = append(pick, j)
				}
			}
			err := tb.settle(k.Queue, typ, len(pick), func(j int) (string, time.Duration, string) {
				n := k.Nacks[pick[j]]
				return n.Receipt, n.Delay, n.Error
			})
			if err != nil {
				return fmt.Errorf("nack %d: %w", i, err)
			}
		}
	}
	return nil
}

// settle adds a settle part of n receipts (a malformed one fails the
// transaction); item j's receipt, nack delay and error come from at(j).
func (tb *txBuild) settle(queue string, typ engine.RecordType, n int, at func(j int) (string, time.Duration, string)) error {
	if n == 0 {
		return nil
	}
	start := len(tb.items)
	for j := range n {
		r, delay, msg := at(j)
		qid, seq, deliv, err := parseReceipt(r)
		if err != nil {
			return err
		}
		msg = engine.NackError(msg)
		tb.texts = append(tb.texts, r)
		tb.qids = append(tb.qids, qid)
		tb.items = append(tb.items, engine.Item{Seq: seq, Deliv: deliv, Value: int64(delay), Err: msg})
	}
	rs := txReceipts{qids: tb.qids[start:len(tb.qids):len(tb.qids)], text: tb.texts[start:len(tb.texts):len(tb.texts)]}
	tb.etx.Settle = append(tb.etx.Settle, engine.TxSettle{Queue: queue, Type: typ, Items: tb.items[start:len(tb.items):len(tb.items)]})
	tb.parts = append(tb.parts, rs)
	return nil
}
