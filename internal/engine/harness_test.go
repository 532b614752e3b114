package engine

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// harness drives an Engine the way the broker does: commands at a fake
// time, records encoded and "stored" at increasing locations (storage units
// of 64 KiB), blobs kept by location. Every record is logged, so check can
// replay the log into a fresh engine and compare the two states.
type harness struct {
	t     tb
	e     *Engine
	now   int64
	log   []logged
	blobs map[uint64][]byte
	unit  uint32
	off   uint32
}

type logged struct {
	buf  []byte
	base uint64
}

const harnessUnit = 64 << 10

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func newHarness(t tb) *harness {
	return &harness{t: t, e: New(), now: t0, blobs: make(map[uint64][]byte), unit: 1}
}

// store appends an encoded record and returns its base location.
func (h *harness) store(r *Record) uint64 {
	buf := r.Encode(nil)
	if h.off > 0 && int(h.off)+len(buf) > harnessUnit {
		h.unit++
		h.off = 0
	}
	base := uint64(h.unit)<<32 | uint64(h.off)
	h.off += uint32(len(buf))
	h.log = append(h.log, logged{buf: buf, base: base})
	return base
}

func (h *harness) commit(r *Record) {
	if r != nil {
		h.store(r)
	}
}

func (h *harness) advance(d time.Duration) {
	h.now += int64(d)
	h.e.Advance(h.now)
}

func (h *harness) mustCreateQueue(name string, cfg QueueConfig) {
	h.t.Helper()
	r, err := h.e.CreateQueue(h.now, name, cfg)
	if err != nil {
		h.t.Fatalf("create queue %s: %v", name, err)
	}
	h.commit(r)
}

func (h *harness) publish(target string, msgs ...PubMsg) ([]PubResult, error) {
	return h.publishIn(target, Session{}, msgs...)
}

// publishIn publishes in producer session s.
func (h *harness) publishIn(target string, s Session, msgs ...PubMsg) ([]PubResult, error) {
	r, res, err := h.e.PreparePublish(h.now, target, s, msgs)
	if err != nil || r == nil {
		return res, err
	}
	base := h.store(r)
	for _, m := range r.Msgs {
		h.blobs[base+uint64(m.BlobOff)] = slices.Clone(m.Blob)
	}
	if err := h.e.Apply(r, base); err != nil {
		h.t.Fatalf("apply publish: %v", err)
	}
	return res, nil
}

func (h *harness) mustPublish(target string, msgs ...PubMsg) []PubResult {
	h.t.Helper()
	res, err := h.publish(target, msgs...)
	if err != nil {
		h.t.Fatalf("publish to %s: %v", target, err)
	}
	return res
}

func (h *harness) receive(queue string, max int, lease time.Duration) []Delivered {
	h.t.Helper()
	r, ds, err := h.e.Receive(h.now, queue, max, int64(lease))
	if err != nil {
		h.t.Fatalf("receive %s: %v", queue, err)
	}
	h.commit(r)
	return ds
}

func (h *harness) items(typ RecordType, queue string, items ...Item) []error {
	h.t.Helper()
	var r *Record
	var errs []error
	var err error
	switch typ {
	case RecAck:
		r, errs, err = h.e.Ack(h.now, queue, items)
	case RecNack:
		r, errs, err = h.e.Nack(h.now, queue, items)
	case RecExtend:
		r, errs, err = h.e.Extend(h.now, queue, items)
	case RecReturn:
		r, errs, err = h.e.Return(h.now, queue, items)
	}
	if err != nil {
		h.t.Fatalf("%v %s: %v", typ, queue, err)
	}
	h.commit(r)
	return errs
}

func (h *harness) ack(queue string, ds ...Delivered) []error {
	items := make([]Item, len(ds))
	for i, d := range ds {
		items[i] = Item{Seq: d.Seq, Deliv: d.Deliv}
	}
	return h.items(RecAck, queue, items...)
}

func (h *harness) nack(queue string, d Delivered, delay time.Duration, msg string) error {
	return h.items(RecNack, queue, Item{Seq: d.Seq, Deliv: d.Deliv, Value: int64(delay), Err: msg})[0]
}

func (h *harness) stats(queue string) QueueStats {
	h.t.Helper()
	s, err := h.e.QueueStats(queue)
	if err != nil {
		h.t.Fatalf("stats %s: %v", queue, err)
	}
	return s
}

