package engine

import (
	"errors"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

func bodiesN(prefix string, n int) []PubMsg {
	out := make([]PubMsg, n)
	for i := range out {
		out[i] = body(fmt.Sprint(prefix, i))
	}
	return out
}

func resultSeqs(rs []PubResult) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func allDup(rs []PubResult) bool {
	return !slices.ContainsFunc(rs, func(r PubResult) bool { return !r.Duplicate })
}

func noDup(rs []PubResult) bool {
	return !slices.ContainsFunc(rs, func(r PubResult) bool { return r.Duplicate })
}

func TestSessionInOrderGapAndDuplicates(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	in := func(first uint64, msgs ...PubMsg) ([]PubResult, error) {
		return h.publishIn("q", Session{ID: "p1", First: first}, msgs...)
	}
	// A new session starts at 1; a gap (here: 1..3 missing) is refused.
	if _, err := in(4, bodiesN("x", 2)...); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("a new session starting at 4: %v", err)
	}
	b1, err := in(1, bodiesN("a", 3)...)
	if err != nil || !noDup(b1) {
		t.Fatalf("batch 1..3: %+v, %v", b1, err)
	}
	if _, err := in(5, bodiesN("x", 1)...); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("batch at 5 after 3: %v", err)
	}
	b2, err := in(4, bodiesN("b", 2)...)
	if err != nil || !noDup(b2) || b2[0].Seq != b1[2].Seq+1 {
		t.Fatalf("batch 4..5: %+v, %v", b2, err)
	}
	// A retried batch is answered with its original sequences.
	again, err := in(1, bodiesN("a", 3)...)
	if err != nil || !allDup(again) || !slices.Equal(resultSeqs(again), resultSeqs(b1)) {
		t.Fatalf("retry of 1..3: %+v, %v; first answer %+v", again, err, b1)
	}
	// A batch that straddles the mark: 4 and 5 are duplicates, 6 is new.
	b3, err := in(4, body("b0"), body("b1"), body("c"))
	if err != nil || !b3[0].Duplicate || !b3[1].Duplicate || b3[2].Duplicate ||
		!slices.Equal(resultSeqs(b3[:2]), resultSeqs(b2)) {
		t.Fatalf("straddling batch 4..6: %+v, %v", b3, err)
	}
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"a0", "a1", "a2", "b0", "b1", "c"}) {
		t.Fatalf("stored %v", got)
	}
	if s := h.stats("q"); s.DedupIDs != 0 || s.Sessions != 1 {
		t.Fatalf("de-dup state: %d IDs, %d sessions", s.DedupIDs, s.Sessions)
	}
	// Another session has its own numbers.
	if r, err := h.publishIn("q", Session{ID: "p2", First: 1}, body("z")); err != nil || r[0].Duplicate {
		t.Fatalf("second session: %+v, %v", r, err)
	}
	h.check()
}

// TestSessionRemembersLastBatches: the results of the last SessionInFlight
// batches are kept; an older duplicate is still a duplicate, with sequence
// 0 (unknown), never stored again.
func TestSessionRemembersLastBatches(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	var first [][]PubResult
	for i := range SessionInFlight + 2 {
		r, err := h.publishIn("q", Session{ID: "p", First: uint64(2*i + 1)}, bodiesN(fmt.Sprint("m", i, "-"), 2)...)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, r)
	}
	for i := range SessionInFlight + 2 {
		r, err := h.publishIn("q", Session{ID: "p", First: uint64(2*i + 1)}, bodiesN("again", 2)...)
		if err != nil || !allDup(r) {
			t.Fatalf("retry of batch %d: %+v, %v", i, r, err)
		}
		want := resultSeqs(first[i])
		if i < 2 {
			want = []uint64{0, 0}
		}
		if !slices.Equal(resultSeqs(r), want) {
			t.Fatalf("retry of batch %d answered %v, want %v", i, resultSeqs(r), want)
		}
	}
	if s := h.stats("q"); s.Ready != 2*(SessionInFlight+2) {
		t.Fatalf("%d stored", s.Ready)
	}
	h.check()
}

