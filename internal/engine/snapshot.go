package engine

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// A snapshot is the engine's whole logical state, written at a journal
// position by a checkpoint so that recovery replays only the records after
// it. It holds what a replay would rebuild — every queue with its config,
// totals, de-dup window and messages (ready in delivery order, waiting per
// ordering key, delayed, leased, with expiry, delivery count, last error
// and dead-letter cause), every topic with its subscriptions — and not how
// it happens to be laid out in memory. Restore rebuilds the indexes.
//
//	snapshot := version now nextSeq nextQID nqueues queue* ntopics topic* txs schedules
//	queue    := id name config totals dedup lastErrs deadInfos returned keys ready delayed leases control settled
//	control  := flags(1 byte: bit 0 paused) breaker(1 byte)   (version 4; pause.go)
//	settled  := n (seq at state reason movedQ movedSeq)*      (version 4; settled.go)
//	topic    := name config published unrouted forgotten dedup subscriptions
//	dedup    := nids (key seq at)* nsessions session*
//	session  := id hw last nbatches (first n seq ndups (pos seq)*)*
//	txs      := n (id at nresults (n (seq<<1|dup)*)*)*   (version 4; tx.go)
//	schedules:= n (name created paused last fired def)*   (version 4; schedule.go)
//	entry    := seq ref pub size deliv prio flags
//
// Versions (Restore reads 2 to 5):
//
//	2  de-dup IDs as 32-byte keys
//	3  configs as in record version 3 (MaxDedupIDs, SessionWindow); the
//	   totals Returned and DedupForgotten (a topic: forgotten); producer
//	   sessions after the de-dup IDs; the counts of uncounted returns
//	   after the dead-letter causes
//	4  configs as in record version 4 (Group, Breaker, Attributes,
//	   SettledWindow, MaxSettled; a topic's config ends with its Group); after the topics, the
//	   remembered transactions: txs := n (id at results)* (tx.go); the
//	   totals Redelivered and DeadByReason (max-deliveries, expired,
//	   overflow, damaged) and Cancelled after DedupForgotten; each queue
//	   ends with its control state (paused, breaker state), then its
//	   settled log (how messages left, oldest first); after the
//	   transactions, the periodic schedules (schedule.go)
//	5  configs as in record version 6 (Compression, CompressMin); the
//	   rest unchanged. The bump makes a broker that cannot read
//	   compressed bodies refuse the checkpoint rather than fail later,
//	   at delivery
const snapshotVersion = 5

// snapshotConfigs is, per snapshot version, the record version its queue
// and topic configs are encoded in (until 4 they went in step).
var snapshotConfigs = [...]byte{2: 2, 3: 3, 4: 4, 5: 6}

// walkReady calls fn for every ready-set entry in delivery order (priority
// desc, sequence asc), skipping gone ones, until fn returns false.
func (q *queue) walkReady(fn func(en *entry) bool) {
	for p := MaxPriority; p >= 0; p-- {
		if !q.walkPriority(p, fn) {
			return
		}
	}
}

// walkPriority calls fn for priority p's ready-set entries in sequence
// order, skipping gone ones, until fn returns false (then it does too).
func (q *queue) walkPriority(p int, fn func(en *entry) bool) bool {
	f := &q.ready[p]
	hw := heapWalker{h: q.retry[p]}
	fi := 0
	for {
		var en *entry
		fe, he := (*entry)(nil), hw.peek()
		if fi < f.len() {
			fe = f.at(fi)
		}
		switch {
		case fe == nil && he == nil:
		case he == nil || (fe != nil && fe.seq < he.seq):
			en = fe
			fi++
		default:
			en = he
			hw.next()
		}
		if en == nil {
			return true
		}
		if isGone(q, en) {
			continue
		}
		if !fn(en) {
			return false
		}
	}
}

// isGone reports whether en is an expired entry left behind, without
// forgetting it (unlike queue.isGone).
func isGone(q *queue, en *entry) bool {
	if en.flags&fTTL == 0 || q.gone == nil {
		return false
	}
	_, ok := q.gone[en.seq]
	return ok
}

