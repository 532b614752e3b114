package engine

import (
	"fmt"
	"math"
	"slices"

	"github.com/chutemq/chute/internal/text"
)

// PubResult is the answer to one published message.
type PubResult struct {
	Seq       uint64 // the message's sequence (the first copy's, for a duplicate; 0 if no longer known)
	Duplicate bool   // stored before (message ID seen within the de-dup window, or session number stored): not stored again
}

// Session places a publish in a producer session (see dedup.go): the
// session's ID and the session number of the batch's first message (the
// others follow it). The zero Session is no session.
type Session struct {
	ID    string
	First uint64
}

// target is a queue or topic as a publish sees it.
type target struct {
	q  *queue
	t  *topic
	dd *dedup
	// The target's de-dup settings, in ns and counts (≤ 0: off / no cap).
	window, maxIDs, sessWindow int64
}

func (e *Engine) target(name string) (target, bool) {
	if q := e.queues[name]; q != nil {
		return target{q: q, dd: &q.dedup, window: int64(q.cfg.DedupWindow),
			maxIDs: q.cfg.MaxDedupIDs, sessWindow: int64(q.cfg.SessionWindow)}, true
	}
	if t := e.topics[name]; t != nil {
		return target{t: t, dd: &t.dedup, window: int64(t.cfg.DedupWindow),
			maxIDs: t.cfg.MaxDedupIDs, sessWindow: int64(t.cfg.SessionWindow)}, true
	}
	return target{}, false
}

// forgot counts de-dup entries forgotten early.
func (tg target) forgot(n int64) {
	switch {
	case n == 0:
	case tg.q != nil:
		tg.q.total.DedupForgotten += n
	default:
		tg.t.total.DedupForgotten += n
	}
}

// PreparePublish validates a batch published to a queue or topic, in
// producer session s (the zero Session: none), and builds its record,
// without changing any state. Duplicates — by session number (at or below
// the session's highest stored number), by message ID (against the window
// or earlier in the batch) — are answered and left out of the record; the
// record is nil when nothing is new. A session batch that starts more than
// one past the session's highest number is refused with ErrOutOfOrder. The
// batch is atomic: if any message is invalid or does not fit, nothing is
// stored.
//
// The caller encodes the record, stores it, and then calls Apply with the
// storage location of its first byte, before any other engine call.
func (e *Engine) PreparePublish(now int64, name string, s Session, msgs []PubMsg) (*Record, []PubResult, error) {
	return e.preparePublish(now, name, s, msgs, new(Record), make([]PubResult, len(msgs)))
}

