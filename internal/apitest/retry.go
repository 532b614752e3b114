package apitest

import (
	"strconv"
	"strings"
	"time"

	"github.com/chutemq/chute"
)

// testNackBackoff: a nack without a delay redelivers after the queue's
// back-off, a negative delay at once, an explicit delay after it; each
// redelivery counts and carries the nack's error.
func testNackBackoff(e *env) {
	const backoff = 200 * time.Millisecond
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 10,
		Backoff: chute.Backoff{Kind: chute.BackoffFixed, Delay: backoff, Jitter: -1}})
	if b := e.stats(q).Config.Backoff; b.Kind != chute.BackoffFixed || b.Delay != backoff || b.Jitter >= 0 {
		e.t.Fatalf("queue back-off %+v", b)
	}
	e.publish(q, msg("m"))
	d1 := e.receiveOne(q)
	if d1.Deliveries != 1 || d1.LastError != "" {
		e.t.Fatalf("first delivery %s", show(d1))
	}

	// The queue's back-off.
	due := time.Now().Add(backoff)
	e.nack(q, chute.Nack{Receipt: d1.Receipt, Error: "boom"})
	if s := e.stats(q); time.Now().Before(due) && (s.Delayed+s.Ready != 1 || s.InFlight != 0) {
		e.t.Fatalf("after a nack: ready %d, delayed %d, in flight %d", s.Ready, s.Delayed, s.InFlight)
	}
	d2 := e.receiveDue(q, due)
	if d2.Seq != d1.Seq || d2.Deliveries != 2 || d2.LastError != "boom" || string(d2.Body) != "m" {
		e.t.Fatalf("redelivery %s, want seq %d, 2 deliveries, error boom", show(d2), d1.Seq)
	}
	e.wantErr("ack of the first receipt", e.api.Ack(e.ctx, q, d1.Receipt), chute.ErrStaleReceipt)

	// At once.
	e.nack(q, chute.Nack{Receipt: d2.Receipt, Delay: -1, Error: "again"})
	d3 := e.receiveOne(q)
	if d3.Deliveries != 3 || d3.LastError != "again" {
		e.t.Fatalf("redelivery at once %s", show(d3))
	}

	// An explicit delay wins over the back-off.
	due = time.Now().Add(100 * time.Millisecond)
	e.nack(q, chute.Nack{Receipt: d3.Receipt, Delay: 100 * time.Millisecond})
	d4 := e.receiveDue(q, due)
	if d4.Deliveries != 4 {
		e.t.Fatalf("redelivery after an explicit delay %s", show(d4))
	}
	e.ack(q, d4)
	s := e.wantDepth(q, 0, 0, 0)
	if s.Totals.Nacked != 3 || s.Totals.Acked != 1 || s.Totals.Delivered != 4 {
		e.t.Fatalf("totals %+v: want 3 nacked, 1 acked, 4 delivered", s.Totals)
	}
}

// testExponentialBackoff: exponential back-off doubles from its delay up
// to its cap.
func testExponentialBackoff(e *env) {
	const first, cap = 60 * time.Millisecond, 100 * time.Millisecond
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: -1,
		Backoff: chute.Backoff{Kind: chute.BackoffExponential, Delay: first, Max: cap, Jitter: -1}})
	e.publish(q, msg("m"))
	d := e.receiveOne(q)
	for i, wait := range []time.Duration{first, cap, cap} { // 60ms, 120ms capped, 240ms capped
		due := time.Now().Add(wait)
		e.nack(q, chute.Nack{Receipt: d.Receipt})
		d = e.receiveDue(q, due)
		if d.Deliveries != i+2 {
			e.t.Fatalf("retry %d: %s", i+1, show(d))
		}
	}
	e.ack(q, d)
}

