package engine

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// Looking up one message by sequence, without taking a delivery.
//
// Where a queued message can be (see queue):
//
//	leased   q.leases, a map by sequence: O(1);
//	ready    ready[p], a fifo in sequence order (a message enters it only
//	         when it is newer than everything there): binary search, for
//	         each priority with messages, O(10 log n);
//	aside    everything else is out of publish order — retry[p] (a heap),
//	         a key's waiting line, the delayed heap — and none of those can
//	         be searched by sequence. q.aside indexes exactly these
//	         messages: seq → what a lookup reports (asideElem, 32 bytes;
//	         about 62 bytes a message in the map, TestAsideMemory). The
//	         common message,
//	         published and received in order, costs nothing; a delayed,
//	         retried or key-waiting one costs one map entry while it is
//	         there.
//
// The index is derived state: it is not in the snapshot, and Restore
// rebuilds it through the same insertions (a restored queue has every
// ready message in its fifos, so it holds fewer entries than the queue it
// was taken from; lookups answer the same).
//
// After a message leaves, the settled log (settled.go) tells how, for
// the queue's SettledWindow.

// Where an aside message is.
const (
	asideRetry   uint8 = iota + 1 // retry[prio]
	asideWaiting                  // key.waiting
	asideDelayed                  // the delayed heap
)

// asideElem is what the aside index keeps of a message: what a lookup
// reports and where to find the message for a cancel. It is not kept up to
// date with storage moves (relocate.go), so it holds no blob reference.
type asideElem struct {
	due   int64     // delayed: when it comes due
	pub   int64     // publish time
	key   *keyState // its ordering key, when waiting or delayed (nil: none)
	deliv uint16
	prio  uint8
	flags uint8
	where uint8
}

// putAside indexes en as being at where.
func (q *queue) putAside(en *entry, where uint8, due int64, k *keyState) {
	if q.aside == nil {
		q.aside = make(map[uint64]asideElem)
	}
	q.aside[en.seq] = asideElem{due: due, pub: en.pub, key: k, deliv: en.deliv, prio: en.prio, flags: en.flags, where: where}
}

// dropAside forgets seq's aside entry, if it has one.
func (q *queue) dropAside(seq uint64) {
	if q.aside == nil {
		return
	}
	delete(q.aside, seq)
	if len(q.aside) == 0 {
		q.aside = nil
	}
}

// findReady returns the ready[p] fifo entry with sequence seq that is
// still there (not expired or taken), or nil.
func (q *queue) findReady(seq uint64) *entry {
	for m := q.mask; m != 0; m &= m - 1 {
		f := &q.ready[bits.TrailingZeros16(m)]
		lo, hi := 0, f.len()
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if f.at(mid).seq < seq {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < f.len() {
			if en := f.at(lo); en.seq == seq && !isGone(q, en) {
				return en
			}
		}
	}
	return nil
}

// SeqOfID returns the sequence of the message published to queue with
// message ID id, while the ID is remembered (the queue's de-dup window;
// for a topic's subscription, the topic's). O(1).
func (e *Engine) SeqOfID(queue, id string) (uint64, error) {
	q := e.queues[queue]
	if q == nil {
		return 0, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(queue))
	}
	dd, window := &q.dedup, int64(q.cfg.DedupWindow)
	if q.sub != nil {
		dd, window = &q.sub.topic.dedup, int64(q.sub.topic.cfg.DedupWindow)
	}
	seq, ok := dd.lookup(id, e.now, window)
	if !ok {
		return 0, fmt.Errorf("%w: id %s in %s (not remembered)", chute.ErrMessageNotFound, text.Quote(id), text.Quote(queue))
	}
	return seq, nil
}

// Lookup tells where message seq of queue is, or how it left. It changes
// nothing. A message the queue does not know (or no longer remembers) is
// chute.ErrMessageNotFound. O(log n).
func (e *Engine) Lookup(queue string, seq uint64) (chute.MessageInfo, error) {
	q := e.queues[queue]
	if q == nil {
		return chute.MessageInfo{}, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(queue))
	}
	info := chute.MessageInfo{Queue: queue, Seq: seq}
	if q.lookupQueued(seq, &info) {
		return info, nil
	}
	if e.lookupSettled(q, seq, &info) {
		return info, nil
	}
	return chute.MessageInfo{}, fmt.Errorf("%w: seq %d in %s", chute.ErrMessageNotFound, seq, text.Quote(queue))
}

// state is the state of a queued message: ready, delayed, in flight, or
// unknown when the queue does not hold it.
func (q *queue) state(seq uint64) chute.MessageState {
	if q.leases[seq] != nil {
		return chute.MessageInFlight
	}
	if a, ok := q.aside[seq]; ok {
		if a.where == asideDelayed {
			return chute.MessageDelayed
		}
		return chute.MessageReady
	}
	if q.findReady(seq) != nil {
		return chute.MessageReady
	}
	return chute.MessageUnknown
}

// lookupQueued fills info for a message the queue holds.
func (q *queue) lookupQueued(seq uint64, info *chute.MessageInfo) bool {
	var en entry
	var k *keyState
	if l := q.leases[seq]; l != nil {
		en, k = l.e, l.key
		info.State = chute.MessageInFlight
		info.LeaseDeadline = time.Unix(0, l.deadline)
		info.Holder = l.holder
	} else if a, ok := q.aside[seq]; ok {
		en = entry{seq: seq, pub: a.pub, deliv: a.deliv, prio: a.prio, flags: a.flags}
		k = a.key
		info.State = chute.MessageReady
		switch a.where {
		case asideDelayed:
			info.State = chute.MessageDelayed
			info.DeliverAt = time.Unix(0, a.due)
		case asideWaiting:
			info.KeyWaiting = true
		case asideRetry:
			k = q.activeKey[seq]
		}
	} else if p := q.findReady(seq); p != nil {
		en = *p
		info.State = chute.MessageReady
		k = q.activeKey[seq]
	} else {
		return false
	}
	if k == nil && en.flags&fTTL != 0 && q.expIx != nil {
		if i, ok := q.expIx[seq]; ok {
			k = q.expiry[i].key
		}
	}
	info.Key = keyName(k)
	info.Priority = en.prio
	info.Published = time.Unix(0, en.pub)
	info.Deliveries = int(q.counted(&en))
	if en.flags&fErr != 0 {
		info.LastError = q.lastErr[seq]
	}
	if d := q.dead[seq]; en.flags&fDead != 0 && d != nil {
		info.DeadLetter = &chute.DeadLetterInfo{Source: d.Source, Reason: d.Reason.String(), Deliveries: d.Deliveries,
			LastError: d.LastError, Died: time.Unix(0, d.At), SourceSeq: d.OrigSeq}
	}
	return true
}