// Snapshot returns the engine's state encoded, in pieces of about
// chunkSize bytes (to be written one after the other): a large state is
// never one huge allocation, nor copied as it grows.
func (e *Engine) Snapshot(chunkSize int) [][]byte {
	w := &snapWriter{size: chunkSize}
	w.buf = make([]byte, 0, chunkSize+chunkSize/4)
	w.buf = append(w.buf, snapshotVersion)
	const v = snapshotVersion
	w.buf = binary.AppendVarint(w.buf, e.now)
	w.buf = binary.AppendUvarint(w.buf, e.nextSeq)
	w.buf = binary.AppendUvarint(w.buf, uint64(e.nextQID))
	ids := slices.Sorted(maps.Keys(e.byID))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(ids)))
	for _, id := range ids {
		e.byID[id].snapshot(w, v)
	}
	names := slices.Sorted(maps.Keys(e.topics))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(names)))
	for _, name := range names {
		t := e.topics[name]
		buf := w.buf
		buf = appendString(buf, t.name)
		buf = appendTopicConfig(buf, &t.cfg)
		buf = binary.AppendVarint(buf, t.total.Published)
		buf = binary.AppendVarint(buf, t.total.Unrouted)
		buf = binary.AppendVarint(buf, t.total.DedupForgotten)
		buf = t.dedup.snapshot(buf)
		buf = binary.AppendUvarint(buf, uint64(len(t.subs)))
		for _, s := range t.subs {
			buf = appendString(buf, s.name)
			buf = appendMap(buf, s.sub.filter)
		}
		w.buf = buf
		w.flush()
	}
	w.buf = e.txs.snapshot(w.buf)      // version 4
	w.buf = e.snapshotSchedules(w.buf) // version 4 (schedule.go)
	w.chunks = append(w.chunks, w.buf)
	return w.chunks
}

// snapWriter collects a snapshot in pieces.
type snapWriter struct {
	size   int
	buf    []byte
	chunks [][]byte
}

// flush starts a new piece once the current one is full.
func (w *snapWriter) flush() {
	if len(w.buf) >= w.size {
		w.chunks = append(w.chunks, w.buf)
		w.buf = make([]byte, 0, w.size+w.size/4)
	}
}

func (q *queue) snapshot(w *snapWriter, v byte) {
	buf := w.buf
	buf = binary.AppendUvarint(buf, uint64(q.id))
	buf = appendString(buf, q.name)
	buf = appendQueueConfig(buf, &q.cfg)
	for _, f := range totalFields(&q.total, v) {
		buf = binary.AppendVarint(buf, *f)
	}
	buf = q.dedup.snapshot(buf)

	buf = binary.AppendUvarint(buf, uint64(len(q.lastErr)))
	for _, s := range slices.Sorted(maps.Keys(q.lastErr)) {
		buf = binary.AppendUvarint(buf, s)
		buf = appendString(buf, q.lastErr[s])
	}
	buf = binary.AppendUvarint(buf, uint64(len(q.dead)))
	for _, s := range slices.Sorted(maps.Keys(q.dead)) {
		d := q.dead[s]
		buf = binary.AppendUvarint(buf, s)
		buf = appendString(buf, d.Source)
		buf = append(buf, byte(d.Reason))
		buf = binary.AppendVarint(buf, int64(d.Deliveries))
		buf = appendString(buf, d.LastError)
		buf = binary.AppendVarint(buf, d.At)
		buf = binary.AppendUvarint(buf, d.OrigSeq)
		buf = appendString(buf, d.Key)
	}
	buf = binary.AppendUvarint(buf, uint64(len(q.returned)))
	for _, s := range slices.Sorted(maps.Keys(q.returned)) {
		buf = binary.AppendUvarint(buf, s)
		buf = binary.AppendUvarint(buf, uint64(q.returned[s]))
	}
	w.buf = buf
	w.flush()
	// Keys: name, current sequence, and the waiting line in order.
	w.buf = binary.AppendUvarint(w.buf, uint64(len(q.keys)))
	for _, name := range slices.Sorted(maps.Keys(q.keys)) {
		k := q.keys[name]
		w.buf = appendString(w.buf, name)
		w.buf = binary.AppendUvarint(w.buf, k.current)
		var n int
		k.waiting.each(func(en *entry) bool {
			if !isGone(q, en) {
				n++
			}
			return true
		})
		w.buf = binary.AppendUvarint(w.buf, uint64(n))
		k.waiting.each(func(en *entry) bool {
			if !isGone(q, en) {
				w.buf = appendEntry(w.buf, en)
				w.buf = binary.AppendVarint(w.buf, q.expireOf(en))
				w.flush()
			}
			return true
		})
	}
	// The ready set in delivery order: restoring it fills the fifos.
	w.buf = binary.AppendUvarint(w.buf, uint64(q.n.inSet))
	q.walkReady(func(en *entry) bool {
		w.buf = appendEntry(w.buf, en)
		w.buf = binary.AppendVarint(w.buf, q.expireOf(en))
		w.buf = appendString(w.buf, keyName(q.activeKey[en.seq]))
		w.flush()
		return true
	})
	w.buf = binary.AppendUvarint(w.buf, uint64(len(q.delayed)))
	for i := range q.delayed {
		d := &q.delayed[i]
		w.buf = appendEntry(w.buf, &d.e)
		w.buf = binary.AppendVarint(w.buf, d.due)
		w.buf = binary.AppendVarint(w.buf, d.expire)
		w.buf = appendBool(w.buf, d.active)
		w.buf = appendString(w.buf, keyName(d.key))
		w.flush()
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(q.leaseQ)))
	for _, l := range q.leaseQ {
		w.buf = appendEntry(w.buf, &l.e)
		w.buf = binary.AppendVarint(w.buf, l.deadline)
		w.buf = binary.AppendVarint(w.buf, l.expire)
		w.buf = appendString(w.buf, keyName(l.key))
		w.flush()
	}
	if v >= 4 {
		w.buf = q.appendControl(w.buf) // pause.go
		w.buf = q.appendSettled(w.buf) // settled.go
	}
}

