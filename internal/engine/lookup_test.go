package engine

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

func (h *harness) cancel(queue string, seqs ...uint64) []chute.MessageState {
	h.t.Helper()
	r, states, err := h.e.Cancel(h.now, queue, seqs)
	if err != nil {
		h.t.Fatalf("cancel %s %v: %v", queue, seqs, err)
	}
	h.commit(r)
	return states
}

func (h *harness) lookup(queue string, seq uint64) chute.MessageInfo {
	h.t.Helper()
	info, err := h.e.Lookup(queue, seq)
	if err != nil {
		h.t.Fatalf("lookup %s %d: %v", queue, seq, err)
	}
	return info
}

func (h *harness) wantState(queue string, seq uint64, want chute.MessageState) chute.MessageInfo {
	h.t.Helper()
	info, err := h.e.Lookup(queue, seq)
	if want == chute.MessageUnknown {
		if !errors.Is(err, chute.ErrMessageNotFound) {
			h.t.Fatalf("lookup %s %d: %+v, %v; want not found", queue, seq, info, err)
		}
		return info
	}
	if err != nil || info.State != want {
		h.t.Fatalf("lookup %s %d: %+v, %v; want %v", queue, seq, info, err, want)
	}
	return info
}

// TestLookupLifecycle follows messages through every state a lookup
// reports.
func TestLookupLifecycle(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 2, Backoff: Backoff{Kind: BackoffFixed, Delay: 5 * time.Second, Jitter: None},
		DedupWindow: time.Minute})
	res := h.mustPublish("q", PubMsg{Prio: 3, ID: "a", Body: []byte("a")}, PubMsg{Body: []byte("b"), DeliverAt: h.now + int64(time.Minute)},
		PubMsg{Body: []byte("c"), ExpireAt: h.now + int64(10*time.Second)})
	a, b, c := res[0].Seq, res[1].Seq, res[2].Seq
	pub := h.now

	info := h.wantState("q", a, chute.MessageReady)
	if info.Priority != 3 || info.Published != time.Unix(0, pub) || info.Deliveries != 0 {
		t.Fatalf("ready: %+v", info)
	}
	if info := h.wantState("q", b, chute.MessageDelayed); info.DeliverAt != time.Unix(0, pub+int64(time.Minute)) {
		t.Fatalf("delayed: %+v", info)
	}
	if seq, err := h.e.SeqOfID("q", "a"); err != nil || seq != a {
		t.Fatalf("seq of id a: %d, %v", seq, err)
	}
	if _, err := h.e.SeqOfID("q", "nope"); !errors.Is(err, chute.ErrMessageNotFound) {
		t.Fatalf("seq of an unknown id: %v", err)
	}

	// ready → in flight → acked.
	ds := h.receive("q", 1, 10*time.Second)
	if len(ds) != 1 || ds[0].Seq != a {
		t.Fatalf("received %v", seqs(ds))
	}
	if info := h.wantState("q", a, chute.MessageInFlight); info.LeaseDeadline != time.Unix(0, h.now+int64(10*time.Second)) || info.Deliveries != 1 {
		t.Fatalf("in flight: %+v", info)
	}
	h.advance(time.Second)
	h.ack("q", ds[0])
	if info := h.wantState("q", a, chute.MessageAcked); info.SettledAt != time.Unix(0, h.now) {
		t.Fatalf("acked: %+v", info)
	}

	// expired (c's TTL passes while ready).
	h.advance(10 * time.Second)
	h.wantState("q", c, chute.MessageExpired)

	// delayed → ready → nack to delayed (back-off) → dead-lettered.
	h.advance(time.Minute)
	h.wantState("q", b, chute.MessageReady)
	ds = h.receive("q", 1, 0)
	if err := h.nack("q", ds[0], 0, "boom"); err != nil {
		t.Fatal(err)
	}
	info = h.wantState("q", b, chute.MessageDelayed)
	if info.DeliverAt != time.Unix(0, h.now+int64(5*time.Second)) || info.LastError != "boom" || info.Deliveries != 1 {
		t.Fatalf("nacked: %+v", info)
	}
	h.advance(5 * time.Second)
	ds = h.receive("q", 1, 0)
	if err := h.nack("q", ds[0], 0, "again"); err != nil {
		t.Fatal(err)
	}
	info = h.wantState("q", b, chute.MessageDeadLettered)
	if info.MovedTo != "q.dlq" || info.Reason != "max-deliveries" || info.MovedSeq == 0 {
		t.Fatalf("dead-lettered: %+v", info)
	}
	dl := h.wantState("q.dlq", info.MovedSeq, chute.MessageReady)
	if dl.DeadLetter == nil || dl.DeadLetter.Source != "q" || dl.DeadLetter.SourceSeq != b || dl.DeadLetter.LastError != "again" {
		t.Fatalf("the dead letter: %+v", dl)
	}

	// redriven back: the dead-letter queue remembers where it went.
	r, n, err := h.e.Redrive(h.now, "q.dlq", 0)
	h.commit(r)
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if info := h.wantState("q.dlq", dl.Seq, chute.MessageRedriven); info.MovedTo != "q" {
		t.Fatalf("redriven: %+v", info)
	}

	// cancelled, purged.
	res = h.mustPublish("q", PubMsg{Body: []byte("d")}, PubMsg{Body: []byte("e")})
	if st := h.cancel("q", res[0].Seq); !slices.Equal(st, []chute.MessageState{chute.MessageReady}) {
		t.Fatalf("cancel: %v", st)
	}
	h.wantState("q", res[0].Seq, chute.MessageCancelled)
	r, _, err = h.e.PurgeQueue(h.now, "q")
	h.commit(r)
	if err != nil {
		t.Fatal(err)
	}
	h.wantState("q", res[1].Seq, chute.MessagePurged)
	if s := h.stats("q"); s.Totals.Cancelled != 1 || s.Totals.Acked != 1 {
		t.Fatalf("totals %+v", s.Totals)
	}
	h.check()

	// Forgotten after the window (the de-dup window: a minute).
	h.advance(time.Minute)
	for _, s := range []uint64{a, b, c, res[0].Seq, res[1].Seq} {
		h.wantState("q", s, chute.MessageUnknown)
	}
	h.wantState("q", 9999, chute.MessageUnknown)
	if _, err := h.e.Lookup("nope", 1); !errors.Is(err, ErrQueueNotFound) {
		t.Fatal(err)
	}
	h.check()
}