func (h *harness) body(d Delivered) string {
	h.t.Helper()
	b, ok := h.blobs[d.Ref]
	if !ok || len(b) != int(d.Size) {
		h.t.Fatalf("no blob of %d bytes at %x", d.Size, d.Ref)
	}
	_, _, _, body, err := DecodeBlob(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(body)
}

// check replays the log into a fresh engine (through the codec) and fails
// unless it reaches the same state; it does the same from a snapshot taken
// part-way (as recovery from a checkpoint does), and checks invariants.
func (h *harness) check() {
	h.t.Helper()
	checkInvariants(h.t, h.e)
	want := dumpState(h.e)
	for _, split := range []int{len(h.log), len(h.log) / 2, len(h.log) / 3, 0} {
		e2 := New()
		h.replay(e2, h.log[:split])
		checkInvariants(h.t, e2)
		e3, err := Restore(bytes.Join(e2.Snapshot(64), nil))
		if err != nil {
			h.t.Fatalf("restore snapshot at record %d: %v", split, err)
		}
		checkInvariants(h.t, e3)
		if a, b := dumpState(e2), dumpState(e3); a != b {
			h.t.Fatalf("snapshot at record %d restores differently:\nsnapshotted:\n%s\nrestored:\n%s", split, a, b)
		}
		h.replay(e3, h.log[split:])
		e3.Advance(h.e.Now())
		if got := dumpState(e3); got != want {
			h.t.Fatalf("replay from a snapshot at record %d of %d diverged:\nlive:\n%s\nreplayed:\n%s", split, len(h.log), want, got)
		}
	}
}

func (h *harness) replay(e *Engine, log []logged) {
	h.t.Helper()
	for i, l := range log {
		r, err := Decode(l.buf)
		if err != nil {
			h.t.Fatalf("decode record %d: %v", i, err)
		}
		if err := e.Apply(r, l.base); err != nil {
			h.t.Fatalf("replay record %d (%v): %v", i, r.Type, err)
		}
	}
}

// checkInvariants verifies the counts against the structures.
func checkInvariants(t tb, e *Engine) {
	t.Helper()
	live := map[uint32]Usage{}
	for _, q := range e.queues {
		var inSet, ready, delayed, inflight, readyB int64
		var mask uint16
		for p := range q.ready {
			q.ready[p].each(func(en *entry) bool {
				if !isGoneNoForget(q, en) {
					inSet++
					readyB += int64(en.size)
					addUsage(live, en)
				}
				return true
			})
			for i := range q.retry[p] {
				if en := &q.retry[p][i]; !isGoneNoForget(q, en) {
					inSet++
					readyB += int64(en.size)
					addUsage(live, en)
				}
			}
			if q.ready[p].len() > 0 || len(q.retry[p]) > 0 {
				mask |= 1 << p
				if f := &q.ready[p]; f.len() > 0 && isGoneNoForget(q, f.front()) {
					t.Fatalf("queue %s: gone entry at the front of ready[%d]", q.name, p)
				}
			}
		}
		ready = inSet
		for _, k := range q.keys {
			k.waiting.each(func(en *entry) bool {
				if !isGoneNoForget(q, en) {
					ready++
					readyB += int64(en.size)
					addUsage(live, en)
				}
				return true
			})
		}
		for _, d := range q.delayed {
			delayed++
			addUsage(live, &d.e)
		}
		for _, l := range q.leaseQ {
			inflight++
			addUsage(live, &l.e)
			if q.leases[l.e.seq] != l {
				t.Fatalf("queue %s: lease %d not in map", q.name, l.e.seq)
			}
		}
		switch {
		case mask != q.mask:
			t.Fatalf("queue %s: mask %b, structures say %b", q.name, q.mask, mask)
		case inSet != q.n.inSet || ready != q.n.ready || readyB != q.n.readyBytes:
			t.Fatalf("queue %s: counted inSet/ready/bytes %d/%d/%d, found %d/%d/%d", q.name,
				q.n.inSet, q.n.ready, q.n.readyBytes, inSet, ready, readyB)
		case delayed != q.n.delayed || inflight != q.n.inflight || len(q.leases) != int(inflight):
			t.Fatalf("queue %s: counted delayed/inflight %d/%d, found %d/%d (%d leases)", q.name,
				q.n.delayed, q.n.inflight, delayed, inflight, len(q.leases))
		case len(q.expiry) != len(q.expIx):
			t.Fatalf("queue %s: expiry heap %d, index %d", q.name, len(q.expiry), len(q.expIx))
		}
		checkAside(t, q) // lookup_test.go
		if q.timerIdx >= 0 != (q.nextEvent() != 0) {
			t.Fatalf("queue %s: timer registration %d, next event %d", q.name, q.timerIdx, q.nextEvent())
		}
	}
	if !maps.Equal(live, e.live) {
		t.Fatalf("live units %v, structures say %v", e.live, live)
	}
	var bytes int64
	for _, u := range live {
		bytes += u.Bytes
	}
	if e.LiveBytes() != bytes {
		t.Fatalf("live bytes %d, structures say %d", e.LiveBytes(), bytes)
	}
}

func addUsage(live map[uint32]Usage, en *entry) {
	u := live[unitOf(en.ref)]
	u.Messages++
	u.Bytes += int64(en.size)
	live[unitOf(en.ref)] = u
}

func isGoneNoForget(q *queue, en *entry) bool {
	if en.flags&fTTL == 0 || q.gone == nil {
		return false
	}
	_, ok := q.gone[en.seq]
	return ok
}

// dumpState renders the logical state canonically: two engines with the same
// dump behave the same, whatever their internal layout.
func dumpState(e *Engine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "now=%d seq=%d qid=%d live=%v\n", e.now, e.nextSeq, e.nextQID, e.LiveUnits())
	for _, u := range e.LiveUnits() {
		fmt.Fprintf(&b, " unit %d: %d\n", u, e.live[u])
	}
	for _, name := range slices.Sorted(maps.Keys(e.queues)) {
		q := e.queues[name]
		fmt.Fprintf(&b, "queue %s id=%d cfg=%+v n=%+v total=%+v paused=%v breaker=%v\n", name, q.id, q.cfg, q.n, q.total, q.paused, q.breaker)
		if q.sub != nil {
			fmt.Fprintf(&b, " sub of %s filter=%v\n", q.sub.topic.name, q.sub.filter)
		}
		ready, _ := e.Peek(name, 1<<30)
		for _, d := range ready {
			fmt.Fprintf(&b, " ready %+v err=%q dead=%+v\n", stripPtr(d), d.LastErr, deref(d.Dead))
		}
		for _, k := range slices.Sorted(maps.Keys(q.keys)) {
			ks := q.keys[k]
			fmt.Fprintf(&b, " key %s current=%d n=%d waiting=", k, ks.current, ks.n)
			ks.waiting.each(func(en *entry) bool {
				if !isGoneNoForget(q, en) {
					fmt.Fprintf(&b, "%d,", en.seq)
				}
				return true
			})
			b.WriteString("\n")
		}
		ds := slices.Clone(q.delayed)
		slices.SortFunc(ds, func(x, y delayElem) int { return int(x.e.seq) - int(y.e.seq) })
		for _, d := range ds {
			fmt.Fprintf(&b, " delayed seq=%d at=%d due=%d exp=%d active=%v deliv=%d key=%v\n",
				d.e.seq, d.at, d.due, d.expire, d.active, d.e.deliv, keyName(d.key))
		}
		for _, s := range slices.Sorted(maps.Keys(q.leases)) {
			l := q.leases[s]
			fmt.Fprintf(&b, " lease seq=%d deadline=%d exp=%d deliv=%d key=%v\n", s, l.deadline, l.expire, l.e.deliv, keyName(l.key))
		}
		xs := slices.Clone(q.expiry)
		slices.SortFunc(xs, func(x, y expiryElem) int { return int(x.e.seq) - int(y.e.seq) })
		for _, x := range xs {
			fmt.Fprintf(&b, " expiry seq=%d at=%d\n", x.e.seq, x.expire)
		}
		for _, s := range slices.Sorted(maps.Keys(q.lastErr)) {
			fmt.Fprintf(&b, " lastErr %d=%q\n", s, q.lastErr[s])
		}
		for _, s := range slices.Sorted(maps.Keys(q.dead)) {
			fmt.Fprintf(&b, " dead %d=%+v\n", s, *q.dead[s])
		}
		fmt.Fprintf(&b, " dedup %s\n", dumpDedup(&q.dedup))
		b.WriteString(dumpLookups(e, q)) // lookup_test.go
	}
	for _, name := range slices.Sorted(maps.Keys(e.topics)) {
		t := e.topics[name]
		fmt.Fprintf(&b, "topic %s %+v dedup %s\n", name, t.stats(), dumpDedup(&t.dedup))
	}
	b.WriteString(dumpTxs(&e.txs))  // tx_test.go
	b.WriteString(dumpSchedules(e)) // schedule_test.go
	return b.String()
}

