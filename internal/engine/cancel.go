package engine

import (
	"errors"
	"fmt"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/text"
)

// Cancel: an operator removes ready or delayed messages from a queue. They
// leave as an ack would (their storage reference is released, their
// ordering key passes to the next message) but are counted as cancelled
// and remembered so in the settled log. In-flight messages are not taken
// from their consumer: the cancel is refused for them.
//
// Finding the message is O(log n) (lookup.go); taking it out of a ready
// fifo marks it gone in place, as an expiry does (O(log n)); one in a
// retry heap, a key's waiting line or the delayed heap is found there by
// a scan of that one structure (a heap cannot be searched by sequence),
// as salvage does.

// errNotCancellable: a cancel record names a message that is not ready
// or delayed.
var errNotCancellable = errors.New("not ready or delayed")

// Cancel cancels the ready and delayed messages among seqs of queue. It
// returns the record to journal (nil when none could be cancelled) and,
// for each seq, its state before: those ready or delayed were cancelled
// (a sequence named twice is cancelled once; the second is reported
// cancelled).
func (e *Engine) Cancel(now int64, queue string, seqs []uint64) (*Record, []chute.MessageState, error) {
	e.advance(now)
	q := e.queues[queue]
	if q == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(queue))
	}
	states := make([]chute.MessageState, len(seqs))
	var take []uint64
	for i, s := range seqs {
		st := q.state(s)
		switch {
		case (st == chute.MessageReady || st == chute.MessageDelayed) && !contains(take, s):
			take = append(take, s)
		case st == chute.MessageReady || st == chute.MessageDelayed:
			st = chute.MessageCancelled
		case st == chute.MessageUnknown:
			st = e.settledState(q, s)
		}
		states[i] = st
	}
	if len(take) == 0 {
		return nil, states, nil
	}
	r := &Record{Type: RecCancel, Time: e.now, Name: queue, Seqs: take}
	return r, states, e.applyCancel(r)
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (e *Engine) applyCancel(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	for _, s := range r.Seqs {
		en, k, ok := e.takeQueued(q, s)
		if !ok {
			return fmt.Errorf("message %d: %w", s, errNotCancellable)
		}
		q.total.Cancelled++
		e.leave(q, &en, k)
		e.settle(q, s, stCancelled, 0, nil, 0, r.Time)
	}
	return nil
}

// takeQueued takes ready or delayed message seq out of q, keeping every
// count right, and returns it with its key (still held: leave releases
// it); ok is false when q holds no such ready or delayed message.
func (e *Engine) takeQueued(q *queue, seq uint64) (en entry, k *keyState, ok bool) {
	at, ok := q.findQueued(seq)
	if !ok {
		return entry{}, nil, false
	}
	en, k = e.takeQueuedAt(q, at)
	return en, k, true
}

// queuedAt is where findQueued found a ready or delayed message.
type queuedAt struct {
	en      *entry    // the entry, in place
	waitKey *keyState // the key whose waiting line holds it, if any
	delayed int       // its index in the delayed heap, or -1
}

// findQueued finds ready or delayed message seq of q without taking it;
// ok is false when q holds no such message.
func (q *queue) findQueued(seq uint64) (at queuedAt, ok bool) {
	at.delayed = -1
	if q.leases[seq] != nil {
		return at, false
	}
	a, aside := q.aside[seq]
	switch {
	case !aside:
		at.en = q.findReady(seq)
	case a.where == asideDelayed:
		for i := range q.delayed {
			if q.delayed[i].e.seq == seq {
				at.en, at.delayed = &q.delayed[i].e, i
				break
			}
		}
	case a.where == asideRetry:
		h := q.retry[a.prio]
		for i := range h {
			if p := &h[i]; p.seq == seq && !isGone(q, p) {
				at.en = p
				break
			}
		}
	case a.where == asideWaiting && a.key != nil:
		a.key.waiting.each(func(w *entry) bool {
			if w.seq == seq && !isGone(q, w) {
				at.en = w
			}
			return at.en == nil
		})
		at.waitKey = a.key
	}
	return at, at.en != nil
}

// takeQueuedAt takes the message findQueued found out of q (see
// takeQueued). Nothing may change q in between.
func (e *Engine) takeQueuedAt(q *queue, at queuedAt) (entry, *keyState) {
	if at.delayed >= 0 {
		return e.takeDelayedAt(q, at.delayed)
	}
	return e.takeFound(q, at.en, at.waitKey)
}
