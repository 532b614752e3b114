package engine

import "math/bits"

// A message in a queue is in exactly one of these places:
//
//	ready    ready[p] (publish order) or retry[p] (returned out of order),
//	         or a key's waiting fifo when its ordering key is held;
//	delayed  the delayed heap (by due time);
//	leased   leases / leaseQ (by deadline).
//
// Entries that expired while in a fifo or heap are not dug out: their seq is
// put in gone and they are skipped when they reach the front (every front
// is kept clean, see cleanFront).
type queue struct {
	id   uint32
	name string
	cfg  QueueConfig
	sub  *subscription // non-nil when the queue is a topic's subscription

	ready [MaxPriority + 1]fifo
	retry [MaxPriority + 1]seqHeap
	mask  uint16 // bit p: ready[p] or retry[p] non-empty

	delayed delayHeap
	leases  map[uint64]*lease
	leaseQ  leaseHeap
	expiry  expiryHeap
	expIx   expiryIndex // seq → position in expiry
	gone    map[uint64]struct{}

	keys      map[string]*keyState
	activeKey map[uint64]*keyState // ready (not leased) key holders by seq

	lastErr map[uint64]string // last nack error text, for fErr entries
	// returned counts, for fRet entries, the deliveries handed back
	// without counting (unstarted, or at a graceful shutdown). The
	// delivery count entry.deliv is also the lease's epoch, which receipts
	// name, so it only ever grows: what counts towards MaxDeliveries is
	// deliv - returned (see counted).
	returned map[uint64]uint16
	dead     map[uint64]*DeadInfo // why a dead letter died, for fDead entries
	dedup    dedup

	aside   map[uint64]asideElem // ready out of publish order, waiting or delayed: lookup.go
	settled settledLog           // how messages left, for a while: settled.go

	n        counts // current content
	total    Totals // cumulative counters
	timerIdx int    // position in Engine.timers, -1 when absent
	wake     bool   // on Engine.wake

	// Control state, decided outside the engine and applied from records
	// (pause.go): while paused, or while the breaker is open, Receive
	// delivers nothing.
	paused  bool
	breaker BreakerState

	// Statistics, not state (latency.go): never in a record or checkpoint.
	lat *Latency         // nil until something is observed
	due map[uint64]int64 // due time of messages published with a delay, while they live
}

// counted is how many of en's deliveries count towards MaxDeliveries.
func (q *queue) counted(en *entry) uint16 {
	if en.flags&fRet == 0 {
		return en.deliv
	}
	return en.deliv - min(q.returned[en.seq], en.deliv)
}

// counts is what a queue holds now. ready includes key-waiting messages;
// inSet/inSetBytes count only the ready set proper (what drop-oldest can
// take).
type counts struct {
	ready, readyBytes       int64
	inSet, inSetBytes       int64
	delayed, delayedBytes   int64
	inflight, inflightBytes int64
}

func (c *counts) depth() int64 { return c.ready + c.delayed + c.inflight }
func (c *counts) bytes() int64 { return c.readyBytes + c.delayedBytes + c.inflightBytes }

func newQueue(id uint32, name string, cfg QueueConfig) *queue {
	return &queue{
		id: id, name: name, cfg: cfg,
		leases:   make(map[uint64]*lease),
		timerIdx: -1,
	}
}

// insertReady puts e in the ready set: at the back of ready[p] when it is
// newer than everything there (the common case, publish order), else in
// retry[p], so that (priority desc, seq asc) order always holds.
func (q *queue) insertReady(e entry) {
	p := e.prio
	if f := &q.ready[p]; f.len() == 0 || e.seq > f.back().seq {
		f.push(e)
	} else {
		q.retry[p].push(e)
		q.putAside(&e, asideRetry, 0, nil)
	}
	q.mask |= 1 << p
	q.n.inSet++
	q.n.inSetBytes += int64(e.size)
}

