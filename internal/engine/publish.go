package engine

import (
	"fmt"
	"math"

	"github.com/chutemq/chute/internal/text"
)

// PubResult is the answer to one published message.
type PubResult struct {
	Seq       uint64 // the message's sequence (the first copy's, for a duplicate)
	Duplicate bool   // the producer ID was seen within the de-dup window: not stored again
}

// PreparePublish validates a batch published to a queue or topic and
// builds its record, without changing any state. Duplicates (by producer
// ID, against the window or earlier in the batch) are answered and left out
// of the record; the record is nil when nothing is new. The batch is
// atomic: if any message is invalid or does not fit, nothing is stored.
//
// The caller encodes the record, stores it, and then calls Apply with the
// storage location of its first byte, before any other engine call.
func (e *Engine) PreparePublish(now int64, target string, msgs []PubMsg) (*Record, []PubResult, error) {
	e.advance(now)
	now = e.now
	q, t := e.queues[target], e.topics[target]
	var dd *dedup
	var window int64
	switch {
	case q != nil:
		dd, window = &q.dedup, int64(q.cfg.DedupWindow)
	case t != nil:
		dd, window = &t.dedup, int64(t.cfg.DedupWindow)
	default:
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, text.Quote(target))
	}
	res := make([]PubResult, len(msgs))
	r := &Record{Type: RecPublish, Time: now, Name: target, FirstSeq: e.nextSeq}
	seq := e.nextSeq
	var inBatch map[string]uint64
	for i := range msgs {
		m := &msgs[i]
		if err := validateMsg(m, now); err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i, err)
		}
		if m.ID != "" {
			if s, ok := dd.lookup(m.ID, now, window); ok {
				res[i] = PubResult{Seq: s, Duplicate: true}
				continue
			}
			if s, ok := inBatch[m.ID]; ok {
				res[i] = PubResult{Seq: s, Duplicate: true}
				continue
			}
			if window > 0 {
				if inBatch == nil {
					inBatch = make(map[string]uint64)
				}
				inBatch[m.ID] = seq
			}
		}
		res[i] = PubResult{Seq: seq}
		seq++
		r.Msgs = append(r.Msgs, *m)
	}
	if len(r.Msgs) == 0 {
		return nil, res, nil
	}
	if err := e.checkRoom(q, t, r.Msgs); err != nil {
		return nil, nil, err
	}
	return r, res, nil
}

func validateMsg(m *PubMsg, now int64) error {
	switch {
	case m.Prio > MaxPriority:
		return fmt.Errorf("%w: priority %d outside 0..%d", ErrInvalidMessage, m.Prio, MaxPriority)
	case len(m.ID) > MaxIDLen:
		return fmt.Errorf("%w: producer ID longer than %d bytes", ErrInvalidMessage, MaxIDLen)
	case len(m.Key) > MaxKeyLen:
		return fmt.Errorf("%w: ordering key longer than %d bytes", ErrInvalidMessage, MaxKeyLen)
	case m.ExpireAt < 0 || m.DeliverAt < 0:
		return fmt.Errorf("%w: negative time", ErrInvalidMessage)
	case m.ExpireAt != 0 && m.ExpireAt-now > int64(MaxTTL):
		return fmt.Errorf("%w: TTL above %v", ErrInvalidMessage, MaxTTL)
	case m.DeliverAt-now > int64(MaxTTL):
		return fmt.Errorf("%w: delay above %v", ErrInvalidMessage, MaxTTL)
	case BlobSize(m.ID, m.Key, m.Headers, m.Body) > math.MaxUint32:
		return fmt.Errorf("%w: message larger than 4 GiB", ErrInvalidMessage)
	}
	return nil
}

