package engine

import (
	"fmt"
	"slices"

	"github.com/chutemq/chute/internal/text"
)

// Delivered describes one message handed to a consumer (or shown by Peek).
// The body, headers, message ID and key are in the blob at Ref.
type Delivered struct {
	QueueID  uint32
	Seq      uint64
	Ref      uint64
	Size     uint32
	Pub      int64 // publish time, unix ns
	Prio     uint8
	Deliv    uint16 // deliveries including this one (0 for Peek): the lease's epoch, which its receipt names
	Counted  uint16 // of those, the ones that count towards max deliveries (not returned unstarted or at shutdown)
	Deadline int64  // lease deadline, unix ns (0 for Peek)
	LastErr  string
	Dead     *DeadInfo // set for dead letters
}

func (q *queue) describe(en *entry, deadline int64) Delivered {
	d := Delivered{QueueID: q.id, Seq: en.seq, Ref: en.ref, Size: en.size, Pub: en.pub,
		Prio: en.prio, Deliv: en.deliv, Counted: q.counted(en), Deadline: deadline}
	if en.flags&fErr != 0 {
		d.LastErr = q.lastErr[en.seq]
	}
	if en.flags&fDead != 0 {
		d.Dead = q.dead[en.seq]
	}
	return d
}

// QueueID returns the id of a queue (receipts carry it, so that a receipt
// from a deleted queue never matches a new queue of the same name).
func (e *Engine) QueueID(name string) (uint32, bool) {
	q := e.queues[name]
	if q == nil {
		return 0, false
	}
	return q.id, true
}

// QueueExists reports whether a queue with this id exists (receipts carry
// the id: one of a queue that was deleted is stale, one of another queue
// is a mistake).
func (e *Engine) QueueExists(id uint32) bool { return e.byID[id] != nil }

// Exists reports whether a queue or topic has this name.
func (e *Engine) Exists(name string) bool { return e.queues[name] != nil || e.topics[name] != nil }

// Receive leases up to max ready messages of a queue, best first
// (priority desc, sequence asc), for lease (≤ 0: the queue's visibility
// timeout). The record is nil when nothing was ready.
func (e *Engine) Receive(now int64, name string, max int, lease int64) (*Record, []Delivered, error) {
	return e.ReceiveAs(now, name, max, lease, "")
}

// ReceiveAs is Receive for a named holder, whom Lookup reports for these
// leases. The holder is not state: no record carries it, so replay and
// snapshots leave it empty (and a restart ends every lease anyway).
func (e *Engine) ReceiveAs(now int64, name string, max int, lease int64, holder string) (*Record, []Delivered, error) {
	e.advance(now)
	q := e.queues[name]
	if q == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if q.withheld() {
		return nil, nil, nil // paused or breaker open (pause.go)
	}
	if lease <= 0 {
		lease = int64(q.cfg.VisibilityTimeout)
	}
	lease = min(lease, int64(MaxVisibilityTimeout))
	deadline := e.now + lease
	var out []Delivered
	var seqs []uint64
	if n := int(min(int64(max), q.n.ready)); n > 1 { // a hint: sized once
		out, seqs = make([]Delivered, 0, n), make([]uint64, 0, n)
	}
	for len(out) < max {
		p, fromRetry, ok := q.best()
		if !ok {
			break
		}
		l := e.lease(q, q.take(p, fromRetry), deadline)
		l.holder = holder
		e.observeDelivered(q, l)
		out = append(out, q.describe(&l.e, deadline))
		seqs = append(seqs, l.e.seq)
	}
	if len(seqs) == 0 {
		return nil, nil, nil
	}
	return &Record{Type: RecDeliver, Time: e.now, Name: name, Deadline: deadline, Seqs: seqs}, out, nil
}

func (e *Engine) applyDeliver(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	for _, s := range r.Seqs {
		en, ok := q.takeSeq(s)
		if !ok {
			return fmt.Errorf("message %d is not at the front of the ready set", s)
		}
		e.lease(q, en, r.Deadline)
	}
	return nil
}

// Ack ends the leases named by items (Seq and Deliv from the receipt): the
// messages are done and leave the queue. errs[i] is nil or
// ErrStaleReceipt; the record holds the items that succeeded (nil if none).
func (e *Engine) Ack(now int64, name string, items []Item) (*Record, []error, error) {
	return e.itemsCommand(now, RecAck, name, items)
}

// Nack ends the leases named by items and returns the messages for
// redelivery after Value ns (0: the queue's back-off; negative: at once),
// or to the dead-letter queue if they used their deliveries. Err is kept
// as the message's last error.
func (e *Engine) Nack(now int64, name string, items []Item) (*Record, []error, error) {
	return e.itemsCommand(now, RecNack, name, items)
}

// Return ends the leases named by items (Seq and Deliv; Value and Err are
// ignored) and makes their messages ready again at once, in their place,
// without counting the delivery towards max deliveries: the consumer never
// started them (a prefetch handed back).
func (e *Engine) Return(now int64, name string, items []Item) (*Record, []error, error) {
	return e.itemsCommand(now, RecReturn, name, items)
}

// Extend sets the leases named by items to end Value ns from now (≤ 0:
// the queue's visibility timeout).
func (e *Engine) Extend(now int64, name string, items []Item) (*Record, []error, error) {
	return e.itemsCommand(now, RecExtend, name, items)
}

