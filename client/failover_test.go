package client_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// follower is a cluster node that does not lead: it refuses every
// publish, naming the leader.
type follower struct {
	chute.API
	leader string
}

func (f follower) Publish(context.Context, string, ...chute.Message) ([]chute.PublishResult, error) {
	return nil, &chute.LeaderError{Addr: f.leader}
}

// Receive refuses too: a Consume stream opened here ends at once.
func (f follower) Receive(context.Context, string, chute.ReceiveOptions) ([]chute.Delivery, error) {
	return nil, &chute.LeaderError{Addr: f.leader}
}

// leaderAndFollower serves a broker (the leader) and a follower that
// names it; it returns the broker and the follower's address.
func leaderAndFollower(t *testing.T) (chute.API, string) {
	b := chutetest.MustOpen(t, "", nil)
	leader := chutetest.StartServer(t, b, server.Options{})
	return b, chutetest.StartServer(t, follower{API: b, leader: "http://" + leader}, server.Options{})
}

// consumeOne publishes "a" to a new queue q of b, and receives it with a
// Consumer of a Client dialled at addr (closed with the test).
func consumeOne(ctx context.Context, t *testing.T, b chute.API, addr, how string) (*client.Consumer, []chute.Delivery) {
	t.Helper()
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "q", chute.Message{Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cons := client.NewConsumer(c, "q", client.ConsumerOptions{})
	t.Cleanup(func() { cons.Close() })
	ds, err := cons.Receive(ctx, 1)
	if err != nil || len(ds) != 1 || string(ds[0].Body) != "a" {
		t.Fatalf("receive %s: %v %+v", how, err, ds)
	}
	return cons, ds
}

// dialProducer returns a Producer of queue q through a Client dialled at
// addr, retrying every retry; both are closed with the test.
func dialProducer(ctx context.Context, t *testing.T, addr string, retry time.Duration) *client.Producer {
	t.Helper()
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := client.NewProducer(c, "q", client.ProducerOptions{RetryDelay: retry, RetryMaxDelay: retry})
	t.Cleanup(func() { p.Close(context.WithoutCancel(ctx)) })
	return p
}

// TestConsumerFollowsLeader: a Consumer whose stream a follower refuses
// opens it again at the leader within the same Receive, which returns
// the leader's message rather than the refusal.
func TestConsumerFollowsLeader(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b, addr := leaderAndFollower(t)
	cons, ds := consumeOne(ctx, t, b, addr, "through a follower")
	if err := cons.Ack(ctx, ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
}

// TestFollowsLeader: a Client dialled at a follower sends the refused
// call to the leader it names, over every protocol, and stays there.
func TestFollowsLeader(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			b := chutetest.MustOpen(t, "", nil)
			leader := chutetest.StartServer(t, b, server.Options{})
			addr := chutetest.StartServer(t, follower{API: b, leader: "http://" + leader}, server.Options{})
			c, err := client.Dial(addr, p.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil { // the follower's own API takes it
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("a")}); err != nil {
				t.Fatalf("publish through a follower: %v", err)
			}
			// Now at the leader: the next publish is not refused at all.
			if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("b")}); err != nil {
				t.Fatal(err)
			}
			if st, err := b.QueueStats(ctx, "q"); err != nil || st.Ready != 2 {
				t.Fatalf("the leader holds %+v, %v", st, err)
			}
		})
	}
}

// TestTriesEndpoints: a Client whose target refuses connections tries its
// other endpoints; without any, the call fails.
func TestTriesEndpoints(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, "", nil)
	live := chutetest.StartServer(t, b, server.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there any more
	c, err := client.Dial(dead, client.WithEndpoints(live))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatalf("with an endpoint that answers: %v", err)
	}
	alone, err := client.Dial(dead)
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	if err := alone.CreateQueue(ctx, "r", chute.QueueConfig{}); err == nil || errors.Is(err, chute.ErrExists) {
		t.Fatalf("without endpoints, a dead target: %v", err)
	}
}

// TestProducerFollowsLeader: a Producer whose stream a follower refuses
// (the follower ends it, naming the leader) sends its batch again to the
// leader at once, not after its retry back-off (an hour here).
func TestProducerFollowsLeader(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b, addr := leaderAndFollower(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	p := dialProducer(ctx, t, addr, time.Hour)
	f, err := p.Publish(ctx, chute.Message{Body: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.Wait(short); err != nil {
		t.Fatalf("a producer dialled at a follower: %v", err)
	}
	if st, err := b.QueueStats(ctx, "q"); err != nil || st.Ready != 1 {
		t.Fatalf("the leader holds %+v, %v", st, err)
	}
}

// electing is a node during an election: its first refusals name no
// leader; then it serves.
type electing struct {
	chute.API
	refusals atomic.Int64 // left to give
}

func (e *electing) Receive(ctx context.Context, queue string, opts chute.ReceiveOptions) ([]chute.Delivery, error) {
	if e.refusals.Add(-1) >= 0 {
		return nil, &chute.LeaderError{}
	}
	return e.API.Receive(ctx, queue, opts)
}

// TestConsumerWaitsOutElection: a Consumer whose stream is refused while
// no leader is known (an election, a leadership handed over) opens it
// again shortly, within the same Receive, instead of failing it.
func TestConsumerWaitsOutElection(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, "", nil)
	e := &electing{API: b}
	e.refusals.Store(3)
	consumeOne(ctx, t, b, chutetest.StartServer(t, e, server.Options{}), "through an election")
	if left := e.refusals.Load(); left >= 0 {
		t.Fatalf("%d refusals not given: the stream was not refused", left+1)
	}
}

// deposed is a cluster's leader losing its leadership during publishes:
// its first stored calls store the batch and answer ErrOutcomeUnknown
// (the next leader applied it), the dropped ones after them answer it
// without storing (it was lost); then it serves.
type deposed struct {
	chute.API
	stored, dropped atomic.Int64 // left to give
}

func (d *deposed) Publish(ctx context.Context, queue string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	if d.stored.Add(-1) >= 0 {
		if _, err := d.API.Publish(ctx, queue, msgs...); err != nil {
			return nil, err
		}
		return nil, chute.ErrOutcomeUnknown
	}
	if d.dropped.Add(-1) >= 0 {
		return nil, chute.ErrOutcomeUnknown
	}
	return d.API.Publish(ctx, queue, msgs...)
}

// TestProducerRetriesOutcomeUnknown: a Producer whose batches are
// answered "outcome unknown" in its stream (a leader deposed during the
// call) sends them again, and its session stores each message once,
// whether the first attempt was stored or lost. (Seen to fail before the
// stream's status counted as transient: the futures failed with the
// answer, and a cluster's backlog fill lost 2,048 publishes of 200,000
// to an election.)
func TestProducerRetriesOutcomeUnknown(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, "", nil)
	d := &deposed{API: b}
	d.stored.Store(2)
	d.dropped.Store(2)
	addr := chutetest.StartServer(t, d, server.Options{})
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	p := dialProducer(ctx, t, addr, time.Millisecond)
	const n = 6
	for i := range n {
		f, err := p.Publish(ctx, chute.Message{Body: []byte{byte('a' + i)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if d.stored.Load() > 0 || d.dropped.Load() > 0 {
		t.Fatalf("the refusals were not all given: %d stored, %d dropped left", d.stored.Load(), d.dropped.Load())
	}
	ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 2 * n, Wait: -1})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, m := range ds {
		got += string(m.Body)
	}
	if got != "abcdef" {
		t.Fatalf("the queue holds %q, want each message once, in order: \"abcdef\"", got)
	}
}
