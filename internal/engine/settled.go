package engine

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/chutemq/chute"
)

// The settled log: how messages left a queue, for a while.
//
// When a message leaves a queue for good (acked, expired, cancelled,
// purged, dead-lettered, discarded, redriven), the queue remembers its
// sequence, the outcome and the time, and where it went, for
// QueueConfig.SettledWindow (0: the de-dup window) and at most
// QueueConfig.MaxSettled messages, oldest forgotten first. It changes only
// as records (and timers) apply, at their time, so a replay rebuilds it
// exactly; the snapshot carries it.
//
// Cost: 32 bytes in the order deque and a map entry of 8 + 8 bytes (in
// one of two maps, see settledLog); about 80 bytes a settled message with
// the maps' slack, measured by TestSettledMemory; the default cap of
// 10,000 bounds a queue's log at about 0.8 MB. In time, one map insert per
// message that leaves: forgetting the oldest pops the deque and deletes
// nothing (the map it is in is cleared whole once all of it is
// forgotten).

// The settled states, by the names the engine's removal paths use.
const (
	stAcked        = chute.MessageAcked
	stExpired      = chute.MessageExpired
	stCancelled    = chute.MessageCancelled
	stPurged       = chute.MessagePurged
	stDeadLettered = chute.MessageDeadLettered
	stDiscarded    = chute.MessageDiscarded
	stRedriven     = chute.MessageRedriven
)

// settledRec is one settled message.
type settledRec struct {
	at       int64  // when it left (unix ns)
	movedSeq uint64 // its sequence in movedQ
	movedQ   uint32 // queue id it moved to (dead-lettered, redriven); 0: none
	state    chute.MessageState
	reason   Reason // dead-lettered, discarded: why
}

// settledLog is a queue's settled messages in the order they settled
// (which is time order), found by sequence through two maps.
//
// Every message added gets the next position (a count of adds); the deque
// holds positions head … head+len-1, the ones remembered. The maps give a
// sequence's newest position: m for the positions from mFrom on, old for
// the ones before. Forgetting only pops the deque and moves head: a map
// entry whose position is below head is dead, and lookups ignore it. Once
// head reaches mFrom, every entry of old is dead: old is cleared and
// becomes the new m (from the current tail), and m becomes old. So each
// message costs one map insert, the maps hold at most about twice what is
// remembered, and a lookup is two map lookups.
type settledLog struct {
	order deque[settledAt] // oldest first
	head  uint64           // position of order's front
	m     map[uint64]uint64
	mFrom uint64 // m holds the positions from mFrom on
	old   map[uint64]uint64
}

// settledAt is a settled message in the order deque.
type settledAt struct {
	seq uint64
	settledRec
}

// settledLimits are q's settled window (ns; ≤ 0: off) and cap (≤ 0: none).
// Configs from before version 4 records have zeros: the defaults.
func (q *queue) settledLimits() (window, limit int64) {
	w := q.cfg.SettledWindow
	if w == 0 {
		w = q.cfg.DedupWindow
		if w <= 0 {
			w = DefaultDedupWindow
		}
	}
	limit = q.cfg.MaxSettled
	if limit == 0 {
		limit = chute.DefaultMaxSettled
	}
	return int64(w), limit
}

// settle remembers that message seq left q at time t in state st (to is
// the queue it moved to, with its new sequence there).
func (e *Engine) settle(q *queue, seq uint64, st chute.MessageState, reason Reason, to *queue, toSeq uint64, t int64) {
	window, limit := q.settledLimits()
	if window <= 0 {
		if q.settled.m != nil || q.settled.old != nil {
			q.settled = settledLog{}
		}
		return
	}
	rec := settledRec{at: t, state: st, reason: reason}
	if to != nil {
		rec.movedQ, rec.movedSeq = to.id, toSeq
	}
	q.settled.add(seq, rec, window, limit)
}

// add remembers seq, after forgetting what is older than window at rec's
// time, then forgets the oldest beyond limit.
func (s *settledLog) add(seq uint64, rec settledRec, window, limit int64) {
	for s.order.len() > 0 && s.order.front().at+window <= rec.at {
		s.forgetOldest()
	}
	if s.m == nil {
		s.m = make(map[uint64]uint64)
	}
	s.m[seq] = s.head + uint64(s.order.len())
	s.order.push(settledAt{seq: seq, settledRec: rec})
	for limit > 0 && s.order.len() > int(limit) {
		s.forgetOldest()
	}
	if s.head >= s.mFrom {
		// Every position in old is below head: forgotten.
		clear(s.old)
		s.m, s.old = s.old, s.m
		s.mFrom = s.head + uint64(s.order.len())
	}
}

