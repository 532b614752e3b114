package apitest

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/chutemq/chute"
)

// inSession numbers msgs in producer session id from first.
func inSession(id string, first uint64, msgs ...chute.Message) []chute.Message {
	out := slices.Clone(msgs)
	for i := range out {
		out[i].Session, out[i].SessionSeq = id, first+uint64(i)
	}
	return out
}

// session is a session ID of the check's own (a shared broker remembers
// sessions across runs), within MaxSessionLen whatever the prefix.
func (e *env) session(s string) string {
	sum := sha256.Sum256([]byte(e.name("session-" + s)))
	return hex.EncodeToString(sum[:16])
}

func seqsOf(rs []chute.PublishResult) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// testSessions: publishes in a producer session are stored in order, once:
// a batch that leaves a gap is refused with ErrOutOfOrder (and nothing of
// it stored), a retried batch is answered with its original sequences
// (never "duplicate" for what was not stored), a batch that straddles the
// highest stored number stores only what is new, and sessions cost no
// message IDs.
func testSessions(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	s := e.session("1")

	// A session the broker does not know starts at 1.
	_, err := e.api.Publish(e.ctx, q, inSession(s, 3, msg("x"))...)
	e.wantErr("a new session starting at 3", err, chute.ErrOutOfOrder)

	b1 := e.publish(q, inSession(s, 1, msg("a"), msg("b"))...)
	b2 := e.publish(q, inSession(s, 3, msg("c"))...)
	for _, r := range append(slices.Clone(b1), b2...) {
		if r.Duplicate {
			e.t.Fatalf("first publishes in a session: %+v, %+v", b1, b2)
		}
	}
	// A gap: 4 is missing.
	_, err = e.api.Publish(e.ctx, q, inSession(s, 5, msg("y"))...)
	e.wantErr("a batch at 5 after 3", err, chute.ErrOutOfOrder)

	// Retries: answered as the first time, not stored again.
	again := e.publish(q, inSession(s, 1, msg("a"), msg("b"))...)
	if !again[0].Duplicate || !again[1].Duplicate || !slices.Equal(seqsOf(again), seqsOf(b1)) {
		e.t.Fatalf("retry of batch 1-2: %+v, first answered %+v", again, b1)
	}
	// Straddling: 3 was stored, 4 and 5 are new.
	b3 := e.publish(q, inSession(s, 3, msg("c"), msg("d"), msg("e"))...)
	if !b3[0].Duplicate || b3[0].Seq != b2[0].Seq || b3[1].Duplicate || b3[2].Duplicate {
		e.t.Fatalf("batch 3-5 after 3: %+v", b3)
	}
	// Another session has numbers of its own.
	if r := e.publish(q, inSession(e.session("2"), 1, msg("f"))...); r[0].Duplicate {
		e.t.Fatalf("a second session: %+v", r)
	}
	// Every message once, in order; the gap and the refused batch left nothing.
	e.wantBodies("stored", e.ready(q, 10), "a", "b", "c", "d", "e", "f")
	if st := e.stats(q); st.DedupIDs != 0 {
		e.t.Fatalf("sessions left %d message IDs to remember", st.DedupIDs)
	}

	// A publish whose messages do not name one session with consecutive
	// numbers is invalid.
	bad := inSession(s, 6, msg("g"), msg("h"))
	bad[1].SessionSeq = 9
	_, err = e.api.Publish(e.ctx, q, bad...)
	e.wantErr("non-consecutive numbers", err, chute.ErrInvalidMessage)
}

// testUnstartedReturns: a delivery handed back unstarted (Nack.Unstarted)
// is ready again at once, whatever delay the nack names, keeps no error,
// and does not use up the queue's max deliveries; a plain nack does.
func testUnstartedReturns(e *env) {
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 2, VisibilityTimeout: time.Minute})
	e.publish(q, msg("m"))
	var receipts []string
	for i := range 4 {
		d := e.receiveOne(q)
		if d.Deliveries != 1 {
			e.t.Fatalf("round %d: %s after %d unstarted returns, want 1 delivery", i, show(d), i)
		}
		receipts = append(receipts, d.Receipt)
		e.nack(q, chute.Nack{Receipt: d.Receipt, Unstarted: true, Delay: time.Hour, Error: "never started"})
	}
	// The receipts of returned leases are stale: each delivery is a lease
	// of its own.
	rs := receipts[:1]
	e.wantReceiptErr("ack of a returned lease", e.api.Ack(e.ctx, q, rs...), chute.ErrStaleReceipt, rs, 0)

	d := e.receiveOne(q)
	if d.Deliveries != 1 || d.LastError != "" {
		e.t.Fatalf("after 4 unstarted returns: %s, want 1 delivery and no error", show(d))
	}
	e.nack(q, chute.Nack{Receipt: d.Receipt, Delay: -1, Error: "failed"})
	d = e.receiveOne(q)
	if d.Deliveries != 2 || d.LastError != "failed" {
		e.t.Fatalf("after a nack: %s, want 2 deliveries", show(d))
	}
	e.nack(q, chute.Nack{Receipt: d.Receipt, Delay: -1, Error: "failed again"})
	st := e.wantDepth(q, 0, 0, 0) // the second counted delivery was the last
	if st.Totals.Returned != 4 || st.Totals.Nacked != 2 || st.Totals.DeadLettered != 1 {
		t := st.Totals
		e.t.Fatalf("totals: returned %d, nacked %d, dead-lettered %d; want 4, 2, 1", t.Returned, t.Nacked, t.DeadLettered)
	}
	dl := e.receiveOne(q + chute.DeadLetterSuffix)
	if dl.DeadLetter == nil || dl.DeadLetter.Deliveries != 2 || dl.DeadLetter.LastError != "failed again" {
		e.t.Fatalf("dead letter %s: %+v", show(dl), dl.DeadLetter)
	}
}