// best returns the priority and source of the next message to deliver;
// ok is false when the ready set is empty. Fronts are always clean.
func (q *queue) best() (p uint8, fromRetry bool, ok bool) {
	if q.mask == 0 {
		return 0, false, false
	}
	p = uint8(bits.Len16(q.mask) - 1)
	f, h := &q.ready[p], q.retry[p]
	switch {
	case f.len() == 0:
		return p, true, true
	case len(h) == 0:
		return p, false, true
	default:
		return p, h[0].seq < f.front().seq, true
	}
}

// take removes the front entry of ready[p] or retry[p].
func (q *queue) take(p uint8, fromRetry bool) entry {
	var e entry
	if fromRetry {
		e = q.retry[p].pop()
		q.dropAside(e.seq)
	} else {
		e = q.ready[p].pop()
	}
	q.n.inSet--
	q.n.inSetBytes -= int64(e.size)
	q.cleanFront(p)
	return e
}

// takeSeq removes the entry with sequence seq if it is at a front; replay
// uses it to find the message a deliver record names.
func (q *queue) takeSeq(seq uint64) (entry, bool) {
	for m := q.mask; m != 0; m &^= 1 << (bits.Len16(m) - 1) {
		p := uint8(bits.Len16(m) - 1)
		if f := &q.ready[p]; f.len() > 0 && f.front().seq == seq {
			return q.take(p, false), true
		}
		if h := q.retry[p]; len(h) > 0 && h[0].seq == seq {
			return q.take(p, true), true
		}
	}
	return entry{}, false
}

// isGone reports whether e is an expired entry left behind in a fifo or
// heap, and forgets it if so.
func (q *queue) isGone(e *entry) bool {
	if e.flags&fTTL == 0 || q.gone == nil {
		return false
	}
	if _, ok := q.gone[e.seq]; ok {
		delete(q.gone, e.seq)
		return true
	}
	return false
}

// cleanFront drops gone entries from the fronts of priority p and keeps
// the mask bit right.
func (q *queue) cleanFront(p uint8) {
	f, h := &q.ready[p], &q.retry[p]
	for f.len() > 0 && q.isGone(f.front()) {
		f.pop()
	}
	for len(*h) > 0 && q.isGone(&(*h)[0]) {
		h.pop()
	}
	if f.len() == 0 && len(*h) == 0 {
		q.mask &^= 1 << p
	}
}

// oldest returns the entry with the lowest sequence among the fronts, the
// victim of drop-oldest; ok is false when the ready set is empty.
func (q *queue) oldest() (p uint8, fromRetry bool, ok bool) {
	var best uint64
	for m := q.mask; m != 0; m &= m - 1 {
		pp := uint8(bits.TrailingZeros16(m))
		if f := &q.ready[pp]; f.len() > 0 && (!ok || f.front().seq < best) {
			p, fromRetry, ok, best = pp, false, true, f.front().seq
		}
		if h := q.retry[pp]; len(h) > 0 && (!ok || h[0].seq < best) {
			p, fromRetry, ok, best = pp, true, true, h[0].seq
		}
	}
	return p, fromRetry, ok
}

// oldestPub is the publish time of the longest-waiting ready message, or 0.
func (q *queue) oldestPub() int64 {
	var pub int64
	for m := q.mask; m != 0; m &= m - 1 {
		p := bits.TrailingZeros16(m)
		if f := &q.ready[p]; f.len() > 0 && (pub == 0 || f.front().pub < pub) {
			pub = f.front().pub
		}
		if h := q.retry[p]; len(h) > 0 && (pub == 0 || h[0].pub < pub) {
			pub = h[0].pub
		}
	}
	return pub
}

// nextEvent is the time of the queue's earliest timer (delay due, lease
// deadline, expiry), or 0 when it has none.
func (q *queue) nextEvent() int64 {
	var t int64
	if len(q.delayed) > 0 {
		t = q.delayed[0].at
	}
	if len(q.leaseQ) > 0 && (t == 0 || q.leaseQ[0].deadline < t) {
		t = q.leaseQ[0].deadline
	}
	if len(q.expiry) > 0 && (t == 0 || q.expiry[0].expire < t) {
		t = q.expiry[0].expire
	}
	return t
}