// preparePublish is PreparePublish building into r (its Msgs array kept
// for reuse) and res (len(msgs) results), which PrepareTx reuses.
func (e *Engine) preparePublish(now int64, name string, s Session, msgs []PubMsg, r *Record, res []PubResult) (*Record, []PubResult, error) {
	e.advance(now)
	now = e.now
	tg, ok := e.target(name)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, text.Quote(name))
	}
	dd, window := tg.dd, tg.window
	*r = Record{Type: RecPublish, Time: now, Name: name, FirstSeq: e.nextSeq, Msgs: r.Msgs[:0]}
	skip, err := e.prepareSession(tg, s, msgs, res, r)
	if err != nil {
		return nil, nil, err
	}
	seq := e.nextSeq
	var inBatch map[string]uint64
	for i := range msgs {
		m := &msgs[i]
		if err := validateMsg(m, now); err != nil {
			return nil, nil, fmt.Errorf("message %d: %w", i, err)
		}
		if i < skip {
			continue // a duplicate by session number, answered
		}
		if m.ID != "" {
			dup, ok := dd.lookup(m.ID, now, window)
			if !ok {
				dup, ok = inBatch[m.ID]
			}
			if ok {
				res[i] = PubResult{Seq: dup, Duplicate: true}
				if r.Session != "" {
					r.SessionDups = append(r.SessionDups, SessionDup{Pos: uint32(i - skip), Seq: dup})
				}
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
	if len(r.Msgs) == 0 && r.SessionN == 0 {
		return nil, res, nil
	}
	if err := e.checkRoom(tg.q, tg.t, r.Msgs); err != nil {
		return nil, nil, err
	}
	return r, res, nil
}

// prepareSession applies the session rules to a batch: it refuses a batch
// that leaves a gap, answers the messages whose session numbers were
// stored (the first skip), and sets the record's session fields for the
// rest. A target with sessions off ignores them.
func (e *Engine) prepareSession(tg target, s Session, msgs []PubMsg, res []PubResult, r *Record) (skip int, err error) {
	if IsScheduleSession(s.ID) {
		return e.prepareScheduleSession(s, msgs, res, r) // schedule.go
	}
	if s.ID == "" || tg.sessWindow <= 0 || len(msgs) == 0 {
		return 0, nil
	}
	switch {
	case len(s.ID) > MaxSessionLen:
		return 0, fmt.Errorf("%w: session ID longer than %d bytes", ErrInvalidMessage, MaxSessionLen)
	case s.First == 0 || s.First > math.MaxUint64-uint64(len(msgs)):
		return 0, fmt.Errorf("%w: session number %d: numbers start at 1", ErrInvalidMessage, s.First)
	}
	var hw uint64
	sess := tg.dd.sess.get(s.ID, e.now, tg.sessWindow)
	if sess != nil {
		hw = sess.hw
	}
	if s.First > hw+1 {
		if sess == nil {
			return 0, fmt.Errorf("%w: session %s starts at %d: the broker does not know the session (new, or idle for longer than the session window): start at 1",
				ErrOutOfOrder, text.Quote(s.ID), s.First)
		}
		return 0, fmt.Errorf("%w: session %s: the batch starts at %d, the next expected is %d", ErrOutOfOrder, text.Quote(s.ID), s.First, hw+1)
	}
	if s.First <= hw {
		skip = int(min(hw-s.First+1, uint64(len(msgs))))
	}
	for i := range skip {
		res[i] = PubResult{Seq: sess.result(s.First + uint64(i)), Duplicate: true}
	}
	if skip < len(msgs) {
		r.Session, r.SessionSeq, r.SessionN = s.ID, s.First+uint64(skip), uint32(len(msgs)-skip)
	}
	return skip, nil
}

// applySession updates the session of a publish record that has one.
func (e *Engine) applySession(tg target, r *Record) error {
	if IsScheduleSession(r.Session) {
		return e.applyScheduleSession(r) // schedule.go
	}
	if r.Session == "" || tg.sessWindow <= 0 {
		return nil
	}
	if int(r.SessionN) != len(r.Msgs)+len(r.SessionDups) {
		return fmt.Errorf("session %q: %d numbers for %d messages and %d duplicates", r.Session, r.SessionN, len(r.Msgs), len(r.SessionDups))
	}
	for i, d := range r.SessionDups {
		if d.Pos >= r.SessionN || i > 0 && d.Pos <= r.SessionDups[i-1].Pos {
			return fmt.Errorf("session %q: duplicate position %d", r.Session, d.Pos)
		}
	}
	var hw uint64
	if sess := tg.dd.sess.get(r.Session, r.Time, tg.sessWindow); sess != nil {
		hw = sess.hw
	}
	// PreparePublish makes the batch start at hw+1. One that starts later
	// follows a record lost to damage (journal repair skips what no longer
	// fits and replays the rest): the session goes on after the gap. One
	// that starts at or below hw cannot be.
	if r.SessionSeq <= hw || r.SessionSeq == 0 {
		return fmt.Errorf("session %q: batch at %d, expected %d", r.Session, r.SessionSeq, hw+1)
	}
	sess, forgotten := tg.dd.sess.use(r.Session, r.Time, tg.sessWindow, MaxSessions)
	tg.forgot(forgotten)
	sess.record(sessBatch{first: r.SessionSeq, n: r.SessionN, seq: r.FirstSeq, dups: slices.Clone(r.SessionDups)})
	return nil
}

func validateMsg(m *PubMsg, now int64) error {
	switch {
	case m.Prio > MaxPriority:
		return fmt.Errorf("%w: priority %d outside 0..%d", ErrInvalidMessage, m.Prio, MaxPriority)
	case len(m.ID) > MaxIDLen:
		return fmt.Errorf("%w: message ID longer than %d bytes", ErrInvalidMessage, MaxIDLen)
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
	tg, ok := e.target(r.Name)
	if !ok {
		return ErrNotFound
	}
	q, t := tg.q, tg.t
	if r.FirstSeq != e.nextSeq {
		return fmt.Errorf("first sequence %d, expected %d", r.FirstSeq, e.nextSeq)
	}
	if err := e.applySession(tg, r); err != nil {
		return err
	}
	for i := range r.Msgs {
		m := &r.Msgs[i]
		en := entry{seq: e.nextSeq, ref: base + uint64(m.BlobOff), pub: r.Time, size: uint32(len(m.Blob)), prio: m.Prio}
		if m.Prio > MaxPriority {
			return fmt.Errorf("priority %d", m.Prio)
		}
		e.nextSeq++
		if m.ID != "" {
			tg.forgot(tg.dd.add(m.ID, en.seq, r.Time, tg.window, tg.maxIDs))
		}
		if q != nil {
			e.publishTo(q, en, m, r.Time)
			continue
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