// TestLookupSettledCap: beyond MaxSettled the oldest settled messages are
// forgotten first, and a purge remembers at most the cap, the newest.
func TestLookupSettledCap(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxSettled: 3, SettledWindow: time.Hour})
	var all []uint64
	for range 5 {
		all = append(all, h.mustPublish("q", PubMsg{Body: []byte("x")})[0].Seq)
	}
	h.cancel("q", all...)
	for i, s := range all {
		want := chute.MessageCancelled
		if i < 2 {
			want = chute.MessageUnknown
		}
		h.wantState("q", s, want)
	}
	all = all[:0]
	for range 10 {
		all = append(all, h.mustPublish("q", PubMsg{Body: []byte("x")})[0].Seq)
	}
	r, _, _ := h.e.PurgeQueue(h.now, "q")
	h.commit(r)
	if n := h.e.queues["q"].settled.len(); n != 3 {
		t.Fatalf("%d settled remembered, cap 3", n)
	}
	for i, s := range all {
		want := chute.MessagePurged
		if i < 7 {
			want = chute.MessageUnknown
		}
		h.wantState("q", s, want)
	}
	h.check()

	// Off: nothing remembered.
	h.mustCreateQueue("off", QueueConfig{SettledWindow: None})
	s := h.mustPublish("off", PubMsg{Body: []byte("x")})[0].Seq
	h.cancel("off", s)
	h.wantState("off", s, chute.MessageUnknown)
	h.check()
}

// TestLookupDiscarded: a queue without a dead-letter queue discards what
// it would dead-letter, and says why.
func TestLookupDiscarded(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 1, NoDeadLetter: true})
	s := h.mustPublish("q", PubMsg{Body: []byte("x")})[0].Seq
	ds := h.receive("q", 1, 0)
	if err := h.nack("q", ds[0], 0, "no"); err != nil {
		t.Fatal(err)
	}
	if info := h.wantState("q", s, chute.MessageDiscarded); info.Reason != "max-deliveries" || info.MovedTo != "" {
		t.Fatalf("discarded: %+v", info)
	}
	h.check()
}

