package engine

import (
	"fmt"
	"slices"
)

// Engine holds every queue and topic. It is a deterministic state machine:
// it changes only by applying records, and time enters only as the record's
// time or as the argument of Advance. It has no goroutines, files, locks or
// clock; its caller (the broker) serialises every call.
//
// Commands (CreateQueue, Receive, Ack, …) validate against the current
// state, build the record that describes the change, apply it, and return
// it for the caller to journal. Publish is split in two (PreparePublish,
// then Apply) because the location of the stored blobs is only known once
// the record has been appended to the journal. Replay calls Apply with the
// journaled records, in order, and reaches the same state.
//
// Timers (delays coming due, leases expiring, messages expiring) fire inside
// Advance, in the order of their due time, and every effect uses the due
// time rather than the time of the call, so advancing to t in one step or
// many gives the same state. Apply advances to the record's time first.
type Engine struct {
	now     int64  // latest time seen; time never goes backwards
	nextSeq uint64 // next message sequence (starts at 1; 0 means none)
	nextQID uint32 // next queue id (starts at 1)
	queues  map[string]*queue
	byID    map[uint32]*queue
	topics  map[string]*topic
	timers  timerHeap        // queues by their earliest timer
	live    map[uint32]Usage // storage unit → the entries referring to a blob in it
	entries int64            // queued messages in all queues (fan-out copies counted)
	// liveBytes is the blob bytes they refer to (live's Bytes summed).
	liveBytes int64
	wake      []*queue // queues that gained deliverable messages

	txs    txMemo            // committed transaction IDs and their results (tx.go)
	scheds map[string]*sched // periodic schedules by name (schedule.go)

	lat Latency // every queue's latencies together: statistics, not state (latency.go)
}

// New returns an empty engine.
func New() *Engine {
	return &Engine{
		nextSeq: 1,
		nextQID: 1,
		queues:  make(map[string]*queue),
		byID:    make(map[uint32]*queue),
		topics:  make(map[string]*topic),
		live:    make(map[uint32]Usage),
	}
}

// Now is the latest time the engine has seen (unix ns).
func (e *Engine) Now() int64 { return e.now }

// NextSeq is the sequence the next published message will get.
func (e *Engine) NextSeq() uint64 { return e.nextSeq }

// Apply applies a journaled record; base is the storage location of the
// record's first byte (only publish records use it, to locate blobs).
// An error means the record does not fit the state: a damaged journal.
func (e *Engine) Apply(r *Record, base uint64) error {
	e.advance(r.Time)
	r.Time = e.now
	var err error
	switch r.Type {
	case RecCreateQueue:
		err = e.applyCreateQueue(r)
	case RecUpdateQueue:
		err = e.applyUpdateQueue(r)
	case RecDeleteQueue:
		err = e.applyDeleteQueue(r)
	case RecPurgeQueue:
		_, err = e.applyPurge(r)
	case RecCreateTopic:
		err = e.applyCreateTopic(r)
	case RecTopicConfig:
		err = e.applyTopicConfig(r)
	case RecDeleteTopic:
		err = e.applyDeleteTopic(r)
	case RecSubscribe:
		err = e.applySubscribe(r)
	case RecUnsubscribe:
		err = e.applyUnsubscribe(r)
	case RecPublish:
		err = e.applyPublish(r, base)
	case RecDeliver:
		err = e.applyDeliver(r)
	case RecAck, RecNack, RecExtend, RecReturn:
		err = e.applyItems(r)
	case RecRedrive:
		_, err = e.applyRedrive(r)
	case RecPause:
		err = e.applyPause(r)
	case RecBreaker:
		err = e.applyBreaker(r)
	case RecReleaseLeases:
		e.applyReleaseLeases(r.Time)
	case RecReturnLeases:
		e.applyReturnLeases(r.Time)
	case RecDamaged:
		err = e.applyDamaged(r, base)
	case RecCarry:
		err = e.applyCarry(r, base)
	case RecCancel:
		err = e.applyCancel(r)
	case RecRedriveSeqs:
		err = e.applyRedriveSeqs(r)
	case RecTx:
		err = e.applyTx(r, base)
	case RecSchedule:
		err = e.applySchedule(r)
	case RecScheduleDel:
		err = e.applyScheduleDel(r)
	case RecSchedulePause:
		err = e.applySchedulePause(r)
	case RecBlobs:
		// Blobs are only stored: a checkpoint (Relocate) points entries at
		// them, so replaying them changes nothing.
	default:
		err = fmt.Errorf("unknown record type %v", r.Type)
	}
	if err != nil {
		return fmt.Errorf("%w: %v %q: %w", ErrCorruptRecord, r.Type, r.Name, err)
	}
	return nil
}

// Advance fires every timer due at or before now.
func (e *Engine) Advance(now int64) { e.advance(now) }

// NextEvent is the time of the earliest pending timer, or 0 when none.
func (e *Engine) NextEvent() int64 {
	if len(e.timers) == 0 {
		return 0
	}
	return e.timers[0].at
}