func dumpDedup(d *dedup) string {
	var parts []string
	for k, e := range d.seen {
		parts = append(parts, fmt.Sprintf("%x=%+v", k, e))
	}
	slices.Sort(parts)
	out := strings.Join(parts, ",")
	for s := d.sess.head; s != nil; s = s.next { // in the order of last use
		if d.sess.m[s.id] != s {
			out += fmt.Sprintf(" session %q NOT IN MAP", s.id)
		}
		bs := slices.Clone(s.batches[:])
		slices.SortFunc(bs, func(a, b sessBatch) int { return int(a.first) - int(b.first) })
		out += fmt.Sprintf(" session %q hw=%d last=%d batches=%+v", s.id, s.hw, s.last, bs)
	}
	if len(d.sess.m) != 0 || d.sess.m != nil && d.sess.head == nil {
		n := 0
		for s := d.sess.head; s != nil; s = s.next {
			n++
		}
		if n != len(d.sess.m) {
			out += fmt.Sprintf(" SESSION LIST %d, MAP %d", n, len(d.sess.m))
		}
	}
	return out
}

func stripPtr(d Delivered) Delivered { d.Dead = nil; return d }

func deref(d *DeadInfo) DeadInfo {
	if d == nil {
		return DeadInfo{}
	}
	return *d
}
