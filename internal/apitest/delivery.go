package apitest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
)

// testCompetingConsumers: consumers of one queue share its messages; each
// message goes to exactly one of them and is acked once.
func testCompetingConsumers(e *env) {
	q := e.queue("q", chute.QueueConfig{VisibilityTimeout: time.Minute})

	// Two consumers holding leases hold different messages, and a third
	// finds nothing.
	e.publish(q, msg("a"), msg("b"))
	d1, d2 := e.receiveOne(q), e.receiveOne(q)
	if d1.Seq == d2.Seq || string(d1.Body) != "a" || string(d2.Body) != "b" {
		e.t.Fatalf("two consumers got %s and %s", show(d1), show(d2))
	}
	if ds := e.ready(q, 1); len(ds) != 0 {
		e.t.Fatalf("a third consumer got %s while both messages are leased", show(ds[0]))
	}
	e.ack(q, d1, d2)

	// Several consumers and producers at once.
	const publishers, consumers, perPublisher, batch = 2, 4, 40, 5
	const total = publishers * perPublisher
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		owner   = make(map[string]int) // guarded by mu: body → consumer
		counts  [consumers]int         // guarded by mu
		settled atomic.Int64
		wg      sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		if ctx.Err() == nil {
			e.t.Errorf(format, args...)
		}
		cancel()
	}
	for c := range consumers {
		wg.Go(func() {
			for settled.Load() < total && ctx.Err() == nil {
				ds, err := e.api.Receive(ctx, q, chute.ReceiveOptions{Max: 3, Wait: 50 * time.Millisecond})
				if err != nil {
					fail("consumer %d: receive: %v", c, err)
					return
				}
				mu.Lock()
				for _, d := range ds {
					if prev, dup := owner[string(d.Body)]; dup {
						e.t.Errorf("%s went to consumer %d and again to %d", show(d), prev, c)
					}
					if d.Deliveries != 1 {
						e.t.Errorf("consumer %d: %s: want 1 delivery", c, show(d))
					}
					owner[string(d.Body)] = c
					counts[c]++
				}
				mu.Unlock()
				if len(ds) == 0 {
					continue
				}
				if err := e.api.Ack(ctx, q, receipts(ds)...); err != nil {
					fail("consumer %d: ack %d: %v", c, len(ds), err)
					return
				}
				settled.Add(int64(len(ds)))
			}
		})
	}
	for p := range publishers {
		wg.Go(func() {
			for i := 0; i < perPublisher; i += batch {
				msgs := make([]chute.Message, batch)
				for j := range msgs {
					msgs[j] = msg(fmt.Sprintf("p%d-%d", p, i+j))
				}
				if _, err := e.api.Publish(ctx, q, msgs...); err != nil {
					fail("publisher %d: %v", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	if ctx.Err() != nil {
		e.t.Fatalf("timed out with %d of %d messages settled", settled.Load(), total)
	}
	for p := range publishers {
		for i := range perPublisher {
			if _, ok := owner[fmt.Sprintf("p%d-%d", p, i)]; !ok {
				e.t.Errorf("p%d-%d was never delivered", p, i)
			}
		}
	}
	if len(owner) != total {
		e.t.Fatalf("%d messages delivered, want %d", len(owner), total)
	}
	e.t.Logf("messages per consumer: %v", counts)
	s := e.wantDepth(q, 0, 0, 0)
	if s.Totals.Acked != total+2 || s.Totals.Delivered != total+2 {
		e.t.Fatalf("totals %+v: want %d acked and delivered", s.Totals, total+2)
	}
}

// testFanOut: every subscription of a topic gets its own copy of every
// message its filter matches.
func testFanOut(e *env) {
	topic := e.topic("t")
	all, red, redBig := e.name("all"), e.name("red"), e.name("red-big")
	e.subscribe(topic, all, nil)
	e.subscribe(topic, red, map[string]string{"color": "red"})
	e.subscribe(topic, redBig, map[string]string{"color": "red", "size": "big"})

	e.publish(topic,
		chute.Message{Body: []byte("m1"), Headers: map[string]string{"color": "red", "size": "big"}},
		chute.Message{Body: []byte("m2"), Headers: map[string]string{"color": "red", "size": "small"}},
		chute.Message{Body: []byte("m3"), Headers: map[string]string{"color": "blue", "size": "big"}},
		chute.Message{Body: []byte("m4")})
	e.publish(topic, chute.Message{Body: []byte("m5"), Headers: map[string]string{"color": "red"}, Priority: 0})

	want := map[string][]string{all: {"m1", "m2", "m3", "m4", "m5"}, red: {"m1", "m2", "m5"}, redBig: {"m1"}}
	for _, sub := range []string{all, red, redBig} {
		ds := e.ready(sub, 10)
		e.wantBodies("subscription "+sub, ds, want[sub]...)
		if ds[0].Headers["color"] != "red" || ds[0].Headers["size"] != "big" {
			e.t.Fatalf("%s: m1 headers %v", sub, ds[0].Headers)
		}
		e.ack(sub, ds...)
		if ds := e.ready(sub, 10); len(ds) != 0 {
			e.t.Fatalf("%s: got %q after acking everything", sub, bodies(ds))
		}
	}

	s := e.stats(redBig)
	if s.Topic != topic || !maps.Equal(s.Filter, map[string]string{"color": "red", "size": "big"}) {
		e.t.Fatalf("stats of %s: topic %q, filter %v", redBig, s.Topic, s.Filter)
	}
	ts := e.topicStats(topic)
	subs := slices.Sorted(slices.Values(ts.Subscriptions))
	if !slices.Equal(subs, []string{all, red, redBig}) || ts.Published != 5 || ts.Unrouted != 0 {
		e.t.Fatalf("topic stats %+v", ts)
	}

	// Unsubscribing removes the subscription's queue; a message nobody
	// matches is counted as unrouted.
	if err := e.api.Unsubscribe(e.ctx, topic, all); err != nil {
		e.t.Fatalf("unsubscribe: %v", err)
	}
	_, err := e.api.QueueStats(e.ctx, all)
	e.wantErr("stats of an unsubscribed queue", err, chute.ErrQueueNotFound)
	e.publish(topic, chute.Message{Body: []byte("m6"), Headers: map[string]string{"color": "green"}})
	if ts := e.topicStats(topic); ts.Published != 6 || ts.Unrouted != 1 || len(ts.Subscriptions) != 2 {
		e.t.Fatalf("topic stats after unsubscribe %+v", ts)
	}
	for _, sub := range []string{red, redBig} {
		if ds := e.ready(sub, 10); len(ds) != 0 {
			e.t.Fatalf("%s: got %q, matching nothing", sub, bodies(ds))
		}
	}
}

func (e *env) topicStats(name string) chute.TopicStats {
	e.t.Helper()
	ts, err := e.api.Topics(e.ctx)
	if err != nil {
		e.t.Fatalf("topics: %v", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return t
		}
	}
	e.t.Fatalf("topic %s not listed", name)
	return chute.TopicStats{}
}

// testPriority: higher priorities leave first; within a priority, publish
// order.
func testPriority(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	prio := func(body string, p int) chute.Message { return chute.Message{Body: []byte(body), Priority: p} }
	e.publish(q, prio("p0a", 0), prio("p5a", 5), prio("p9a", 9))
	e.publish(q, prio("p5b", 5))
	e.publish(q, prio("p0b", 0), prio("p9b", 9), prio("p1", 1))
	want := []string{"p9a", "p9b", "p5a", "p5b", "p1", "p0a", "p0b"}

	ds := e.peek(q, 10)
	e.wantBodies("peek", ds, want...)
	for _, d := range ds {
		if p := int(d.Body[1] - '0'); d.Priority != p {
			e.t.Fatalf("peek: %s: want priority %d", show(d), p)
		}
	}
	first := e.ready(q, 3)
	e.wantBodies("first receive", first, want[:3]...)
	// A later, higher message overtakes the ready lower ones.
	e.publish(q, prio("p7", 7))
	rest := e.ready(q, 10)
	e.wantBodies("second receive", rest, append([]string{"p7"}, want[3:]...)...)
	for _, d := range append(first, rest...) {
		if p := int(d.Body[1] - '0'); d.Priority != p {
			e.t.Fatalf("receive: %s: want priority %d", show(d), p)
		}
	}
	e.ack(q, append(first, rest...)...)
}

// testDelayed: a delayed message is not delivered before its delay (or
// deliver-at time), and is delivered after it.
func testDelayed(e *env) {
	const delay = 300 * time.Millisecond
	q := e.queue("q", chute.QueueConfig{})
	start := time.Now()
	e.publish(q, chute.Message{Body: []byte("later"), Delay: delay},
		chute.Message{Body: []byte("at"), DeliverAt: start.Add(delay)})
	e.publish(q, msg("now"))
	due := start.Add(delay)

	ds := e.ready(q, 10)
	if time.Now().Before(due) {
		e.wantBodies("ready at once", ds, "now")
	}
	e.ack(q, ds...)
	s := e.stats(q)
	if time.Now().Before(due) && (s.Delayed != 2 || s.Ready != 0) {
		e.t.Fatalf("before the delay: ready %d, delayed %d; want 0, 2", s.Ready, s.Delayed)
	}
	if ps := e.peek(q, 10); time.Now().Before(due) && len(ps) != 0 {
		e.t.Fatalf("peek before the delay: %q", bodies(ps))
	}

	got := map[string]bool{}
	for _, d := range ds {
		got[string(d.Body)] = true
	}
	for !got["later"] || !got["at"] {
		d := e.receiveDue(q, due)
		got[string(d.Body)] = true
		// "later" is due delay after its publish (both on the server's
		// clock); "at" is due at the deliver-at time the test sent, which
		// receiveDue checked. Published is stamped after start, so "at"
		// may rightly come less than delay after its publish.
		if age := deliveredAt(d).Sub(d.Published); string(d.Body) == "later" && age < delay {
			e.t.Fatalf("%s delivered %v after its publish, before its %v delay", show(d), age, delay)
		}
		e.ack(q, d)
	}
	e.wantDepth(q, 0, 0, 0)
}

// testReceiveWait: a receive waits for a message as told, and is woken by
// a publish.
func testReceiveWait(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	if ds := e.receive(q, chute.ReceiveOptions{Wait: -1}); len(ds) != 0 {
		e.t.Fatalf("empty queue: got %q", bodies(ds))
	}
	start := time.Now()
	if ds := e.receive(q, chute.ReceiveOptions{Wait: 100 * time.Millisecond}); len(ds) != 0 {
		e.t.Fatalf("empty queue: got %q", bodies(ds))
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		e.t.Fatalf("a receive with a 100ms wait returned after %v", waited)
	}

	// A waiting receive is woken by a publish (whether it has started to
	// wait or not, it must get the message long before its wait ends).
	type result struct {
		ds  []chute.Delivery
		err error
	}
	done := make(chan result, 1)
	go func() {
		ds, err := e.api.Receive(e.ctx, q, chute.ReceiveOptions{Max: 5, Wait: 2 * longWait})
		done <- result{ds, err}
	}()
	e.publish(q, msg("wake"))
	r := <-done
	if r.err != nil || len(r.ds) != 1 || string(r.ds[0].Body) != "wake" {
		e.t.Fatalf("waiting receive: %q, %v", bodies(r.ds), r.err)
	}
	e.ack(q, r.ds...)

	// With Wait 0 the receive waits until its context ends.
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	ds, err := e.api.Receive(ctx, q, chute.ReceiveOptions{})
	if len(ds) != 0 {
		e.t.Fatalf("empty queue: got %q", bodies(ds))
	}
	e.wantErr("receive until the context ends", err, context.DeadlineExceeded)
}

// testOrderingKeys: messages with one key are delivered one at a time, in
// order; other keys and unkeyed messages are not held up.
func testOrderingKeys(e *env) {
	q := e.queue("q", chute.QueueConfig{VisibilityTimeout: time.Minute, Backoff: chute.Backoff{Kind: chute.BackoffNone}})
	keyed := func(body, key string) chute.Message { return chute.Message{Body: []byte(body), Key: key} }
	e.publish(q, keyed("a1", "a"), keyed("a2", "a"), keyed("b1", "b"), msg("n1"), keyed("a3", "a"), keyed("b2", "b"), msg("n2"))

	ds := e.ready(q, 10)
	e.wantBodies("first receive", ds, "a1", "b1", "n1", "n2")
	if ds[0].Key != "a" || ds[1].Key != "b" || ds[2].Key != "" {
		e.t.Fatalf("keys: %s %s %s", show(ds[0]), show(ds[1]), show(ds[2]))
	}
	if more := e.ready(q, 10); len(more) != 0 {
		e.t.Fatalf("got %q while a1 and b1 are in flight", bodies(more))
	}
	e.ack(q, ds[0], ds[2], ds[3]) // a1, n1, n2
	a2 := e.ready(q, 10)
	e.wantBodies("after acking a1", a2, "a2")

	// A nacked message comes back before the rest of its key.
	e.nack(q, chute.Nack{Receipt: ds[1].Receipt, Delay: -1})
	b1 := e.ready(q, 10)
	e.wantBodies("after nacking b1", b1, "b1")
	if b1[0].Deliveries != 2 {
		e.t.Fatalf("redelivered %s: want 2 deliveries", show(b1[0]))
	}
	e.ack(q, a2[0], b1[0])
	rest := e.ready(q, 10)
	e.wantBodies("after acking a2 and b1", rest, "a3", "b2")
	e.ack(q, rest...)
	e.wantDepth(q, 0, 0, 0)
}

// testOrderingKeysConcurrent: with several consumers at once, a key is
// never in flight twice and its messages arrive in publish order.
func testOrderingKeysConcurrent(e *env) {
	const keys, perKey, consumers = 3, 12, 4
	q := e.queue("q", chute.QueueConfig{VisibilityTimeout: time.Minute})
	var msgs []chute.Message
	for i := range perKey {
		for k := range keys {
			msgs = append(msgs, chute.Message{Body: fmt.Appendf(nil, "%d", i), Key: fmt.Sprintf("k%d", k)})
		}
	}
	e.publish(q, msgs...)

	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{} // guarded by mu
		next     = map[string]int{}  // guarded by mu: the index each key expects next
		settled  atomic.Int64
		wg       sync.WaitGroup
	)
	for c := range consumers {
		wg.Go(func() {
			for settled.Load() < keys*perKey && ctx.Err() == nil {
				ds, err := e.api.Receive(ctx, q, chute.ReceiveOptions{Max: 2, Wait: 50 * time.Millisecond})
				if err != nil {
					if ctx.Err() == nil {
						e.t.Errorf("consumer %d: receive: %v", c, err)
					}
					cancel()
					return
				}
				mu.Lock()
				for _, d := range ds {
					if inFlight[d.Key] {
						e.t.Errorf("consumer %d got %s while key %q is in flight", c, show(d), d.Key)
					}
					if want := fmt.Sprint(next[d.Key]); string(d.Body) != want {
						e.t.Errorf("consumer %d got %s: key %q expects %s next", c, show(d), d.Key, want)
					}
					inFlight[d.Key] = true
					next[d.Key]++
				}
				mu.Unlock()
				for _, d := range ds {
					// Marked free before the ack: the broker may hand out
					// the next one only after the ack, so this never
					// reports a false violation.
					mu.Lock()
					inFlight[d.Key] = false
					mu.Unlock()
					if err := e.api.Ack(ctx, q, d.Receipt); err != nil {
						e.t.Errorf("consumer %d: ack %s: %v", c, show(d), err)
						cancel()
						return
					}
					settled.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	if ctx.Err() != nil {
		e.t.Fatalf("timed out with %d of %d messages settled", settled.Load(), keys*perKey)
	}
	for k := range keys {
		if n := next[fmt.Sprintf("k%d", k)]; n != perKey {
			e.t.Fatalf("key k%d: %d messages delivered, want %d", k, n, perKey)
		}
	}
	e.wantDepth(q, 0, 0, 0)
}

// testPeek: peek shows ready messages in delivery order without leasing
// them.
func testPeek(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	if ds := e.peek(q, 10); len(ds) != 0 {
		e.t.Fatalf("peek of an empty queue: %q", bodies(ds))
	}
	e.publish(q, chute.Message{Body: []byte("b"), Priority: 1},
		chute.Message{Body: []byte("a"), Priority: 5, Headers: map[string]string{"k": "v"}, ID: "id-a", Key: "key-a"},
		chute.Message{Body: []byte("c"), Priority: 1},
		chute.Message{Body: []byte("later"), Delay: time.Hour})
	ds := e.peek(q, 10)
	e.wantBodies("peek", ds, "a", "b", "c")
	if d := ds[0]; d.Priority != 5 || d.Headers["k"] != "v" || d.ID != "id-a" || d.Key != "key-a" || d.Seq == 0 {
		e.t.Fatalf("peek: %s headers %v", show(d), d.Headers)
	}
	e.wantBodies("peek 2", e.peek(q, 2), "a", "b")
	e.wantBodies("peek again", e.peek(q, 10), "a", "b", "c")
	e.wantDepth(q, 3, 1, 0)

	d := e.receiveOne(q)
	if string(d.Body) != "a" || d.Seq != ds[0].Seq {
		e.t.Fatalf("receive after peek: %s, want %s", show(d), show(ds[0]))
	}
	e.wantBodies("peek with a in flight", e.peek(q, 10), "b", "c")
	e.ack(q, d)
	_, err := e.api.Peek(e.ctx, e.name("missing"), 10)
	e.wantErr("peek of a missing queue", err, chute.ErrQueueNotFound)
}