// TestCancel: ready, delayed, key-waiting and retrying messages are
// cancelled; in-flight ones and settled ones are not; a key passes on.
func TestCancel(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{Backoff: Backoff{Kind: BackoffFixed, Delay: 5 * time.Second, Jitter: None}})
	res := h.mustPublish("q",
		PubMsg{Body: []byte("k1"), Key: "k"}, PubMsg{Body: []byte("k2"), Key: "k"}, PubMsg{Body: []byte("k3"), Key: "k"},
		PubMsg{Body: []byte("late"), DeliverAt: h.now + int64(time.Minute)},
		PubMsg{Body: []byte("ttl"), ExpireAt: h.now + int64(time.Minute), Prio: 5},
		PubMsg{Body: []byte("lease")})
	k1, k2, k3, late, ttl, lease := res[0].Seq, res[1].Seq, res[2].Seq, res[3].Seq, res[4].Seq, res[5].Seq
	if info := h.wantState("q", k2, chute.MessageReady); !info.KeyWaiting || info.Key != "k" {
		t.Fatalf("waiting: %+v", info)
	}
	ds := h.receive("q", 3, 0) // ttl (prio 5), k1, lease
	if !slices.Equal(seqs(ds), []uint64{ttl, k1, lease}) {
		t.Fatalf("received %v", seqs(ds))
	}
	if err := h.nack("q", ds[0], 0, ""); err != nil { // ttl: a retry, delayed
		t.Fatal(err)
	}
	h.advance(5 * time.Second) // ttl is ready again, in a retry heap
	st := h.cancel("q", k2, late, lease, ttl, 999, k2)
	want := []chute.MessageState{chute.MessageReady, chute.MessageDelayed, chute.MessageInFlight, chute.MessageReady,
		chute.MessageUnknown, chute.MessageCancelled}
	if !slices.Equal(st, want) {
		t.Fatalf("cancel: %v, want %v", st, want)
	}
	checkInvariants(t, h.e)
	h.wantState("q", k2, chute.MessageCancelled)
	h.wantState("q", late, chute.MessageCancelled)
	h.wantState("q", ttl, chute.MessageCancelled)
	h.wantState("q", lease, chute.MessageInFlight)
	// k1 is in flight; k3 waits behind it, then gets the key.
	if info := h.wantState("q", k3, chute.MessageReady); !info.KeyWaiting {
		t.Fatalf("k3: %+v", info)
	}
	h.ack("q", ds[1])
	if info := h.wantState("q", k3, chute.MessageReady); info.KeyWaiting {
		t.Fatalf("k3 after k1: %+v", info)
	}
	// Cancelling the key's current message passes the key on.
	more := h.mustPublish("q", PubMsg{Body: []byte("k4"), Key: "k"})[0].Seq
	h.cancel("q", k3)
	if info := h.wantState("q", more, chute.MessageReady); info.KeyWaiting {
		t.Fatalf("k4 after k3 was cancelled: %+v", info)
	}
	// Settled messages cannot be cancelled again: nothing is written.
	if r, st, err := h.e.Cancel(h.now, "q", []uint64{k1, k2}); r != nil || err != nil ||
		!slices.Equal(st, []chute.MessageState{chute.MessageAcked, chute.MessageCancelled}) {
		t.Fatalf("cancel settled: %v, %v, %v", r, st, err)
	}
	if _, _, err := h.e.Cancel(h.now, "nope", []uint64{1}); !errors.Is(err, ErrQueueNotFound) {
		t.Fatal(err)
	}
	s := h.stats("q")
	if s.Totals.Cancelled != 4 || s.Depth() != 2 || s.Totals.Acked != 1 {
		t.Fatalf("stats %+v", s)
	}
	h.check()
	// A record that names a message that is not ready or delayed does not
	// apply: a damaged journal.
	if err := h.e.Apply(&Record{Type: RecCancel, Time: h.now, Name: "q", Seqs: []uint64{lease}}, 0); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("cancel of an in-flight message applied: %v", err)
	}
}