// testDeadLetterRedrive: a message that used its deliveries moves to the
// dead-letter queue with where, why and how often; redrive brings it back.
func testDeadLetterRedrive(e *env) {
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 2, Backoff: chute.Backoff{Kind: chute.BackoffNone}})
	dlq := q + ".dlq"
	res := e.publish(q, chute.Message{Body: []byte("poison"), Headers: map[string]string{"h": "v"}, ID: "p-1", Priority: 3})
	d1 := e.receiveOne(q)
	e.nack(q, chute.Nack{Receipt: d1.Receipt, Error: "e1"})
	d2 := e.receiveOne(q)
	if d2.Deliveries != 2 || d2.LastError != "e1" {
		e.t.Fatalf("second delivery %s", show(d2))
	}
	before := time.Now()
	e.nack(q, chute.Nack{Receipt: d2.Receipt, Error: "e2"})
	after := time.Now()

	if ds := e.ready(q, 1); len(ds) != 0 {
		e.t.Fatalf("dead message redelivered: %s", show(ds[0]))
	}
	if s := e.wantDepth(q, 0, 0, 0); s.Totals.DeadLettered != 1 {
		e.t.Fatalf("source totals %+v: want 1 dead-lettered", s.Totals)
	}
	if s := e.wantDepth(dlq, 1, 0, 0); s.DeadLetters != 1 {
		e.t.Fatalf("dead-letter queue holds %d dead letters, want 1", s.DeadLetters)
	}

	check := func(what string, d chute.Delivery) {
		e.t.Helper()
		if string(d.Body) != "poison" || d.Headers["h"] != "v" || d.ID != "p-1" {
			e.t.Fatalf("%s: %s headers %v", what, show(d), d.Headers)
		}
		dl := d.DeadLetter
		if dl == nil {
			e.t.Fatalf("%s: %s has no dead-letter info", what, show(d))
		}
		if dl.Source != q || dl.Reason != "max-deliveries" || dl.Deliveries != 2 || dl.LastError != "e2" ||
			dl.SourceSeq != res[0].Seq || dl.Died.Before(before.Add(-time.Second)) || dl.Died.After(after.Add(time.Second)) {
			e.t.Fatalf("%s: dead-letter info %+v; want source %s, max-deliveries, 2, e2, seq %d, died in [%v, %v]",
				what, *dl, q, res[0].Seq, before, after)
		}
		want := map[string]string{
			chute.HeaderDeadSource:     q,
			chute.HeaderDeadReason:     "max-deliveries",
			chute.HeaderDeadDeliveries: "2",
			chute.HeaderDeadError:      "e2",
			chute.HeaderDeadSeq:        strconv.FormatUint(res[0].Seq, 10),
		}
		for k, v := range want {
			if d.Headers[k] != v {
				e.t.Fatalf("%s: header %s = %q, want %q", what, k, d.Headers[k], v)
			}
		}
		if at, err := time.Parse(time.RFC3339Nano, d.Headers[chute.HeaderDeadAt]); err != nil || !at.Equal(dl.Died) {
			e.t.Fatalf("%s: header %s = %q (%v), want %v", what, chute.HeaderDeadAt, d.Headers[chute.HeaderDeadAt], err, dl.Died)
		}
	}
	ps := e.peek(dlq, 10)
	if len(ps) != 1 {
		e.t.Fatalf("peek of the dead-letter queue: %d messages", len(ps))
	}
	check("peek", ps[0])
	dd := e.receiveOne(dlq)
	check("receive", dd)
	// A dead letter received and returned stays redrivable.
	e.nack(dlq, chute.Nack{Receipt: dd.Receipt, Delay: -1})

	n, err := e.api.Redrive(e.ctx, dlq, 0)
	if err != nil || n != 1 {
		e.t.Fatalf("redrive: %d, %v; want 1", n, err)
	}
	if s := e.wantDepth(dlq, 0, 0, 0); s.DeadLetters != 0 {
		e.t.Fatalf("dead-letter queue holds %d dead letters after redrive", s.DeadLetters)
	}
	r := e.receiveOne(q)
	if string(r.Body) != "poison" || r.Headers["h"] != "v" || r.DeadLetter != nil || r.Deliveries != 1 || r.Priority != 3 || r.ID != "p-1" {
		e.t.Fatalf("redriven %s, headers %v, dead letter %+v: want the original message, fresh", show(r), r.Headers, r.DeadLetter)
	}
	for k := range r.Headers {
		if strings.HasPrefix(k, "chute-dead-") {
			e.t.Fatalf("redriven message keeps header %s", k)
		}
	}
	e.ack(q, r)
	if n, err := e.api.Redrive(e.ctx, dlq, 0); err != nil || n != 0 {
		e.t.Fatalf("second redrive: %d, %v; want 0", n, err)
	}
}

