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

// CancelRefs cancels the ready and delayed messages of queue named by
// refs (by sequence, or by ID while the queue remembers it), in one
// record (nil when none could be cancelled), and reports each ref's
// outcome as chute does (a cancelled one in state MessageCancelled; the
// others with their state and chute.CancelError).
func (e *Engine) CancelRefs(now int64, queue string, refs []chute.MessageRef) (*Record, []chute.CancelResult, error) {
	out := make([]chute.CancelResult, len(refs))
	seqs, at, err := SeqsOf(queue, refs, e.SeqOfID, func(i int, seq uint64) {
		out[i] = chute.CancelResult{Ref: refs[i], Seq: seq}
	})
	if err != nil {
		return nil, nil, err
	}
	rec, states, err := e.Cancel(now, queue, seqs)
	if err != nil {
		return nil, nil, err
	}
	for j, st := range states {
		out[at[j]].State = st
	}
	for i := range out {
		r := &out[i]
		switch r.State {
		case chute.MessageReady, chute.MessageDelayed:
			r.Cancelled, r.State = true, chute.MessageCancelled
		default:
			r.Err = chute.CancelError(r.State)
		}
	}
	return rec, out, nil
}

// RedriveRefs moves the dead letters of dead-letter queue name named by
// refs back to their source queues (RedriveSeqs; a dead letter named by
// ID is found through its source queue's memory of the ID), and reports
// each ref's outcome as chute does.
func (e *Engine) RedriveRefs(now int64, name string, refs []chute.MessageRef) (*Record, []chute.RedriveResult, error) {
	out := make([]chute.RedriveResult, len(refs))
	seqs, at, err := SeqsOf(name, refs, e.DeadLetterSeqOfID, func(i int, seq uint64) {
		out[i] = chute.RedriveResult{Ref: refs[i], Seq: seq, Err: chute.ErrMessageNotFound}
	})
	if err != nil {
		return nil, nil, err
	}
	rec, outcomes, err := e.RedriveSeqs(now, name, seqs)
	if err != nil {
		return nil, nil, err
	}
	for j, o := range outcomes {
		r := &out[at[j]]
		r.Moved, r.Queue, r.NewSeq, r.State, r.Err = o.Moved, o.Source, o.NewSeq, o.State, o.Err
		if o.Moved {
			r.State = chute.MessageRedriven
		}
	}
	return rec, out, nil
}

// SeqsOf resolves refs to sequences of queue, IDs through byID: ref i
// with sequence seq (0 when its ID is not remembered) is reported to
// set, and those with a sequence are returned with their index in refs.
func SeqsOf(queue string, refs []chute.MessageRef, byID func(queue, id string) (uint64, error),
	set func(i int, seq uint64)) (seqs []uint64, at []int, err error) {
	for i, r := range refs {
		seq := r.Seq
		if r.ID != "" {
			if seq, err = byID(queue, r.ID); err != nil && !errors.Is(err, chute.ErrMessageNotFound) {
				return nil, nil, err
			}
		}
		set(i, seq)
		if seq != 0 {
			seqs = append(seqs, seq)
			at = append(at, i)
		}
	}
	return seqs, at, nil
}

// LookupRef is Lookup of the message ref names (by ID while the queue
// remembers it), with its ID as given.
func (e *Engine) LookupRef(queue string, ref chute.MessageRef) (chute.MessageInfo, error) {
	seq := ref.Seq
	if ref.ID != "" {
		var err error
		if seq, err = e.SeqOfID(queue, ref.ID); err != nil {
			return chute.MessageInfo{}, err
		}
	}
	info, err := e.Lookup(queue, seq)
	info.ID = ref.ID
	return info, err
}