// TestSessionWithMessageIDs: message IDs still de-duplicate inside a
// session, and a retried batch gets the original answer for those too.
func TestSessionWithMessageIDs(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	r0 := h.mustPublish("q", PubMsg{ID: "order-1", Body: []byte("first")})
	batch := []PubMsg{body("a"), {ID: "order-1", Body: []byte("dup")}, {ID: "order-2", Body: []byte("b")}, {ID: "order-2"}}
	r1, err := h.publishIn("q", Session{ID: "p", First: 1}, batch...)
	if err != nil || r1[0].Duplicate || !r1[1].Duplicate || r1[1].Seq != r0[0].Seq || r1[2].Duplicate ||
		!r1[3].Duplicate || r1[3].Seq != r1[2].Seq {
		t.Fatalf("batch: %+v, %v", r1, err)
	}
	r2, err := h.publishIn("q", Session{ID: "p", First: 1}, batch...)
	if err != nil || !allDup(r2) || !slices.Equal(resultSeqs(r2), resultSeqs(r1)) {
		t.Fatalf("retry: %+v, %v; first %+v", r2, err, r1)
	}
	// A batch of only message-ID duplicates still moves the session on.
	r3, err := h.publishIn("q", Session{ID: "p", First: 5}, PubMsg{ID: "order-1"})
	if err != nil || !r3[0].Duplicate || r3[0].Seq != r0[0].Seq {
		t.Fatalf("duplicate-only batch: %+v, %v", r3, err)
	}
	if _, err := h.publishIn("q", Session{ID: "p", First: 6}, body("c")); err != nil {
		t.Fatalf("after a duplicate-only batch: %v", err)
	}
	h.check()
}

func TestSessionExpiryAndOff(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{SessionWindow: time.Minute})
	if _, err := h.publishIn("q", Session{ID: "p", First: 1}, body("a")); err != nil {
		t.Fatal(err)
	}
	h.advance(59 * time.Second)
	if r, err := h.publishIn("q", Session{ID: "p", First: 1}, body("a")); err != nil || !r[0].Duplicate {
		t.Fatalf("within the window: %+v, %v", r, err)
	}
	h.advance(time.Minute) // idle for the whole window: forgotten
	if _, err := h.publishIn("q", Session{ID: "p", First: 2}, body("b")); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("an expired session continuing at 2: %v", err)
	}
	if r, err := h.publishIn("q", Session{ID: "p", First: 1}, body("b")); err != nil || r[0].Duplicate {
		t.Fatalf("an expired session starting again: %+v, %v", r, err)
	}
	// Invalid session fields.
	if _, err := h.publishIn("q", Session{ID: "p", First: 0}, body("x")); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("session number 0: %v", err)
	}
	if _, err := h.publishIn("q", Session{ID: string(make([]byte, MaxSessionLen+1)), First: 1}, body("x")); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("long session ID: %v", err)
	}
	// Turned off: sessions are ignored (a retry is stored again).
	r, err := h.e.UpdateQueue(h.now, "q", QueueConfig{SessionWindow: -1})
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	for range 2 {
		if r, err := h.publishIn("q", Session{ID: "p", First: 7}, body("c")); err != nil || r[0].Duplicate {
			t.Fatalf("sessions off: %+v, %v", r, err)
		}
	}
	if s := h.stats("q"); s.Sessions != 0 || s.Ready != 4 {
		t.Fatalf("sessions off: %+v", s)
	}
	h.check()
}

