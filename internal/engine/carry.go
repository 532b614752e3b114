package engine

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/chutemq/chute/internal/text"
)

// Messages carried in from another shard of a sharded cluster. A queue
// whose dead-letter queue is in another shard dead-letters into a queue
// of that name in its own shard, an outbox (the directory places the
// name elsewhere, so no client reaches it); a dead letter redriven to a
// source queue in another shard goes to an outbox of the source's name
// in the same way. The shard's leader carries what an outbox holds to
// the shard of its name (internal/cluster/forward.go), where RecCarry
// puts each message in as what it was: a dead letter with its original
// publish time and its death, as deadLetter would have, or a redriven
// message, as redriveEntry would have.

// CarryIn is one message carried in: its original publish time, and
// its death (a dead letter) or Redriven.
type CarryIn struct {
	Pub      int64
	Info     DeadInfo
	Redriven bool
}

// PrepareCarry returns the record that puts msgs (their priority, ID,
// key, headers and body; the rest is ignored) into queue name, msgs[i]
// as carry[i] says: a dead letter into name as a dead-letter queue
// (created as deadLetter creates one, its limits not applied, as they
// are not to a dead-lettering), a redriven message into queue name,
// which must exist (else ErrQueueNotFound: the message waits in its
// outbox) and whose room is not checked (as a redrive from its own shard
// would have).
func (e *Engine) PrepareCarry(now int64, name string, msgs []PubMsg, carry []CarryIn) (*Record, error) {
	e.advance(now)
	if len(msgs) != len(carry) {
		return nil, fmt.Errorf("%w: %d messages, %d carried", ErrInvalidConfig, len(msgs), len(carry))
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	for i := range msgs {
		if msgs[i].Prio > MaxPriority {
			return nil, fmt.Errorf("%w: priority %d (0..%d) for a message carried into %s", ErrInvalidMessage, msgs[i].Prio, MaxPriority, text.Quote(name))
		}
		if carry[i].Redriven && e.queues[name] == nil {
			return nil, fmt.Errorf("%w: %s, for a redriven message carried in", ErrQueueNotFound, text.Quote(name))
		}
	}
	return &Record{Type: RecCarry, Time: e.now, Name: name, FirstSeq: e.nextSeq, Msgs: msgs, Carry: carry}, nil
}

func (e *Engine) applyCarry(r *Record, base uint64) error {
	if r.FirstSeq != e.nextSeq {
		return fmt.Errorf("first sequence %d, expected %d", r.FirstSeq, e.nextSeq)
	}
	if len(r.Carry) != len(r.Msgs) {
		return fmt.Errorf("%d messages, %d carried", len(r.Msgs), len(r.Carry))
	}
	for i := range r.Msgs {
		m, c := &r.Msgs[i], &r.Carry[i]
		if m.Prio > MaxPriority {
			return fmt.Errorf("priority %d", m.Prio)
		}
		en := entry{seq: e.nextSeq, ref: base + uint64(m.BlobOff), pub: c.Pub, size: uint32(len(m.Blob)), prio: m.Prio}
		if c.Redriven {
			src := e.queues[r.Name]
			if src == nil {
				return ErrQueueNotFound
			}
			e.nextSeq++
			e.enqueueRedriven(src, en, m.Key, r.Time)
			continue
		}
		en.flags = fDead
		e.nextSeq++
		info := c.Info
		e.enqueueDead(e.ensureDeadLetterQueue(r.Name), en, &info, r.Time)
	}
	return nil
}

// appendCarry encodes RecCarry: Name, FirstSeq, count, then per message
// its priority, publish time, a flags byte (1: redriven), its death
// (source, reason, deliveries, last error, time, sequence, key: empty
// for a redriven one) and blob.
func (r *Record) appendCarry(buf []byte, start int) []byte {
	buf = appendString(buf, r.Name)
	buf = binary.AppendUvarint(buf, r.FirstSeq)
	buf = binary.AppendUvarint(buf, uint64(len(r.Msgs)))
	for i := range r.Msgs {
		m := &r.Msgs[i]
		buf = append(buf, m.Prio)
		buf = AppendCarryIn(buf, &r.Carry[i])
		buf = m.appendBlob(buf, start)
	}
	return buf
}

// AppendCarryIn appends c as RecCarry holds it (and internal/replica's
// OpCarry): its publish time, a flags byte (1: redriven) and its death.
func AppendCarryIn(buf []byte, c *CarryIn) []byte {
	buf = binary.AppendVarint(buf, c.Pub)
	var flags byte
	if c.Redriven {
		flags = 1
	}
	buf = append(buf, flags)
	buf = appendString(buf, c.Info.Source)
	buf = append(buf, byte(c.Info.Reason))
	buf = binary.AppendUvarint(buf, uint64(max(c.Info.Deliveries, 0)))
	buf = appendString(buf, c.Info.LastError)
	buf = binary.AppendVarint(buf, c.Info.At)
	buf = binary.AppendUvarint(buf, c.Info.OrigSeq)
	return appendString(buf, c.Info.Key)
}

// ReadCarryIn reads what AppendCarryIn wrote at the start of b, and how
// many bytes it took.
func ReadCarryIn(b []byte) (CarryIn, int, error) {
	var c CarryIn
	d := &decoder{b: b}
	d.carryIn(&c)
	return c, d.off, d.err
}

func (d *decoder) carryIn(c *CarryIn) {
	c.Pub = d.varint()
	c.Redriven = d.byte()&1 != 0
	c.Info.Source = d.string()
	c.Info.Reason = Reason(d.byte())
	c.Info.Deliveries = int(min(d.uvarint(), math.MaxInt32))
	c.Info.LastError = d.string()
	c.Info.At = d.varint()
	c.Info.OrigSeq = d.uvarint()
	c.Info.Key = d.string()
}

func (d *decoder) carry(r *Record) {
	r.Name = d.string()
	r.FirstSeq = d.uvarint()
	n := d.count(11)
	r.Msgs, r.Carry = make([]PubMsg, n), make([]CarryIn, n)
	for i := range n {
		m := &r.Msgs[i]
		m.Prio = d.byte()
		d.carryIn(&r.Carry[i])
		d.blob(m)
	}
}

// Oldest is up to n of queue name's ready messages (those waiting behind
// their ordering key's current one too) with the lowest sequences, in
// sequence order, without leasing them: what a sharded cluster's
// forwarder carries next (an outbox's messages are all ready). It takes
// the first n of each priority (each in sequence order) and every
// waiting one (a waiting line is in the order its messages became
// ready, not always theirs), so its cost does not grow with a long
// outbox of dead letters, which have no keys.
func (e *Engine) Oldest(name string, n int) ([]Delivered, error) {
	q := e.queues[name]
	if q == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if n <= 0 {
		return nil, nil
	}
	var out []Delivered
	for p := MaxPriority; p >= 0; p-- {
		taken := 0
		q.walkPriority(p, func(en *entry) bool {
			out = append(out, q.describe(en, 0))
			taken++
			return taken < n
		})
	}
	for _, k := range q.keys {
		k.waiting.each(func(en *entry) bool {
			if !isGone(q, en) {
				out = append(out, q.describe(en, 0))
			}
			return true
		})
	}
	slices.SortFunc(out, func(a, b Delivered) int { return cmp.Compare(a.Seq, b.Seq) })
	return out[:min(n, len(out))], nil
}

// DeadSources is the source queues of the dead letters queue name holds,
// sorted (none if it is not a queue).
func (e *Engine) DeadSources(name string) []string {
	q := e.queues[name]
	if q == nil {
		return nil
	}
	set := make(map[string]struct{})
	for _, info := range q.dead {
		set[info.Source] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

// ReadyQueues calls fn with the name of every queue that has ready
// messages.
func (e *Engine) ReadyQueues(fn func(name string)) {
	for name, q := range e.queues {
		if q.n.ready > 0 {
			fn(name)
		}
	}
}
