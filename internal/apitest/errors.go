package apitest

import (
	"strings"
	"time"

	"github.com/chutemq/chute"
)

// testErrorsNotFound: every call naming a missing queue or topic fails
// with the matching typed error.
func testErrorsNotFound(e *env) {
	missing := e.name("missing")
	ctx := e.ctx
	_, err := e.api.Publish(ctx, missing, msg("x"))
	e.wantErr("publish", err, chute.ErrNotFound)
	_, err = e.api.Receive(ctx, missing, chute.ReceiveOptions{Wait: -1})
	e.wantErr("receive", err, chute.ErrQueueNotFound)
	e.wantErr("ack", e.api.Ack(ctx, missing, "1.1.1"), chute.ErrQueueNotFound)
	e.wantErr("nack", e.api.Nack(ctx, missing, chute.Nack{Receipt: "1.1.1"}), chute.ErrQueueNotFound)
	e.wantErr("extend", e.api.Extend(ctx, missing, time.Second, "1.1.1"), chute.ErrQueueNotFound)
	_, err = e.api.QueueStats(ctx, missing)
	e.wantErr("stats", err, chute.ErrQueueNotFound)
	e.wantErr("update", e.api.UpdateQueue(ctx, missing, chute.QueueConfig{}), chute.ErrQueueNotFound)
	e.wantErr("delete", e.api.DeleteQueue(ctx, missing), chute.ErrQueueNotFound)
	_, err = e.api.Redrive(ctx, missing, 0)
	e.wantErr("redrive", err, chute.ErrQueueNotFound)
	e.wantErr("subscribe", e.api.Subscribe(ctx, missing, e.name("sub"), chute.SubscriptionConfig{}), chute.ErrTopicNotFound)
	e.wantErr("unsubscribe", e.api.Unsubscribe(ctx, missing, e.name("sub")), chute.ErrTopicNotFound)
	e.wantErr("delete topic", e.api.DeleteTopic(ctx, missing), chute.ErrTopicNotFound)

	// A queue is not a subscription of a topic it was not made for.
	q := e.queue("q", chute.QueueConfig{})
	topic := e.topic("t")
	e.wantErr("unsubscribe a plain queue", e.api.Unsubscribe(ctx, topic, q), chute.ErrNotSubscription)
	// A deleted topic is gone; its subscriptions stay as queues.
	sub := e.name("sub")
	e.subscribe(topic, sub, nil)
	if err := e.api.DeleteTopic(ctx, topic); err != nil {
		e.t.Fatalf("delete topic: %v", err)
	}
	_, err = e.api.Publish(ctx, topic, msg("x"))
	e.wantErr("publish to a deleted topic", err, chute.ErrNotFound)
	e.stats(sub)
}

// testErrorsNames: names are unique across queues and topics, and must be
// well formed.
func testErrorsNames(e *env) {
	ctx := e.ctx
	q := e.queue("q", chute.QueueConfig{})
	topic := e.topic("t")
	e.wantErr("create a queue twice", e.api.CreateQueue(ctx, q, chute.QueueConfig{}), chute.ErrExists)
	e.wantErr("a topic named like a queue", e.api.CreateTopic(ctx, q, chute.TopicConfig{}), chute.ErrExists)
	e.wantErr("a queue named like a topic", e.api.CreateQueue(ctx, topic, chute.QueueConfig{}), chute.ErrExists)
	e.wantErr("a topic twice", e.api.CreateTopic(ctx, topic, chute.TopicConfig{}), chute.ErrExists)
	e.wantErr("a subscription named like a queue", e.api.Subscribe(ctx, topic, q, chute.SubscriptionConfig{}), chute.ErrExists)

	bad := []string{"", "a b", ".hidden", "-dash", "slash/name", "ünïcode", "tab\tname", strings.Repeat("n", 201)}
	for _, name := range bad {
		e.wantErr("create queue "+name, e.api.CreateQueue(ctx, name, chute.QueueConfig{}), chute.ErrInvalidName)
		e.wantErr("create topic "+name, e.api.CreateTopic(ctx, name, chute.TopicConfig{}), chute.ErrInvalidName)
	}
	e.wantErr("subscribe with a bad name", e.api.Subscribe(ctx, topic, "bad name", chute.SubscriptionConfig{}), chute.ErrInvalidName)
	// The boundary cases that are fine.
	e.queue("a.b-c_D9", chute.QueueConfig{})
	e.queue(strings.Repeat("n", 200-len(e.prefix)-len(".dlq")), chute.QueueConfig{}) // its dead-letter queue's name is 200 bytes
}