func TestSessionOnTopic(t *testing.T) {
	h := newHarness(t)
	r, err := h.e.CreateTopic(h.now, "t", TopicConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	r, err = h.e.Subscribe(h.now, "t", "s1", QueueConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	r1, err := h.publishIn("t", Session{ID: "p", First: 1}, body("a"), body("b"))
	if err != nil || !noDup(r1) {
		t.Fatal(r1, err)
	}
	r2, err := h.publishIn("t", Session{ID: "p", First: 1}, body("a"), body("b"))
	if err != nil || !allDup(r2) || !slices.Equal(resultSeqs(r1), resultSeqs(r2)) {
		t.Fatalf("retry on a topic: %+v, %v", r2, err)
	}
	if _, err := h.publishIn("t", Session{ID: "p", First: 9}, body("c")); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("gap on a topic: %v", err)
	}
	if s := h.stats("s1"); s.Ready != 2 {
		t.Fatalf("subscription holds %d", s.Ready)
	}
	h.check()
}

func TestMaxDedupIDs(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDedupIDs: 3})
	for i := range 5 {
		h.mustPublish("q", PubMsg{ID: fmt.Sprint("id-", i)})
	}
	s := h.stats("q")
	if s.DedupIDs != 3 || s.Totals.DedupForgotten != 2 {
		t.Fatalf("%d IDs remembered, %d forgotten; want 3, 2", s.DedupIDs, s.Totals.DedupForgotten)
	}
	if r := h.mustPublish("q", PubMsg{ID: "id-4"}); !r[0].Duplicate {
		t.Fatalf("the newest ID was forgotten: %+v", r)
	}
	if r := h.mustPublish("q", PubMsg{ID: "id-0"}); r[0].Duplicate {
		t.Fatalf("the oldest ID is still remembered: %+v", r)
	}
	h.check()
}

func TestSessionsLimit(t *testing.T) {
	var ss sessions
	var forgotten int64
	for i := range 5 {
		_, f := ss.use(fmt.Sprint("s", i), int64(i), 100, 3)
		forgotten += f
	}
	if ss.len() != 3 || forgotten != 2 || ss.m["s0"] != nil || ss.m["s1"] != nil || ss.head.id != "s2" || ss.tail.id != "s4" {
		t.Fatalf("after 5 sessions with a limit of 3: %d left, %d forgotten, head %s", ss.len(), forgotten, ss.head.id)
	}
	ss.use("s2", 10, 100, 3) // used again: now the most recent
	if ss.head.id != "s3" || ss.tail.id != "s2" {
		t.Fatalf("order after reuse: head %s tail %s", ss.head.id, ss.tail.id)
	}
	ss.use("s9", 104, 100, 3) // s3 (4) and s4 (5) expired at 104
	if ss.len() != 2 || ss.head.id != "s2" {
		t.Fatalf("after expiry: %d left, head %s", ss.len(), ss.head.id)
	}
}

func TestReturnDoesNotCount(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 2, Backoff: Backoff{Kind: BackoffNone}})
	h.mustPublish("q", body("1"), body("2"))
	// Handed back unstarted five times: no delivery counted.
	var stale []Delivered
	for i := range 5 {
		d := h.receive("q", 2, 0)
		if len(d) != 2 || d[0].Deliv != uint16(i+1) || d[0].Counted != 1 {
			t.Fatalf("round %d: %+v", i, d)
		}
		if errs := h.items(RecReturn, "q", Item{Seq: d[0].Seq, Deliv: d[0].Deliv}, Item{Seq: d[1].Seq, Deliv: d[1].Deliv}); errs[0] != nil || errs[1] != nil {
			t.Fatalf("return: %v", errs)
		}
		stale = append(stale, d...)
	}
	// Old receipts are stale: the epoch moved on.
	if errs := h.ack("q", stale[0]); !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("ack of a returned lease: %v", errs)
	}
	if got := h.bodies(h.receive("q", 1, 0)); !slices.Equal(got, []string{"1"}) {
		t.Fatalf("returned messages keep their place: %v", got)
	}
	h.commit(h.e.ReleaseLeases(h.now)) // a crash: counted
	d := h.receive("q", 2, 0)
	if d[0].Counted != 2 || d[1].Counted != 1 {
		t.Fatalf("after a crash: %+v", d)
	}
	if err := h.nack("q", d[0], -1, "boom"); err != nil {
		t.Fatal(err)
	}
	dl := h.receive("q.dlq", 1, 0)
	if len(dl) != 1 || dl[0].Dead.Deliveries != 2 || dl[0].Dead.LastError != "boom" {
		t.Fatalf("dead letter: %+v", dl)
	}
	h.commit(h.e.ReturnLeases(h.now)) // a graceful shutdown: not counted
	d = h.receive("q", 1, 0)
	if d[0].Counted != 1 {
		t.Fatalf("after a graceful shutdown: %+v", d)
	}
	s := h.stats("q")
	if s.Totals.Returned != 11 || s.Totals.LeaseExpired != 1 || s.Totals.Nacked != 1 {
		t.Fatalf("totals %+v", s.Totals)
	}
	r := h.e.ReturnLeases(h.now)
	if r == nil {
		t.Fatal("no return-leases record with a lease held")
	}
	h.commit(r)
	if r := h.e.ReturnLeases(h.now); r != nil {
		t.Fatalf("return-leases with none held: %+v", r)
	}
	h.check()
}