// DrainWakeups calls fn with the name of every queue that gained
// deliverable messages since the last call.
func (e *Engine) DrainWakeups(fn func(queue string)) {
	for _, q := range e.wake {
		q.wake = false
		if e.queues[q.name] == q {
			fn(q.name)
		}
	}
	clear(e.wake)
	e.wake = e.wake[:0]
}

// Usage is how much of a storage unit queued messages still refer to.
type Usage struct {
	Messages int64 // entries (a message fanned out to n subscriptions counts n)
	Bytes    int64 // their blob bytes
}

// Live reports what queued messages refer to in storage unit u; a unit
// with none holds no blob the engine needs.
func (e *Engine) Live(u uint32) Usage { return e.live[u] }

// LiveBytes is the blob bytes queued messages refer to, over every
// storage unit (Usage.Bytes summed: a message fanned out to n
// subscriptions counts n times).
func (e *Engine) LiveBytes() int64 { return e.liveBytes }

// LiveUnitCount is how many storage units hold blobs still referred to.
func (e *Engine) LiveUnitCount() int { return len(e.live) }

// QueuedMessages is the messages held by every queue: ready, delayed and
// in flight (what a snapshot writes an index entry for).
func (e *Engine) QueuedMessages() int64 {
	var n int64
	for _, q := range e.queues {
		n += q.n.depth()
	}
	return n
}

// LiveUnits returns the storage units that hold blobs still referred to.
func (e *Engine) LiveUnits() []uint32 {
	us := make([]uint32, 0, len(e.live))
	for u := range e.live {
		us = append(us, u)
	}
	slices.Sort(us)
	return us
}

func unitOf(ref uint64) uint32 { return uint32(ref >> 32) }

// Entries is the number of queued messages in all queues (a message fanned
// out to n subscriptions counts n): what the engine's memory grows with.
func (e *Engine) Entries() int64 { return e.entries }

func (e *Engine) ref(r uint64, size uint32) {
	e.entries++
	e.liveBytes += int64(size)
	u := e.live[unitOf(r)]
	u.Messages++
	u.Bytes += int64(size)
	e.live[unitOf(r)] = u
}

func (e *Engine) unref(r uint64, size uint32) {
	e.entries--
	e.liveBytes -= int64(size)
	u := e.live[unitOf(r)]
	u.Messages--
	u.Bytes -= int64(size)
	if u.Messages > 0 {
		e.live[unitOf(r)] = u
	} else {
		delete(e.live, unitOf(r))
	}
}

func (e *Engine) markWake(q *queue) {
	if !q.wake {
		q.wake = true
		e.wake = append(e.wake, q)
	}
}

// advance moves the clock to now (never backwards) and fires due timers,
// queue by queue in order of (earliest timer, queue id).
func (e *Engine) advance(now int64) {
	if now > e.now {
		e.now = now
	}
	for len(e.timers) > 0 && e.timers[0].at <= e.now {
		q := e.timers[0].q
		e.runTimers(q, e.now)
		e.reschedule(q)
	}
}

// runTimers fires q's timers due by now in the order of their due times
// (ties: delay, then lease, then expiry; then sequence).
func (e *Engine) runTimers(q *queue, now int64) {
	for {
		const none = int64(1<<63 - 1)
		td, tl, tx := none, none, none
		if len(q.delayed) > 0 {
			td = q.delayed[0].at
		}
		if len(q.leaseQ) > 0 {
			tl = q.leaseQ[0].deadline
		}
		if len(q.expiry) > 0 {
			tx = q.expiry[0].expire
		}
		switch t := min(td, tl, tx); {
		case t > now:
			return
		case t == td:
			e.delayDue(q, q.delayed.pop())
		case t == tl:
			l := q.leaseQ[0]
			e.endLease(q, l)
			q.total.LeaseExpired++
			e.retry(q, l, 0, l.deadline)
		default:
			e.expireReady(q)
		}
	}
}

// reschedule puts q at the right place in the timer heap after its timers
// changed.
func (e *Engine) reschedule(q *queue) {
	t := q.nextEvent()
	switch {
	case t == 0 && q.timerIdx >= 0:
		e.timers.remove(q.timerIdx)
	case t == 0:
	case q.timerIdx < 0:
		e.timers.push(timerElem{at: t, q: q})
	case e.timers[q.timerIdx].at != t:
		e.timers[q.timerIdx].at = t
		e.timers.fix(q.timerIdx)
	}
}

type timerElem struct {
	at int64
	q  *queue
}

// timerHeap orders queues by (earliest timer, queue id).
type timerHeap []timerElem

func (h timerHeap) len() int { return len(h) }

func (h timerHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].q.id < h[j].q.id
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].q.timerIdx = i
	h[j].q.timerIdx = j
}

func (h *timerHeap) push(x timerElem) {
	x.q.timerIdx = len(*h)
	*h = append(*h, x)
	heapUp(*h, len(*h)-1)
}

func (h *timerHeap) remove(i int) {
	s := *h
	last := len(s) - 1
	if i != last {
		s.swap(i, last)
	}
	s[last].q.timerIdx = -1
	s[last] = timerElem{}
	s = s[:last]
	if i != last {
		heapFix(s, i)
	}
	*h = s
}

func (h timerHeap) fix(i int) { heapFix(h, i) }
