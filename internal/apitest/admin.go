package apitest

import (
	"reflect"
	"strings"
	"time"

	"github.com/chutemq/chute"
)

// testDedup: a publish retried with the same ID is accepted, answered with
// the first copy's sequence and a duplicate flag, and stored once — even
// after the first copy was acked.
func testDedup(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	first := e.publish(q, chute.Message{Body: []byte("first"), ID: "order-1"})
	if first[0].Duplicate || first[0].Seq == 0 {
		e.t.Fatalf("first publish: %+v", first[0])
	}
	retry := e.publish(q, chute.Message{Body: []byte("retry"), ID: "order-1"})
	if !retry[0].Duplicate || retry[0].Seq != first[0].Seq {
		e.t.Fatalf("retry: %+v, want a duplicate of seq %d", retry[0], first[0].Seq)
	}
	// In a batch, only the new ID is stored.
	mixed := e.publish(q, chute.Message{Body: []byte("second"), ID: "order-2"}, chute.Message{Body: []byte("retry 2"), ID: "order-1"})
	if mixed[0].Duplicate || mixed[0].Seq == first[0].Seq || !mixed[1].Duplicate || mixed[1].Seq != first[0].Seq {
		e.t.Fatalf("mixed batch: %+v", mixed)
	}
	if s := e.wantDepth(q, 2, 0, 0); s.DedupIDs != 2 {
		e.t.Fatalf("%d de-dup IDs remembered, want 2", s.DedupIDs)
	}
	ds := e.ready(q, 10)
	e.wantBodies("receive", ds, "first", "second")
	if ds[0].ID != "order-1" || ds[0].Seq != first[0].Seq || ds[1].ID != "order-2" {
		e.t.Fatalf("deliveries %s %s", show(ds[0]), show(ds[1]))
	}
	e.ack(q, ds...)

	// Acked, but still within the window: still a duplicate.
	again := e.publish(q, chute.Message{Body: []byte("late retry"), ID: "order-1"})
	if !again[0].Duplicate || again[0].Seq != first[0].Seq {
		e.t.Fatalf("retry after the ack: %+v", again[0])
	}
	e.wantDepth(q, 0, 0, 0)

	// Without an ID, or with de-dup off, every publish is stored.
	off := e.queue("off", chute.QueueConfig{DedupWindow: -1})
	for _, target := range []string{q, off} {
		id := ""
		if target == off {
			id = "same"
		}
		a := e.publish(target, chute.Message{Body: []byte("x"), ID: id})
		b := e.publish(target, chute.Message{Body: []byte("x"), ID: id})
		if a[0].Duplicate || b[0].Duplicate || a[0].Seq == b[0].Seq {
			e.t.Fatalf("%s: %+v %+v, want two messages", target, a[0], b[0])
		}
		e.ack(target, e.ready(target, 10)...)
	}
}

// testDedupTopic: de-duplication on a topic stores the message once in
// each subscription.
func testDedupTopic(e *env) {
	topic := e.topic("t")
	s1, s2 := e.name("s1"), e.name("s2")
	e.subscribe(topic, s1, nil)
	e.subscribe(topic, s2, nil)
	first := e.publish(topic, chute.Message{Body: []byte("m"), ID: "evt-1"})
	retry := e.publish(topic, chute.Message{Body: []byte("m"), ID: "evt-1"})
	if first[0].Duplicate || !retry[0].Duplicate || retry[0].Seq != first[0].Seq {
		e.t.Fatalf("publish and retry on a topic: %+v %+v", first[0], retry[0])
	}
	for _, sub := range []string{s1, s2} {
		ds := e.ready(sub, 10)
		e.wantBodies(sub, ds, "m")
		e.ack(sub, ds...)
	}
	if ts := e.topicStats(topic); ts.Published != 1 || ts.DedupIDs != 1 {
		e.t.Fatalf("topic stats %+v: want 1 published, 1 de-dup ID", ts)
	}
}

// testPurge: purge removes every message — ready, delayed, in flight —
// and says how many; leases of purged messages are stale.
func testPurge(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	n, err := e.api.PurgeQueue(e.ctx, q)
	if err != nil || n != 0 {
		e.t.Fatalf("purge of an empty queue: %d, %v", n, err)
	}
	e.publish(q, msg("a"), msg("b"), msg("c"), chute.Message{Body: []byte("later"), Delay: time.Hour})
	d := e.receiveOne(q)
	e.wantDepth(q, 2, 1, 1)
	n, err = e.api.PurgeQueue(e.ctx, q)
	if err != nil || n != 4 {
		e.t.Fatalf("purge: %d, %v; want 4", n, err)
	}
	e.wantDepth(q, 0, 0, 0)
	if ds := e.ready(q, 10); len(ds) != 0 {
		e.t.Fatalf("after purge: %q", bodies(ds))
	}
	e.wantErr("ack of a purged message", e.api.Ack(e.ctx, q, d.Receipt), chute.ErrStaleReceipt)
	// The queue works on.
	e.publish(q, msg("after"))
	ds := e.ready(q, 10)
	e.wantBodies("after purge", ds, "after")
	e.ack(q, ds...)
	_, err = e.api.PurgeQueue(e.ctx, e.name("missing"))
	e.wantErr("purge of a missing queue", err, chute.ErrQueueNotFound)
}