func keyName(k *keyState) string {
	if k == nil {
		return ""
	}
	return k.name
}

func appendBool(buf []byte, b bool) []byte {
	if b {
		return append(buf, 1)
	}
	return append(buf, 0)
}

// expireOf is a ready or waiting entry's expiry (0: none).
func (q *queue) expireOf(en *entry) int64 {
	if en.flags&fTTL == 0 {
		return 0
	}
	return q.expiry[q.expIx[en.seq]].expire
}

func appendEntry(buf []byte, en *entry) []byte {
	buf = binary.AppendUvarint(buf, en.seq)
	buf = binary.AppendUvarint(buf, en.ref)
	buf = binary.AppendVarint(buf, en.pub)
	buf = binary.AppendUvarint(buf, uint64(en.size))
	buf = binary.AppendUvarint(buf, uint64(en.deliv))
	return append(buf, en.prio, en.flags&^fTTL)
}

func (d *decoder) entry() entry {
	en := entry{seq: d.uvarint(), ref: d.uvarint(), pub: d.varint()}
	en.size = uint32(min(d.uvarint(), 1<<32-1))
	en.deliv = uint16(min(d.uvarint(), 1<<16-1))
	en.prio = d.byte()
	en.flags = d.byte() &^ fTTL
	if en.prio > MaxPriority {
		d.fail("priority %d", en.prio)
	}
	return en
}

// totalFields are a queue's totals in snapshot order, as snapshot version
// v has them.
func totalFields(t *Totals, v byte) []*int64 {
	f := []*int64{&t.Enqueued, &t.Delivered, &t.Acked, &t.Nacked, &t.LeaseExpired,
		&t.Expired, &t.DeadLettered, &t.DeadLetteredBytes, &t.Discarded, &t.Dropped, &t.Redriven}
	if v >= 3 {
		f = append(f, &t.Returned, &t.DedupForgotten)
	}
	if v >= 4 {
		r := &t.DeadByReason
		f = append(f, &t.Redelivered, &r.MaxDeliveries, &r.Expired, &r.Overflow, &r.Damaged, &t.Cancelled)
	}
	return f
}