var sessionMemoryMessages = flag.Int("session-memory-messages", 1_000_000,
	"messages TestSessionDedupMemory publishes (the issue's figure is for 10,000,000: about 15 s)")

// TestSessionDedupMemory measures what producer sessions cost: small
// messages from 16 producers, each in a session of its own, through the
// engine (no journal), acked as they go. The de-dup structures must stay
// under 1 MB (they hold 16 sessions, whatever they published; message IDs
// would hold every message of the window), and so must the heap's growth.
//
//	go test ./internal/engine -run TestSessionDedupMemory -v -session-memory-messages 10000000
func TestSessionDedupMemory(t *testing.T) {
	const producers, batch = 16, 100
	total := *sessionMemoryMessages
	if testing.Short() || raceEnabled {
		total = min(total, 200_000)
	}
	// The settled log (settled.go) is off here: it has its own bound
	// (MaxSettled), measured by TestSettledMemory.
	be := newBenchEngine(t, QueueConfig{SettledWindow: None})
	before := heapInUse()
	body := make([]byte, 16)
	next := make([]uint64, producers)
	msgs := make([]PubMsg, batch)
	for i := range msgs {
		msgs[i] = PubMsg{Body: body}
	}
	items := make([]Item, 0, batch*producers)
	for sent := 0; sent < total; {
		for p := range producers {
			s := Session{ID: fmt.Sprintf("producer-%02d-0123456789abcdef", p), First: next[p] + 1}
			r, _, err := be.e.PreparePublish(be.now, "q", s, msgs)
			if err != nil {
				t.Fatal(err)
			}
			be.buf = r.Encode(be.buf[:0])
			if err := be.e.Apply(r, be.base); err != nil {
				t.Fatal(err)
			}
			be.base += uint64(len(be.buf))
			next[p] += batch
			sent += batch
		}
		rec, ds, err := be.e.Receive(be.now, "q", batch*producers, 0)
		if err != nil || rec == nil {
			t.Fatal(err)
		}
		items = items[:0]
		for _, d := range ds {
			items = append(items, Item{Seq: d.Seq, Deliv: d.Deliv})
		}
		if _, errs, err := be.e.Ack(be.now, "q", items); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
			t.Fatal(err, errs)
		}
		be.now += int64(time.Millisecond)
	}
	be.buf = nil
	after := heapInUse()
	s, _ := be.e.QueueStats("q")
	if s.Depth() != 0 || s.Totals.Acked != int64(total) || s.Sessions != producers || s.DedupIDs != 0 {
		t.Fatalf("after %d messages: %+v", total, s)
	}
	runtime.KeepAlive(be)
	t.Logf("%d messages from %d sessions: de-dup structures %d bytes (%d per session); heap in use grew by %d bytes",
		total, producers, s.DedupBytes, s.DedupBytes/producers, int64(after)-int64(before))
	if s.DedupBytes >= 1<<20 {
		t.Fatalf("de-dup structures hold %d bytes, budget 1 MB", s.DedupBytes)
	}
	if grew := int64(after) - int64(before); grew >= 1<<20 {
		t.Fatalf("the engine's heap grew by %d bytes after %d messages, all acked: budget 1 MB", grew, total)
	}
}