func (s *settledLog) forgetOldest() {
	s.order.pop()
	s.head++
}

// get returns the remembered record of seq.
func (s *settledLog) get(seq uint64) (settledRec, bool) {
	p, ok := s.m[seq]
	if !ok {
		p, ok = s.old[seq]
	}
	if !ok || p < s.head || p-s.head >= uint64(s.order.len()) {
		return settledRec{}, false
	}
	o := s.order.at(int(p - s.head))
	if o.seq != seq {
		return settledRec{}, false // not reached: positions are unique
	}
	return o.settledRec, true
}

func (s *settledLog) len() int { return s.order.len() }

// lookupSettled fills info for a message q remembers as settled (and not
// yet past its window at the engine's time).
func (e *Engine) lookupSettled(q *queue, seq uint64, info *chute.MessageInfo) bool {
	rec, ok := q.settled.get(seq)
	if window, _ := q.settledLimits(); !ok || window <= 0 || rec.at+window <= e.now {
		return false
	}
	info.State = rec.state
	info.SettledAt = time.Unix(0, rec.at)
	if rec.reason != 0 {
		info.Reason = rec.reason.String()
	}
	if rec.movedQ != 0 {
		if to := e.byID[rec.movedQ]; to != nil {
			info.MovedTo = to.name
		}
		info.MovedSeq = rec.movedSeq
	}
	return true
}

// settledState is the state of a settled message q still remembers, or
// unknown.
func (e *Engine) settledState(q *queue, seq uint64) chute.MessageState {
	var info chute.MessageInfo
	if e.lookupSettled(q, seq, &info) {
		return info.State
	}
	return chute.MessageUnknown
}

// purgeSet collects the sequences a purge removes, keeping only the newest
// limit of them (a min-heap), so that purging a million messages costs at
// most the cap in memory.
type purgeSet struct {
	h     seqMinHeap
	limit int
}

func (p *purgeSet) add(seq uint64) {
	switch {
	case p.limit <= 0 || len(p.h) < p.limit:
		p.h = append(p.h, seq)
		heapUp(p.h, len(p.h)-1)
	case seq > p.h[0]:
		p.h[0] = seq
		heapDown(p.h, 0)
	}
}

type seqMinHeap []uint64

func (h seqMinHeap) len() int           { return len(h) }
func (h seqMinHeap) less(i, j int) bool { return h[i] < h[j] }
func (h seqMinHeap) swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// newPurgeSet starts collecting a purge of q; nil when q remembers no
// settled messages.
func (q *queue) newPurgeSet() *purgeSet {
	window, limit := q.settledLimits()
	if window <= 0 {
		return nil
	}
	return &purgeSet{limit: int(limit)}
}

// settlePurged remembers the collected sequences as purged at t, in
// sequence order.
func (e *Engine) settlePurged(q *queue, p *purgeSet, t int64) {
	if p == nil {
		return
	}
	slices.Sort(p.h)
	for _, s := range p.h {
		e.settle(q, s, stPurged, 0, nil, 0, t)
	}
}

// appendSettled encodes q's settled log (snapshot version 4): n, then
// (seq at state reason movedQ movedSeq)* in the order they settled.
func (q *queue) appendSettled(buf []byte) []byte {
	s := &q.settled
	buf = binary.AppendUvarint(buf, uint64(s.order.len()))
	s.order.each(func(o *settledAt) bool {
		r := &o.settledRec
		buf = binary.AppendUvarint(buf, o.seq)
		buf = binary.AppendVarint(buf, r.at)
		buf = append(buf, byte(r.state), byte(r.reason))
		buf = binary.AppendUvarint(buf, uint64(r.movedQ))
		buf = binary.AppendUvarint(buf, r.movedSeq)
		return true
	})
	return buf
}

func (d *decoder) settled(q *queue) {
	n := d.count(6)
	for i := 0; i < n && d.err == nil; i++ {
		seq := d.uvarint()
		r := settledRec{at: d.varint(), state: chute.MessageState(d.byte()), reason: Reason(d.byte())}
		r.movedQ = uint32(min(d.uvarint(), 1<<32-1))
		r.movedSeq = d.uvarint()
		if !r.state.Settled() {
			d.fail("settled message %d in state %v", seq, r.state)
			return
		}
		q.settled.add(seq, r, 1<<62, 0)
	}
}