func (e *Engine) itemsCommand(now int64, typ RecordType, name string, items []Item) (*Record, []error, error) {
	e.advance(now)
	q := e.queues[name]
	if q == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	r := &Record{Type: typ, Time: e.now, Name: name}
	errs := make([]error, len(items))
	for i, it := range items {
		l := q.leases[it.Seq]
		if l == nil || l.e.deliv != it.Deliv {
			errs[i] = ErrStaleReceipt
			continue
		}
		switch typ {
		case RecNack, RecReturn:
			settleValue(q, typ, &it, l.e.deliv)
		case RecExtend:
			d := it.Value
			if d <= 0 {
				d = int64(q.cfg.VisibilityTimeout)
			}
			it.Value = e.now + min(d, int64(MaxVisibilityTimeout))
		}
		if typ == RecAck {
			e.observeAck(q, l) // before applyItem ends the lease
		}
		if err := e.applyItem(q, r, it); err != nil {
			errs[i] = err
			continue
		}
		r.Items = append(r.Items, it)
	}
	if len(r.Items) == 0 {
		r = nil
	}
	return r, errs, nil
}

func (e *Engine) applyItems(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	for _, it := range r.Items {
		if err := e.applyItem(q, r, it); err != nil {
			return fmt.Errorf("message %d: %w", it.Seq, err)
		}
	}
	return nil
}

func (e *Engine) applyItem(q *queue, r *Record, it Item) error {
	l := q.leases[it.Seq]
	if l == nil || l.e.deliv != it.Deliv {
		return ErrStaleReceipt
	}
	switch r.Type {
	case RecAck:
		e.endLease(q, l)
		q.total.Acked++
		e.leave(q, &l.e, l.key)
		e.settle(q, it.Seq, stAcked, 0, nil, 0, r.Time)
	case RecNack:
		e.endLease(q, l)
		q.total.Nacked++
		if it.Err != "" {
			if q.lastErr == nil {
				q.lastErr = make(map[uint64]string)
			}
			q.lastErr[it.Seq] = it.Err
			l.e.flags |= fErr
		}
		e.retry(q, l, max(it.Value, 0), r.Time)
	case RecReturn:
		e.endLease(q, l)
		e.giveBack(q, l, r.Time)
	case RecExtend:
		l.deadline = it.Value
		q.leaseQ.fix(l.idx)
		e.reschedule(q)
	}
	return nil
}

// ReleaseLeases ends every lease as if it had expired now: on restart,
// leases held before the crash must not outlive it.
func (e *Engine) ReleaseLeases(now int64) *Record {
	e.advance(now)
	r := &Record{Type: RecReleaseLeases, Time: e.now}
	e.applyReleaseLeases(r.Time)
	return r
}

func (e *Engine) applyReleaseLeases(t int64) {
	e.endAllLeases(func(q *queue, l *lease) {
		q.total.LeaseExpired++
		e.retry(q, l, 0, t)
	})
}

// ReturnLeases ends every lease without counting the deliveries towards
// max deliveries: a graceful shutdown hands the messages back, as a
// consumer returns a message it has not started. (After a crash,
// ReleaseLeases counts them: a message that crashes its consumer must
// still reach its max deliveries.) The record is nil when no lease is
// held.
func (e *Engine) ReturnLeases(now int64) *Record {
	e.advance(now)
	if !e.HasLeases() {
		return nil
	}
	r := &Record{Type: RecReturnLeases, Time: e.now}
	e.applyReturnLeases(r.Time)
	return r
}

func (e *Engine) applyReturnLeases(t int64) {
	e.endAllLeases(func(q *queue, l *lease) { e.giveBack(q, l, t) })
}

// endAllLeases ends the leases of every queue, queue by queue in id order
// and by deadline within a queue, handing each to then.
func (e *Engine) endAllLeases(then func(q *queue, l *lease)) {
	ids := make([]uint32, 0, len(e.byID))
	for id := range e.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids) // dead letters get sequences: the order must be fixed
	for _, id := range ids {
		q := e.byID[id]
		for len(q.leaseQ) > 0 {
			l := q.leaseQ[0]
			e.endLease(q, l)
			then(q, l)
		}
	}
}

// delay is the back-off before retry number deliv of message seq. The
// jitter is a hash of (seq, deliv), not a random draw, so that the engine
// stays deterministic while messages that failed together still spread.
func backoffDelay(b Backoff, seq uint64, deliv uint16) int64 {
	var d int64
	switch b.Kind {
	case BackoffNone:
		return 0
	case BackoffFixed:
		d = int64(b.Delay)
	default:
		d = int64(b.Max)
		if shift := int(deliv) - 1; shift < 62 {
			if x := int64(b.Delay) << max(shift, 0); x > 0 && x>>max(shift, 0) == int64(b.Delay) {
				d = min(x, int64(b.Max))
			}
		}
	}
	if b.Jitter > 0 {
		h := seq*0x9E3779B97F4A7C15 ^ uint64(deliv)*0xC2B2AE3D27D4EB4F
		h ^= h >> 29
		h *= 0xBF58476D1CE4E5B9
		h ^= h >> 32
		f := float64(h>>11)/float64(1<<53)*2 - 1 // [-1, 1)
		d += int64(float64(d) * b.Jitter * f)
	}
	if b.Kind == BackoffExponential {
		d = min(d, int64(b.Max))
	}
	return max(d, 0)
}

// settleValue sets a nack's or return's item as its record carries it: a
// nack's delay is the queue's back-off when none was given (0), none when
// negative, and at most MaxTTL; a return carries neither delay nor error.
func settleValue(q *queue, typ RecordType, it *Item, deliv uint16) {
	if typ == RecReturn {
		it.Value, it.Err = 0, ""
		return
	}
	switch {
	case it.Value == 0:
		it.Value = backoffDelay(q.cfg.Backoff, it.Seq, deliv)
	case it.Value < 0:
		it.Value = 0
	}
	it.Value = min(it.Value, int64(MaxTTL))
}
