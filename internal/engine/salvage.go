package engine

import (
	"encoding/binary"
	"fmt"
)

// Salvage: messages whose stored body was found damaged.
//
// The journal keeps a message's body (its blob) where it was first
// written, and the engine only its location. When the bytes there are
// damaged (the blob fails its checksum), the message cannot be delivered
// as it was published, and leaving it queued would block its queue (or its
// ordering key) on an error forever. The broker, when told to salvage,
// writes a damaged record naming such messages; applying it takes each one
// out of wherever it is in its queue (ready, waiting for its key, delayed
// or leased) and dead-letters it with reason "damaged", pointing the dead
// letter at a replacement blob carried in the record itself: no body, and
// headers saying where the damage was. A queue without a dead-letter queue
// discards it (counted as discarded), as it does any dead letter.
//
// It is a record, like every change of what consumers get, so a replay, a
// checkpoint or a replica reaches the same state.

// ReasonDamaged: the message's stored body was found damaged (its blob
// failed its checksum); the dead letter carries a replacement blob.
const ReasonDamaged Reason = 4

// DamagedMsg names one queued message whose blob is damaged.
type DamagedMsg struct {
	Queue string
	Seq   uint64
	Ref   uint64 // where its (damaged) blob is
}

// Referring returns every queued message whose blob is at one of refs (a
// blob fanned out to several subscriptions is referred to by each), in
// queue then sequence order. It is O(n) in queued messages: salvage and
// repair only.
func (e *Engine) Referring(refs map[uint64]bool) []DamagedMsg {
	var out []DamagedMsg
	e.eachEntry(func(q *queue, en *entry, copyOnly bool) bool {
		if !copyOnly && refs[en.ref] {
			out = append(out, DamagedMsg{Queue: q.name, Seq: en.seq, Ref: en.ref})
		}
		return true
	})
	sortDamaged(out)
	return out
}