func (d *dedup) snapshot(buf []byte) []byte {
	live := func(o *dedupOrder) bool {
		x, ok := d.seen[o.key]
		return ok && x.seq == o.seq
	}
	n := 0
	d.order.each(func(o *dedupOrder) bool {
		if live(o) {
			n++
		}
		return true
	})
	buf = binary.AppendUvarint(buf, uint64(n))
	d.order.each(func(o *dedupOrder) bool {
		if live(o) {
			buf = append(buf, o.key[:]...)
			buf = binary.AppendUvarint(buf, o.seq)
			buf = binary.AppendVarint(buf, o.at)
		}
		return true
	})
	return d.sess.snapshot(buf)
}

// snapshot writes the sessions least recently used first, each with its
// remembered batches oldest first.
func (ss *sessions) snapshot(buf []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(ss.len()))
	for s := ss.head; s != nil; s = s.next {
		buf = appendString(buf, s.id)
		buf = binary.AppendUvarint(buf, s.hw)
		buf = binary.AppendVarint(buf, s.last)
		var bs []*sessBatch
		for i := range SessionInFlight {
			if b := &s.batches[(int(s.nextB)+i)%SessionInFlight]; b.first != 0 {
				bs = append(bs, b)
			}
		}
		buf = binary.AppendUvarint(buf, uint64(len(bs)))
		for _, b := range bs {
			buf = binary.AppendUvarint(buf, b.first)
			buf = binary.AppendUvarint(buf, uint64(b.n))
			buf = binary.AppendUvarint(buf, b.seq)
			buf = binary.AppendUvarint(buf, uint64(len(b.dups)))
			for _, x := range b.dups {
				buf = binary.AppendUvarint(buf, uint64(x.Pos))
				buf = binary.AppendUvarint(buf, x.Seq)
			}
		}
	}
	return buf
}

func (d *decoder) dedup(dd *dedup) {
	n := d.count(34)
	for i := 0; i < n && d.err == nil; i++ {
		var k dedupKey
		copy(k[:], d.bytes(len(k)))
		seq, at := d.uvarint(), d.varint()
		dd.insert(k, seq, at)
	}
	if d.v < 3 {
		return
	}
	ns := d.count(4)
	for i := 0; i < ns && d.err == nil; i++ {
		id := d.string()
		if dd.sess.m[id] != nil {
			d.fail("session %q twice", id)
			return
		}
		s := &session{id: id, hw: d.uvarint(), last: d.varint()}
		nb := d.count(4)
		if nb > SessionInFlight {
			d.fail("session %q: %d batches", id, nb)
			return
		}
		for j := 0; j < nb && d.err == nil; j++ {
			b := sessBatch{first: d.uvarint(), n: uint32(min(d.uvarint(), 1<<32-1)), seq: d.uvarint()}
			if nd := d.count(2); nd > 0 {
				b.dups = make([]sessDup, nd)
				for k := range b.dups {
					b.dups[k] = sessDup{Pos: uint32(min(d.uvarint(), 1<<32-1)), Seq: d.uvarint()}
				}
			}
			hw := s.hw
			s.record(b)
			s.hw = hw
		}
		if dd.sess.m == nil {
			dd.sess.m = make(map[string]*session)
		}
		dd.sess.m[id] = s
		dd.sess.pushBack(s)
	}
}

// Restore rebuilds an engine from a snapshot (the pieces of Snapshot,
// joined).
func Restore(b []byte) (*Engine, error) {
	d := &decoder{b: b}
	v := d.byte()
	if v < 2 || v > snapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version %d (this broker reads 2..%d)", ErrCorruptRecord, v, snapshotVersion)
	}
	d.v = snapshotConfigs[v] // the decoder reads configs by record version
	e := New()
	e.now = d.varint()
	e.nextSeq = d.uvarint()
	e.nextQID = uint32(d.uvarint())
	nq := d.count(4)
	for i := 0; i < nq && d.err == nil; i++ {
		e.restoreQueue(d, v)
	}
	nt := d.count(4)
	for i := 0; i < nt && d.err == nil; i++ {
		t := &topic{name: d.string()}
		d.topicConfig(&t.cfg)
		t.total.Published = d.varint()
		t.total.Unrouted = d.varint()
		if v >= 3 {
			t.total.DedupForgotten = d.varint()
		}
		d.dedup(&t.dedup)
		ns := d.count(2)
		for j := 0; j < ns && d.err == nil; j++ {
			q := e.queues[d.string()]
			filter := d.stringMap()
			if q == nil {
				d.fail("subscription of topic %q is not a queue", t.name)
				break
			}
			q.sub = &subscription{topic: t, filter: filter}
			t.subs = append(t.subs, q)
		}
		e.topics[t.name] = t
	}
	if v >= 4 {
		d.txMemo(&e.txs)
		d.schedules(e) // schedule.go
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return e, nil
}