// TestLookupRestored: a snapshot holds the settled log, and a restored
// engine answers every lookup as the one it was taken from.
func TestLookupRestored(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	for i := range 20 {
		h.mustPublish("q", PubMsg{Body: []byte("x"), Prio: uint8(i % 3), Key: []string{"", "a", "b"}[i%3],
			DeliverAt: h.now + int64(i%4)*int64(time.Second)})
	}
	ds := h.receive("q", 6, 0)
	h.ack("q", ds[:2]...)
	for _, d := range ds[2:4] {
		if err := h.nack("q", d, -1, "x"); err != nil {
			t.Fatal(err)
		}
	}
	h.cancel("q", 3, 7, 11)
	h.advance(2 * time.Second)
	h.check() // dumpState compares every lookup
}

// TestSettledMemory measures what a settled message costs.
func TestSettledMemory(t *testing.T) {
	const n = 10_000
	be := newBenchEngine(t, QueueConfig{MaxSettled: n, SettledWindow: time.Hour, DedupWindow: None})
	q := be.e.queues["q"]
	runtime.GC()
	before := heapInUse()
	for i := range uint64(n) {
		be.e.settle(q, i+1, stAcked, 0, nil, 0, be.now)
	}
	after := heapInUse()
	runtime.KeepAlive(be)
	per := (int64(after) - int64(before)) / n
	t.Logf("%d settled messages: %d bytes each", n, per)
	if per > 160 {
		t.Fatalf("a settled message costs %d bytes", per)
	}
}

// TestAsideMemory measures what the aside index costs a message out of
// publish order (delayed, retrying, waiting for its key).
func TestAsideMemory(t *testing.T) {
	const n = 100_000
	q := newQueue(1, "q", QueueConfig{})
	runtime.GC()
	before := heapInUse()
	for i := range uint64(n) {
		q.putAside(&entry{seq: i + 1}, asideDelayed, 1, nil)
	}
	after := heapInUse()
	runtime.KeepAlive(q)
	per := (int64(after) - int64(before)) / n
	t.Logf("%d messages aside: %d bytes each", n, per)
	if per > 100 {
		t.Fatalf("an aside message costs %d bytes", per)
	}
}

// checkAside verifies the aside index against the structures it indexes.
func checkAside(t tb, q *queue) {
	t.Helper()
	n := 0
	want := func(seq uint64, where uint8) {
		n++
		if a, ok := q.aside[seq]; !ok || a.where != where {
			t.Fatalf("queue %s: message %d in place %d, aside says %+v (%v)", q.name, seq, where, a, ok)
		}
	}
	for p := range q.retry {
		for i := range q.retry[p] {
			if en := &q.retry[p][i]; !isGoneNoForget(q, en) {
				want(en.seq, asideRetry)
			}
		}
	}
	for _, k := range q.keys {
		k.waiting.each(func(en *entry) bool {
			if !isGoneNoForget(q, en) {
				want(en.seq, asideWaiting)
			}
			return true
		})
	}
	for _, d := range q.delayed {
		want(d.e.seq, asideDelayed)
	}
	if n != len(q.aside) {
		t.Fatalf("queue %s: %d messages aside, index has %d", q.name, n, len(q.aside))
	}
}

// dumpLookups renders the settled log and every lookup of q.
func dumpLookups(e *Engine, q *queue) string {
	var b strings.Builder
	q.settled.order.each(func(o *settledAt) bool {
		fmt.Fprintf(&b, " settled %d=%+v at %d\n", o.seq, o.settledRec, o.at)
		return true
	})
	for s := uint64(1); s < e.nextSeq; s++ {
		if info, err := e.Lookup(q.name, s); err == nil {
			var dl chute.DeadLetterInfo
			if info.DeadLetter != nil {
				dl, info.DeadLetter = *info.DeadLetter, nil
			}
			fmt.Fprintf(&b, " lookup %+v dead=%+v\n", info, dl)
		}
	}
	return b.String()
}