// testDeadLetterLeaseExpiry: with one delivery allowed, a nack or a lease
// that runs out (a consumer that crashed) kills the message, into the
// queue's named dead-letter queue.
func testDeadLetterLeaseExpiry(e *env) {
	grave := e.name("graveyard")
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 1, DeadLetterQueue: grave})
	if s := e.stats(q); s.Config.DeadLetterQueue != grave || s.Config.MaxDeliveries != 1 {
		e.t.Fatalf("config %+v", s.Config)
	}
	dead := func(what string, d chute.Delivery, body string) {
		e.t.Helper()
		if dl := d.DeadLetter; string(d.Body) != body || dl == nil || dl.Source != q || dl.Reason != "max-deliveries" || dl.Deliveries != 1 {
			e.t.Fatalf("%s: dead letter %s, info %+v", what, show(d), d.DeadLetter)
		}
	}

	e.publish(q, msg("m1"))
	d1 := e.receiveOne(q)
	e.nack(q, chute.Nack{Receipt: d1.Receipt, Delay: -1, Error: "no"})
	dd := e.ready(grave, 1)
	if len(dd) != 1 {
		e.t.Fatalf("nothing in %s after a nack of the last delivery", grave)
	}
	dead("after a nack", dd[0], "m1")
	e.ack(grave, dd...)

	const lease = 100 * time.Millisecond
	e.publish(q, msg("m2"))
	due := time.Now().Add(lease)
	d2 := e.receive(q, chute.ReceiveOptions{Lease: lease, Wait: -1})
	if len(d2) != 1 {
		e.t.Fatal("m2 not ready")
	}
	dead("after the lease ran out", e.receiveDue(grave, due), "m2")
	e.wantErr("ack after the lease ran out", e.api.Ack(e.ctx, q, d2[0].Receipt), chute.ErrStaleReceipt)
	if s := e.wantDepth(q, 0, 0, 0); s.Totals.DeadLettered != 2 || s.Totals.LeaseExpired != 1 {
		e.t.Fatalf("totals %+v: want 2 dead-lettered, 1 lease expired", s.Totals)
	}
}

// testDeadLetterTTL: a message that outlives its TTL (its own, or the
// queue's) is dead-lettered with reason "expired" if the queue says so,
// else discarded.
func testDeadLetterTTL(e *env) {
	const ttl = 150 * time.Millisecond
	plain := e.queue("plain", chute.QueueConfig{MessageTTL: ttl})
	q := e.queue("q", chute.QueueConfig{DeadLetterExpired: true})
	// plain's message is published first, so it is due first.
	e.publish(plain, msg("default ttl"))
	due := time.Now().Add(ttl)
	e.publish(q, chute.Message{Body: []byte("short-lived"), TTL: ttl})
	if ps := e.peek(q, 1); time.Now().Before(due) && len(ps) != 1 {
		e.t.Fatal("expired before its TTL")
	}

	dd := e.receiveDue(q+".dlq", due)
	if dl := dd.DeadLetter; string(dd.Body) != "short-lived" || dl == nil || dl.Reason != "expired" || dl.Source != q || dl.Deliveries != 0 {
		e.t.Fatalf("expired dead letter %s, info %+v", show(dd), dd.DeadLetter)
	}
	e.ack(q+".dlq", dd)
	if s := e.wantDepth(q, 0, 0, 0); s.Totals.Expired != 1 {
		e.t.Fatalf("totals %+v: want 1 expired", s.Totals)
	}
	if ds := e.ready(plain, 1); len(ds) != 0 {
		e.t.Fatalf("received %s after its TTL", show(ds[0]))
	}
	if s := e.wantDepth(plain, 0, 0, 0); s.Totals.Expired != 1 || s.Totals.DeadLettered != 0 {
		e.t.Fatalf("totals %+v: want 1 expired, none dead-lettered", s.Totals)
	}
	e.wantDepth(plain+".dlq", 0, 0, 0)
}