func (e *Engine) restoreQueue(d *decoder, v byte) {
	id := uint32(d.uvarint())
	name := d.string()
	var cfg QueueConfig
	d.queueConfig(&cfg)
	q := newQueue(id, name, cfg)
	for _, f := range totalFields(&q.total, v) {
		*f = d.varint()
	}
	d.dedup(&q.dedup)
	if n := d.count(2); n > 0 {
		q.lastErr = make(map[uint64]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			s := d.uvarint()
			q.lastErr[s] = d.string()
		}
	}
	if n := d.count(8); n > 0 {
		q.dead = make(map[uint64]*DeadInfo, n)
		for i := 0; i < n && d.err == nil; i++ {
			s := d.uvarint()
			q.dead[s] = &DeadInfo{Source: d.string(), Reason: Reason(d.byte()), Deliveries: int(d.varint()),
				LastError: d.string(), At: d.varint(), OrigSeq: d.uvarint(), Key: d.string()}
		}
	}
	if v >= 3 {
		if n := d.count(2); n > 0 {
			q.returned = make(map[uint64]uint16, n)
			for i := 0; i < n && d.err == nil; i++ {
				s := d.uvarint()
				q.returned[s] = uint16(min(d.uvarint(), 1<<16-1))
			}
		}
	}
	key := func(name string) *keyState {
		if name == "" {
			return nil
		}
		k := q.key(name)
		k.n++
		return k
	}
	track := func(en *entry, expire int64, k *keyState) {
		e.ref(en.ref, en.size)
		q.n.ready++
		q.n.readyBytes += int64(en.size)
		if expire != 0 {
			en.flags |= fTTL
			if q.expIx == nil {
				q.expIx = make(expiryIndex)
			}
			q.expiry.push(q.expIx, expiryElem{expire: expire, e: *en, key: k})
		}
	}
	nk := d.count(3)
	for i := 0; i < nk && d.err == nil; i++ {
		k := q.key(d.string())
		k.current = d.uvarint()
		nw := d.count(8)
		for j := 0; j < nw && d.err == nil; j++ {
			en := d.entry()
			expire := d.varint()
			k.n++
			track(&en, expire, k)
			k.waiting.push(en)
			q.putAside(&en, asideWaiting, 0, k)
		}
	}
	nr := d.count(8)
	for i := 0; i < nr && d.err == nil; i++ {
		en := d.entry()
		expire := d.varint()
		k := key(d.string())
		track(&en, expire, k)
		if k != nil {
			q.setActive(en.seq, k)
		}
		q.insertReady(en)
	}
	nd := d.count(8)
	for i := 0; i < nd && d.err == nil; i++ {
		en := d.entry()
		x := delayElem{e: en, due: d.varint(), expire: d.varint(), active: d.byte() == 1}
		x.key = key(d.string())
		e.ref(en.ref, en.size)
		q.pushDelayed(x)
	}
	nl := d.count(8)
	for i := 0; i < nl && d.err == nil; i++ {
		l := &lease{e: d.entry(), deadline: d.varint(), expire: d.varint()}
		l.key = key(d.string())
		e.ref(l.e.ref, l.e.size)
		q.leases[l.e.seq] = l
		q.leaseQ.push(l)
		q.n.inflight++
		q.n.inflightBytes += int64(l.e.size)
	}
	if v >= 4 {
		d.control(q) // pause.go
		d.settled(q) // settled.go
	}
	if d.err != nil {
		return
	}
	if e.queues[name] != nil || e.byID[id] != nil {
		d.fail("queue %q (id %d) twice", name, id)
		return
	}
	e.queues[name] = q
	e.byID[id] = q
	e.reschedule(q)
}