// checkRoom refuses a batch that would break a depth limit of the queue, or
// of any subscription it would reach, whose overflow policy is reject — or
// whose policy is drop-oldest but whose ready messages are too few to make
// room.
func (e *Engine) checkRoom(q *queue, t *topic, msgs []PubMsg) error {
	if q != nil {
		var b int64
		for i := range msgs {
			b += int64(BlobSize(msgs[i].ID, msgs[i].Key, msgs[i].Headers, msgs[i].Body))
		}
		return q.checkRoom(int64(len(msgs)), b)
	}
	for _, s := range t.subs {
		if s.cfg.MaxMessages <= 0 && s.cfg.MaxBytes <= 0 {
			continue
		}
		var n, b int64
		for i := range msgs {
			if mapMatches(msgs[i].Headers, s.sub.filter) {
				n++
				b += int64(BlobSize(msgs[i].ID, msgs[i].Key, msgs[i].Headers, msgs[i].Body))
			}
		}
		if err := s.checkRoom(n, b); err != nil {
			return fmt.Errorf("subscription %q: %w", s.name, err)
		}
	}
	return nil
}

func (q *queue) checkRoom(n, b int64) error {
	if n == 0 || q.hasRoom(n, b) {
		return nil
	}
	if q.cfg.Overflow == OverflowDropOldest {
		needN := q.n.depth() + n - q.cfg.MaxMessages
		needB := q.n.bytes() + b - q.cfg.MaxBytes
		okN := q.cfg.MaxMessages <= 0 || needN <= q.n.inSet
		okB := q.cfg.MaxBytes <= 0 || (needB <= q.n.inSetBytes && b <= q.cfg.MaxBytes)
		if okN && okB {
			return nil
		}
	}
	return fmt.Errorf("%w: %q holds %d messages / %d bytes, limits %d / %d",
		ErrQueueFull, q.name, q.n.depth(), q.n.bytes(), q.cfg.MaxMessages, q.cfg.MaxBytes)
}

func mapMatches(h, filter map[string]string) bool {
	for k, v := range filter {
		if hv, ok := h[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func (e *Engine) applyPublish(r *Record, base uint64) error {
	q, t := e.queues[r.Name], e.topics[r.Name]
	if q == nil && t == nil {
		return ErrNotFound
	}
	if r.FirstSeq != e.nextSeq {
		return fmt.Errorf("first sequence %d, expected %d", r.FirstSeq, e.nextSeq)
	}
	for i := range r.Msgs {
		m := &r.Msgs[i]
		en := entry{seq: e.nextSeq, ref: base + uint64(m.BlobOff), pub: r.Time, size: uint32(len(m.Blob)), prio: m.Prio}
		if m.Prio > MaxPriority {
			return fmt.Errorf("priority %d", m.Prio)
		}
		e.nextSeq++
		if q != nil {
			if m.ID != "" {
				q.dedup.add(m.ID, en.seq, r.Time, int64(q.cfg.DedupWindow))
			}
			e.publishTo(q, en, m, r.Time)
			continue
		}
		if m.ID != "" {
			t.dedup.add(m.ID, en.seq, r.Time, int64(t.cfg.DedupWindow))
		}
		t.total.Published++
		routed := false
		for _, s := range t.subs {
			if blobMatches(m.Blob, s.sub.filter) {
				e.publishTo(s, en, m, r.Time)
				routed = true
			}
		}
		if !routed {
			t.total.Unrouted++
		}
	}
	return nil
}

// publishTo puts a newly published message on q, first dropping the oldest
// ready messages if q is full and its policy is drop-oldest.
func (e *Engine) publishTo(q *queue, en entry, m *PubMsg, t int64) {
	expire := m.ExpireAt
	if expire == 0 && q.cfg.MessageTTL > 0 {
		expire = t + int64(q.cfg.MessageTTL)
	}
	if q.cfg.Overflow == OverflowDropOldest {
		for !q.hasRoom(1, int64(en.size)) {
			p, fromRetry, ok := q.oldest()
			if !ok {
				break
			}
			old := q.take(p, fromRetry)
			k, _ := e.leaveReady(q, &old)
			q.total.Dropped++
			e.dispose(q, old, k, true, ReasonOverflow, t)
		}
	}
	e.enqueue(q, en, m.DeliverAt, expire, m.Key, t)
}