// testExtend: extending a lease keeps the message from coming back when
// the first lease would have run out; the receipt stays valid.
func testExtend(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	e.publish(q, msg("m"))
	// The extend must land before the first lease ends to prove anything;
	// on a machine too slow for that, try again with a longer lease.
	for lease := 200 * time.Millisecond; ; lease *= 2 {
		if lease > 2*time.Second {
			e.t.Fatalf("could not extend a lease within %v of receiving it", lease/2)
		}
		if d, ok := e.tryExtend(q, lease); ok {
			e.ack(q, d)
			e.wantErr("extend of an acked receipt", e.api.Extend(e.ctx, q, time.Second, d.Receipt), chute.ErrStaleReceipt)
			return
		}
	}
}

// tryExtend receives the message of q with lease, extends the lease and
// checks that the message does not come back after the first lease; false
// if the extend returned only after the first lease ended.
func (e *env) tryExtend(q string, lease time.Duration) (chute.Delivery, bool) {
	e.t.Helper()
	expired := e.stats(q).Totals.LeaseExpired
	before := time.Now()
	ds := e.receive(q, chute.ReceiveOptions{Lease: lease, Wait: longWait})
	after := time.Now()
	if len(ds) != 1 {
		e.t.Fatal("nothing ready")
	}
	d := ds[0]
	if d.LeaseDeadline.Before(before.Add(lease-time.Millisecond)) || d.LeaseDeadline.After(after.Add(lease+time.Millisecond)) {
		e.t.Fatalf("lease deadline %v, want between %v and %v", d.LeaseDeadline, before.Add(lease), after.Add(lease))
	}
	err := e.api.Extend(e.ctx, q, 10*time.Second, d.Receipt)
	if time.Since(before) >= lease {
		e.t.Logf("extend returned %v after the receive, lease %v: trying a longer lease", time.Since(before), lease)
		if err == nil {
			e.nack(q, chute.Nack{Receipt: d.Receipt, Delay: -1})
		}
		return d, false
	}
	if err != nil {
		e.t.Fatalf("extend: %v", err)
	}
	// Past the first lease's end, nothing comes back.
	if ds := e.receive(q, chute.ReceiveOptions{Wait: lease + 100*time.Millisecond}); len(ds) != 0 {
		e.t.Fatalf("%s came back after its lease was extended", show(ds[0]))
	}
	if s := e.wantDepth(q, 0, 0, 1); s.Totals.LeaseExpired != expired {
		e.t.Fatalf("totals %+v: want no more leases expired than the %d before", s.Totals, expired)
	}
	return d, true
}

// testLeaseExpiry: a lease that runs out returns the message, with its
// delivery counted; the old receipt is stale.
func testLeaseExpiry(e *env) {
	const lease = 100 * time.Millisecond
	q := e.queue("q", chute.QueueConfig{VisibilityTimeout: lease})
	e.publish(q, msg("m"))
	due := time.Now().Add(lease)
	d1 := e.receiveOne(q) // the queue's visibility timeout
	d2 := e.receiveDue(q, due)
	if d2.Seq != d1.Seq || d2.Deliveries != 2 || d2.Receipt == d1.Receipt {
		e.t.Fatalf("after the lease ran out: %s, want %s again with 2 deliveries", show(d2), show(d1))
	}
	e.wantErr("ack of the expired receipt", e.api.Ack(e.ctx, q, d1.Receipt), chute.ErrStaleReceipt)
	e.wantErr("nack of the expired receipt", e.api.Nack(e.ctx, q, chute.Nack{Receipt: d1.Receipt}), chute.ErrStaleReceipt)
	e.ack(q, d2)
	if s := e.wantDepth(q, 0, 0, 0); s.Totals.LeaseExpired != 1 || s.Totals.Acked != 1 {
		e.t.Fatalf("totals %+v: want 1 lease expired, 1 acked", s.Totals)
	}
}