// testErrorsReceipts: a receipt that no longer names a lease fails with
// ErrStaleReceipt inside a *chute.ReceiptErrors, and only that receipt:
// the others of the call are applied.
func testErrorsReceipts(e *env) {
	ctx := e.ctx
	q := e.queue("q", chute.QueueConfig{})
	e.publish(q, msg("a"), msg("b"), msg("c"))
	ds := e.ready(q, 3)
	e.ack(q, ds[0])

	rs := []string{ds[0].Receipt}
	e.wantReceiptErr("ack twice", e.api.Ack(ctx, q, rs...), chute.ErrStaleReceipt, rs, 0)
	rs = []string{ds[1].Receipt, ds[0].Receipt}
	e.wantReceiptErr("ack of a fresh and a stale receipt", e.api.Ack(ctx, q, rs...), chute.ErrStaleReceipt, rs, 1)
	e.wantDepth(q, 0, 0, 1) // b was acked all the same
	rs = []string{ds[0].Receipt, ds[2].Receipt}
	e.wantReceiptErr("nack", e.api.Nack(ctx, q, chute.Nack{Receipt: rs[0]}, chute.Nack{Receipt: rs[1], Delay: -1}),
		chute.ErrStaleReceipt, rs, 0)
	e.wantDepth(q, 1, 0, 0) // c was nacked all the same
	rs = []string{ds[1].Receipt}
	e.wantReceiptErr("extend", e.api.Extend(ctx, q, time.Minute, rs...), chute.ErrStaleReceipt, rs, 0)

	rs = []string{"not a receipt"}
	e.wantReceiptErr("malformed receipt", e.api.Ack(ctx, q, rs...), chute.ErrInvalidReceipt, rs, 0)

	// A receipt of a queue that was deleted does not match a new queue of
	// the same name.
	c := e.receiveOne(q)
	if err := e.api.DeleteQueue(ctx, q); err != nil {
		e.t.Fatalf("delete: %v", err)
	}
	e.queue("q", chute.QueueConfig{})
	e.publish(q, msg("new"))
	rs = []string{c.Receipt}
	err := e.api.Ack(ctx, q, rs...)
	if err == nil {
		e.t.Fatal("a receipt of a deleted queue acked a message of its successor")
	}
	e.wantErr("receipt of a deleted queue", err, chute.ErrStaleReceipt)
	e.wantDepth(q, 1, 0, 0)
}

// testErrorsInvalid: bad messages and configurations are refused with
// typed errors, and nothing is stored.
func testErrorsInvalid(e *env) {
	ctx := e.ctx
	q := e.queue("q", chute.QueueConfig{})
	for what, m := range map[string]chute.Message{
		"priority 10":        {Priority: 10},
		"priority -1":        {Priority: -1},
		"negative delay":     {Delay: -time.Second},
		"negative TTL":       {TTL: -time.Second},
		"empty header name":  {Headers: map[string]string{"": "v"}},
		"a huge header name": {Headers: map[string]string{strings.Repeat("h", 10000): "v"}},
	} {
		_, err := e.api.Publish(ctx, q, msg("ok"), m)
		e.wantErr(what, err, chute.ErrInvalidMessage)
	}
	_, err := e.api.Publish(ctx, q, chute.Message{Body: make([]byte, 2<<20)})
	e.wantErr("a 2 MiB message", err, chute.ErrMessageTooLarge)
	e.wantDepth(q, 0, 0, 0)

	for what, cfg := range map[string]chute.QueueConfig{
		"a visibility timeout of a year": {VisibilityTimeout: 365 * 24 * time.Hour},
		"a negative visibility timeout":  {VisibilityTimeout: -time.Second},
		"max deliveries above 10,000":    {MaxDeliveries: 20000},
		"a jitter above 1":               {Backoff: chute.Backoff{Jitter: 2}},
	} {
		e.wantErr(what, e.api.CreateQueue(ctx, e.name("bad"), cfg), chute.ErrInvalidConfig)
		e.wantErr("update to "+what, e.api.UpdateQueue(ctx, q, cfg), chute.ErrInvalidConfig)
	}
	_, err = e.api.QueueStats(ctx, e.name("bad"))
	e.wantErr("a refused queue", err, chute.ErrQueueNotFound)
}