// testLimits: a full queue refuses a publish with ErrQueueFull and stores
// nothing of the batch; drop-oldest dead-letters the oldest instead.
func testLimits(e *env) {
	q := e.queue("q", chute.QueueConfig{MaxMessages: 3})
	e.publish(q, msg("a"), msg("b"))
	_, err := e.api.Publish(e.ctx, q, msg("c"), msg("d"))
	e.wantErr("a batch past the limit", err, chute.ErrQueueFull)
	e.wantDepth(q, 2, 0, 0)
	e.publish(q, msg("c"))
	_, err = e.api.Publish(e.ctx, q, msg("d"))
	e.wantErr("publish to a full queue", err, chute.ErrQueueFull)
	// In-flight messages count; an ack makes room.
	d := e.receiveOne(q)
	_, err = e.api.Publish(e.ctx, q, msg("d"))
	e.wantErr("publish with one in flight", err, chute.ErrQueueFull)
	e.ack(q, d)
	e.publish(q, msg("d"))
	e.wantBodies("after the limit", e.peek(q, 10), "b", "c", "d")

	bytes := e.queue("bytes", chute.QueueConfig{MaxBytes: 100})
	e.publish(bytes, chute.Message{Body: make([]byte, 60)})
	_, err = e.api.Publish(e.ctx, bytes, chute.Message{Body: make([]byte, 60)})
	e.wantErr("publish past the byte limit", err, chute.ErrQueueFull)
	e.wantDepth(bytes, 1, 0, 0)

	drop := e.queue("drop", chute.QueueConfig{MaxMessages: 2, Overflow: chute.OverflowDropOldest})
	e.publish(drop, msg("a"), msg("b"))
	e.publish(drop, msg("c"))
	e.wantBodies("drop-oldest", e.peek(drop, 10), "b", "c")
	dd := e.ready(drop+".dlq", 10)
	e.wantBodies("dropped", dd, "a")
	if dl := dd[0].DeadLetter; dl == nil || dl.Reason != "overflow" || dl.Source != drop {
		e.t.Fatalf("dropped message: dead-letter info %+v", dl)
	}
	if s := e.stats(drop); s.Totals.Dropped != 1 {
		e.t.Fatalf("totals %+v: want 1 dropped", s.Totals)
	}
}

// testQueueAdmin: a queue's configuration reads back as set (with the
// defaults filled in), can be updated, and the queue listed and deleted.
func testQueueAdmin(e *env) {
	dlq := e.name("custom-dlq")
	cfg := chute.QueueConfig{
		VisibilityTimeout: 45 * time.Second, MaxDeliveries: 3,
		Backoff:         chute.Backoff{Kind: chute.BackoffFixed, Delay: 2 * time.Second, Max: time.Minute, Jitter: 0.5},
		DeadLetterQueue: dlq, MaxMessages: 100, MaxBytes: 1 << 20, Overflow: chute.OverflowDropOldest,
		MessageTTL: time.Hour, DeadLetterExpired: true, DedupWindow: 5 * time.Minute,
	}
	q := e.queue("q", cfg)
	if got := e.stats(q).Config; !reflect.DeepEqual(got, cfg.WithDefaults(q)) {
		e.t.Fatalf("config read back:\n got %+v\nwant %+v", got, cfg.WithDefaults(q))
	}
	e.stats(dlq) // made with the queue (with a configuration of its own)
	def := e.queue("defaults", chute.QueueConfig{})
	if got, want := e.stats(def).Config, (chute.QueueConfig{}).WithDefaults(def); !reflect.DeepEqual(got, want) {
		e.t.Fatalf("default config:\n got %+v\nwant %+v", got, want)
	}

	e.publish(q, msg("kept"))
	cfg.MaxDeliveries, cfg.VisibilityTimeout = 7, time.Minute
	if err := e.api.UpdateQueue(e.ctx, q, cfg); err != nil {
		e.t.Fatalf("update: %v", err)
	}
	if got := e.stats(q).Config; !reflect.DeepEqual(got, cfg.WithDefaults(q)) {
		e.t.Fatalf("config after update:\n got %+v\nwant %+v", got, cfg.WithDefaults(q))
	}
	e.wantDepth(q, 1, 0, 0)

	listed := map[string]bool{}
	all, err := e.api.Queues(e.ctx)
	if err != nil {
		e.t.Fatalf("queues: %v", err)
	}
	for _, s := range all {
		if strings.HasPrefix(s.Name, e.prefix) {
			listed[s.Name] = true
		}
	}
	for _, name := range []string{q, dlq, def, def + ".dlq"} {
		if !listed[name] {
			e.t.Fatalf("queue %s not listed (listed: %v)", name, listed)
		}
	}

	if err := e.api.DeleteQueue(e.ctx, q); err != nil {
		e.t.Fatalf("delete: %v", err)
	}
	_, err = e.api.QueueStats(e.ctx, q)
	e.wantErr("stats of a deleted queue", err, chute.ErrQueueNotFound)
	_, err = e.api.Publish(e.ctx, q, msg("x"))
	e.wantErr("publish to a deleted queue", err, chute.ErrNotFound)
	e.stats(dlq) // the dead-letter queue stays
	// The name is free again, and the new queue starts empty.
	e.queue("q", chute.QueueConfig{})
	e.wantDepth(q, 0, 0, 0)
}
