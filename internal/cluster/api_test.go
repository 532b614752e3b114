package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/apitest"
	"github.com/chutemq/chute/internal/replica"
)

// TestAPI: chute.API over a three-node cluster: queue operations at the
// leader, a follower's LeaderError naming the leader, refusals of what is
// not replicated yet, receipts that fail once their lease is over.
func TestAPI(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	l := c.leader()
	api := NewAPI(l.node)
	if err := api.CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: time.Minute, MaxDeliveries: 3}); err != nil {
		t.Fatal(err)
	}
	if err := api.CreateQueue(ctx, "q", chute.QueueConfig{}); !errors.Is(err, chute.ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	msgs := []chute.Message{{Body: []byte("a"), ID: "a", Session: "s", SessionSeq: 1}, {Body: []byte("b"), ID: "b", Priority: 9, Session: "s", SessionSeq: 2}}
	res, err := api.Publish(ctx, "q", msgs...)
	if err != nil || len(res) != 2 || res[0].Duplicate {
		t.Fatalf("publish: %v %+v", err, res)
	}
	if again, err := api.Publish(ctx, "q", msgs...); err != nil || !again[0].Duplicate || again[1].Seq != res[1].Seq {
		t.Fatalf("the retried publish: %v %+v", err, again)
	}
	if _, err := api.Publish(ctx, "q", chute.Message{Body: []byte("x"), Headers: map[string]string{"": "v"}}); !errors.Is(err, chute.ErrInvalidMessage) {
		t.Fatalf("a header without a name: %v", err)
	}
	ds, err := api.Receive(ctx, "q", chute.ReceiveOptions{Max: 10, Lease: time.Minute, Wait: -1})
	if err != nil || len(ds) != 2 || string(ds[0].Body) != "b" || ds[0].Priority != 9 || ds[1].ID != "a" {
		t.Fatalf("receive: %v %+v", err, ds)
	}
	if err := api.Extend(ctx, "q", 2*time.Minute, ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := api.Nack(ctx, "q", chute.Nack{Receipt: ds[1].Receipt, Delay: -1}); err != nil {
		t.Fatal(err)
	}
	err = api.Ack(ctx, "q", ds[0].Receipt, ds[1].Receipt, "junk")
	var re *chute.ReceiptErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 2 || !errors.Is(re.Failed[0].Err, chute.ErrInvalidReceipt) {
		t.Fatalf("an ack with a bad receipt: %v", err)
	}
	err = api.Ack(ctx, "q", ds[0].Receipt, ds[1].Receipt)
	if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 || !errors.Is(re.Failed[0].Err, chute.ErrStaleReceipt) {
		t.Fatalf("ack of a nacked receipt: %v", err)
	}
	// a came back (nacked); a short wait finds it.
	ds, err = api.Receive(ctx, "q", chute.ReceiveOptions{Max: 10, Wait: time.Second})
	if err != nil || len(ds) != 1 || ds[0].ID != "a" || ds[0].Deliveries != 2 {
		t.Fatalf("redelivery: %v %+v", err, ds)
	}
	st, err := api.QueueStats(ctx, "q")
	if err != nil || st.InFlight != 1 || st.Ready != 0 || st.Config.MaxDeliveries != 3 {
		t.Fatalf("stats: %v %+v", err, st)
	}
	// A receive that waits and finds nothing returns empty, in time.
	if err := api.Ack(ctx, "q", ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ds, err := api.Receive(ctx, "q", chute.ReceiveOptions{Wait: 100 * time.Millisecond}); err != nil || len(ds) != 0 {
		t.Fatalf("an empty wait: %v %+v", err, ds)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("an empty wait returned after %v", el)
	}
	// Wait 0 waits until ctx ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := api.Receive(short, "q", chute.ReceiveOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a receive without a wait bound: %v", err)
	}
	// A follower refuses and names the leader.
	for id, m := range c.members {
		if id == l.id {
			continue
		}
		_, err := NewAPI(m.node).Publish(ctx, "q", chute.Message{Body: []byte("x")})
		var le *chute.LeaderError
		if !errors.As(err, &le) || le.Addr != c.peers[l.id] || !errors.Is(err, chute.ErrNotLeader) {
			t.Fatalf("a follower's publish: %v", err)
		}
		if _, err := NewAPI(m.node).QueueStats(ctx, "q"); !errors.Is(err, chute.ErrNotLeader) {
			t.Fatalf("a follower's stats: %v", err)
		}
	}
	// A receipt of a deleted and re-created queue settles nothing.
	api.Publish(ctx, "q", chute.Message{Body: []byte("c")})
	ds, _ = api.Receive(ctx, "q", chute.ReceiveOptions{Max: 1, Wait: -1})
	if err := api.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	api.CreateQueue(ctx, "q", chute.QueueConfig{})
	api.Publish(ctx, "q", chute.Message{Body: []byte("d")})
	api.Receive(ctx, "q", chute.ReceiveOptions{Max: 1, Wait: -1})
	if err := api.Ack(ctx, "q", ds[0].Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
		t.Fatalf("a receipt of the earlier queue: %v", err)
	}
}

// TestAPITopics: topics over a three-node cluster: a publish fans out to
// every subscription, a consumer waiting on one gets its copy, settings
// the commands do not carry are refused, and a follower has the same
// state.
func TestAPITopics(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	l := c.leader()
	api := NewAPI(l.node)
	if err := api.CreateTopic(ctx, "t", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := api.Subscribe(ctx, "t", "s1", chute.SubscriptionConfig{Queue: chute.QueueConfig{VisibilityTimeout: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if err := api.Subscribe(ctx, "t", "s2", chute.SubscriptionConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := api.Subscribe(ctx, "nope", "s4", chute.SubscriptionConfig{}); !errors.Is(err, chute.ErrTopicNotFound) {
		t.Fatalf("subscribe to no topic: %v", err)
	}
	// A consumer of s2 waits (parked at the leader) before the publish.
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, _ := api.Receive(ctx, "s2", chute.ReceiveOptions{Max: 10, Wait: 10 * time.Second})
		got <- ds
	}()
	waitParked(t, l.node, "s2", 1)
	if res, err := api.Publish(ctx, "t", chute.Message{ID: "m", Body: []byte("x")}); err != nil || len(res) != 1 {
		t.Fatalf("publish to the topic: %v %+v", err, res)
	}
	if ds := <-got; len(ds) != 1 || string(ds[0].Body) != "x" || ds[0].Queue != "s2" {
		t.Fatalf("the waiting consumer of s2 got %+v", ds)
	}
	ds, err := api.Receive(ctx, "s1", chute.ReceiveOptions{Max: 10, Wait: -1})
	if err != nil || len(ds) != 1 || ds[0].ID != "m" {
		t.Fatalf("s1: %v %+v", err, ds)
	}
	if err := api.Ack(ctx, "s1", ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	ts, err := api.Topics(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "t" || len(ts[0].Subscriptions) != 2 || ts[0].Published != 1 {
		t.Fatalf("topics: %v %+v", err, ts)
	}
	if err := api.Unsubscribe(ctx, "t", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.QueueStats(ctx, "s2"); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("an unsubscribed subscription's queue: %v", err)
	}
	if err := api.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	c.converge(nil) // every replica ends in the same state
}

// TestAPIDeadLetters: messages that used their deliveries are dead
// letters; Peek shows them without leasing them, Redrive sends some back,
// a paused queue delivers nothing until resumed, Purge drops the rest.
func TestAPIDeadLetters(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	api := NewAPI(c.leader().node)
	if err := api.CreateQueue(ctx, "d", chute.QueueConfig{VisibilityTimeout: time.Minute, MaxDeliveries: 1}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a", "b", "c"} {
		if _, err := api.Publish(ctx, "d", chute.Message{ID: b, Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := api.Receive(ctx, "d", chute.ReceiveOptions{Max: 10, Wait: -1})
	if err != nil || len(ds) != 3 {
		t.Fatalf("receive: %v %+v", err, ds)
	}
	var nacks []chute.Nack
	for _, d := range ds {
		nacks = append(nacks, chute.Nack{Receipt: d.Receipt, Delay: -1})
	}
	if err := api.Nack(ctx, "d", nacks...); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a peek leases nothing: twice the same
		ps, err := api.Peek(ctx, "d.dlq", 10)
		if err != nil || len(ps) != 3 || string(ps[0].Body) != "a" {
			t.Fatalf("peek at the dead letters: %v %+v", err, ps)
		}
	}
	if n, err := api.Redrive(ctx, "d.dlq", 2); err != nil || n != 2 {
		t.Fatalf("redrive 2: %d, %v", n, err)
	}
	if err := api.PauseQueue(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if ds, err := api.Receive(ctx, "d", chute.ReceiveOptions{Max: 10, Wait: -1}); err != nil || len(ds) != 0 {
		t.Fatalf("a paused queue delivered %+v, %v", ds, err)
	}
	if err := api.ResumeQueue(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if ds, err := api.Receive(ctx, "d", chute.ReceiveOptions{Max: 10, Wait: -1}); err != nil || len(ds) != 2 || string(ds[0].Body)+string(ds[1].Body) != "ab" {
		t.Fatalf("the redriven messages: %v %+v", err, ds)
	}
	if n, err := api.PurgeQueue(ctx, "d.dlq"); err != nil || n != 1 {
		t.Fatalf("purge the last dead letter: %d, %v", n, err)
	}
	if _, err := api.Redrive(ctx, "nope", 0); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("redrive of no queue: %v", err)
	}
}

// TestAPIConformance: the conformance suite every chute.API passes (the
// embedded broker, the client), against the leader of a three-node
// cluster: every check.
func TestAPIConformance(t *testing.T) {
	c := newTestCluster(t, 3)
	api := NewAPI(c.leader().node)
	apitest.Suite{NewAPI: func(*testing.T) chute.API { return api }}.Run(t)
}

// TestCompressionAtRest: a queue that stores bodies compressed gets them
// compressed by the leader before it proposes (the shard holds the zstd
// frame, every replica the same bytes), and delivered as published.
func TestCompressionAtRest(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	api := NewAPI(c.leader().node)
	if err := api.CreateQueue(ctx, "z", chute.QueueConfig{Compression: chute.CompressionZstd, CompressMin: 100}); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat(`{"user":"ada","action":"login"} `, 300))
	if _, err := api.Publish(ctx, "z", chute.Message{Body: body}); err != nil {
		t.Fatal(err)
	}
	var stored []replica.Delivery
	if err := c.leader().node.Read(ctx, func(sh *replica.Shard) { stored, _ = sh.Peek("z", 1) }); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || !stored[0].Zstd || len(stored[0].Body) >= len(body)/4 {
		t.Fatalf("stored %d bytes of %d, compressed %v", len(stored[0].Body), len(body), len(stored) == 1 && stored[0].Zstd)
	}
	ds, err := api.Receive(ctx, "z", chute.ReceiveOptions{Wait: -1})
	if err != nil || len(ds) != 1 || !bytes.Equal(ds[0].Body, body) {
		t.Fatalf("delivered %v", err)
	}
	c.converge(nil)
}