func sortDamaged(ms []DamagedMsg) {
	for i := 1; i < len(ms); i++ { // insertion sort: the lists are short
		for j := i; j > 0 && (ms[j].Queue < ms[j-1].Queue || ms[j].Queue == ms[j-1].Queue && ms[j].Seq < ms[j-1].Seq); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// Damaged builds the record that dead-letters messages seqs of queue with
// reason "damaged", each pointing at the matching replacement blob (see
// AppendBlob). The caller encodes it, appends it, and calls Apply with its
// location, as for a publish; nothing changes before that.
func (e *Engine) Damaged(now int64, queue string, seqs []uint64, blobs [][]byte) (*Record, error) {
	e.advance(now)
	q := e.queues[queue]
	if q == nil {
		return nil, fmt.Errorf("%w: %q", ErrQueueNotFound, queue)
	}
	if len(seqs) != len(blobs) || len(seqs) == 0 {
		return nil, fmt.Errorf("damaged: %d sequences, %d blobs", len(seqs), len(blobs))
	}
	r := &Record{Type: RecDamaged, Time: e.now, Name: queue, Seqs: seqs, Msgs: make([]PubMsg, len(blobs))}
	for i, b := range blobs {
		r.Msgs[i].Blob = b
	}
	return r, nil
}

// appendDamaged encodes the fields of a damaged record: name, count, then
// (seq, blob length, blob) for each message. BlobOff is set relative to
// start, the record's first byte.
func (r *Record) appendDamaged(buf []byte, start int) []byte {
	buf = appendString(buf, r.Name)
	buf = binary.AppendUvarint(buf, uint64(len(r.Seqs)))
	for i, s := range r.Seqs {
		buf = binary.AppendUvarint(buf, s)
		m := &r.Msgs[i]
		buf = binary.AppendUvarint(buf, uint64(len(m.Blob)))
		m.BlobOff = uint32(len(buf) - start)
		buf = append(buf, m.Blob...)
	}
	return buf
}

func (d *decoder) damaged(r *Record) {
	r.Name = d.string()
	n := d.count(2)
	r.Seqs = make([]uint64, n)
	r.Msgs = make([]PubMsg, n)
	for i := range n {
		r.Seqs[i] = d.uvarint()
		blen := d.count(1)
		r.Msgs[i].BlobOff = uint32(d.off)
		r.Msgs[i].Blob = d.bytes(blen)
	}
}

func (e *Engine) applyDamaged(r *Record, base uint64) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	if len(r.Msgs) != len(r.Seqs) {
		return fmt.Errorf("%d sequences, %d blobs", len(r.Seqs), len(r.Msgs))
	}
	for i, seq := range r.Seqs {
		en, k, ok := e.takeAnywhere(q, seq)
		if !ok {
			return fmt.Errorf("message %d is not in the queue", seq)
		}
		stub, size := base+uint64(r.Msgs[i].BlobOff), uint32(len(r.Msgs[i].Blob))
		e.unref(en.ref, en.size)
		e.ref(stub, size)
		en.ref, en.size = stub, size
		e.dispose(q, en, k, true, ReasonDamaged, r.Time)
	}
	return nil
}

// takeAnywhere takes message seq out of q, wherever it is, keeping every
// count right, and returns it with its key (still held: dispose releases
// it). It is O(n) in the queue's messages.
func (e *Engine) takeAnywhere(q *queue, seq uint64) (entry, *keyState, bool) {
	if l := q.leases[seq]; l != nil {
		e.endLease(q, l)
		return l.e, l.key, true
	}
	if en, k, ok := e.takeDelayed(q, seq); ok {
		return en, k, true
	}
	// Ready: in the ready set proper or in a key's waiting line. The entry
	// stays where it is, marked gone, as an expired one does (expireReady),
	// and is skipped when it reaches a front.
	var found *entry
	var waitKey *keyState
	for p := range q.ready {
		q.ready[p].each(func(en *entry) bool {
			if en.seq == seq && !isGone(q, en) {
				found = en
			}
			return found == nil
		})
		for i := range q.retry[p] {
			if en := &q.retry[p][i]; found == nil && en.seq == seq && !isGone(q, en) {
				found = en
			}
		}
		if found != nil {
			break
		}
	}
	if found == nil {
		for _, k := range q.keys {
			k.waiting.each(func(en *entry) bool {
				if en.seq == seq && !isGone(q, en) {
					found, waitKey = en, k
				}
				return found == nil
			})
			if found != nil {
				break
			}
		}
	}
	if found == nil {
		return entry{}, nil, false
	}
	en, k := e.takeFound(q, found, waitKey)
	return en, k, true
}

// takeFound takes the ready entry found (in ready[p], retry[p], or the
// waiting line of waitKey) out of q: it stays where it is, marked gone,
// and is skipped when it reaches a front. It returns the entry and its key.
func (e *Engine) takeFound(q *queue, found *entry, waitKey *keyState) (entry, *keyState) {
	en, seq := *found, found.seq
	k := waitKey
	if en.flags&fTTL != 0 {
		x := q.expiry.remove(q.expIx, q.expIx[en.seq])
		if k == nil {
			k = x.key
		}
		e.reschedule(q)
	}
	found.flags |= fTTL // so that isGone recognises the stale copy
	en.flags &^= fTTL
	if q.gone == nil {
		q.gone = make(map[uint64]struct{})
	}
	q.gone[seq] = struct{}{}
	q.n.ready--
	q.n.readyBytes -= int64(en.size)
	if waitKey == nil {
		q.n.inSet--
		q.n.inSetBytes -= int64(en.size)
		if ak := q.activeKey[seq]; ak != nil {
			k = ak
			delete(q.activeKey, seq)
		}
		q.cleanFront(en.prio)
	}
	return en, k
}

// removeAt removes element i of the heap.
func (h *delayHeap) removeAt(i int) {
	s := *h
	last := len(s) - 1
	if i != last {
		s.swap(i, last)
	}
	s[last] = delayElem{}
	s = s[:last]
	if i < len(s) {
		heapFix(s, i)
	}
	*h = s
}

// SkipTo moves the next sequence up to seq. Offline repair calls it when a
// publish record that could not be read had taken the sequences before
// seq, so that the publishes after it apply; those messages are lost, and
// repair reports them. A live broker never calls it.
func (e *Engine) SkipTo(seq uint64) {
	if seq > e.nextSeq {
		e.nextSeq = seq
	}
}

// takeDelayed takes message seq out of q's delayed set, if it is there
// (a scan of the set: salvage and cancel are rare).
func (e *Engine) takeDelayed(q *queue, seq uint64) (entry, *keyState, bool) {
	for i := range q.delayed {
		if q.delayed[i].e.seq == seq {
			en, k := e.takeDelayedAt(q, i)
			return en, k, true
		}
	}
	return entry{}, nil, false
}

// takeDelayedAt takes element i of q's delayed set out of q.
func (e *Engine) takeDelayedAt(q *queue, i int) (entry, *keyState) {
	d := q.delayed[i]
	q.delayed.removeAt(i)
	q.n.delayed--
	q.n.delayedBytes -= int64(d.e.size)
	e.reschedule(q)
	return d.e, d.key
}
