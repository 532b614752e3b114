package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/server"
)

// countsOf returns queue's consumers and producers from Server.QueueClients.
func countsOf(srv *server.Server, queue string) (consumers, producers int) {
	for _, q := range srv.QueueClients() {
		if q.Queue == queue {
			return q.Consumers, q.Producers
		}
	}
	return 0, 0
}

// TestActiveClients: a unary caller counts for 60 s after its last call,
// on the server's clock; a Consume stream counts while it is open,
// however long; ListConsumers shows who holds how many leases.
func TestActiveClients(t *testing.T) {
	clock := fakeclock.New()
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, b, server.Options{Clock: clock})
	producer := dial(t, addr, client.WithClientID("producer-1"))
	consumer := dial(t, addr, client.WithClientID("consumer-1"))
	if _, err := producer.Publish(ctx, "q", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.Receive(ctx, "q", chute.ReceiveOptions{Max: 1, Wait: -1}); err != nil {
		t.Fatal(err)
	}
	if c, p := countsOf(srv, "q"); c != 1 || p != 1 {
		t.Fatalf("after one publish and one receive: %d consumers, %d producers; want 1, 1", c, p)
	}
	clock.Advance(59 * time.Second)
	if c, p := countsOf(srv, "q"); c != 1 || p != 1 {
		t.Fatalf("59 s later: %d consumers, %d producers; want 1, 1", c, p)
	}
	clock.Advance(time.Second)
	if c, p := countsOf(srv, "q"); c != 0 || p != 0 {
		t.Fatalf("60 s later: %d consumers, %d producers; want 0, 0", c, p)
	}

	// A Consume stream, with its own client ID, holding one lease.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	t.Cleanup(hc.CloseIdleConnections)
	mc := chutev1connect.NewMessageServiceClient(hc, "http://"+addr)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream := mc.Consume(sctx)
	stream.RequestHeader().Set(server.ClientIDHeader, "stream-1")
	if err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Start{
		Start: &chutev1.ConsumeStart{Queue: "q", Credit: 1}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDeliveries()) != 1 {
		t.Fatalf("Consume sent %v, want one delivery", resp)
	}
	clock.Advance(10 * time.Minute) // an open stream counts however long
	if c, p := countsOf(srv, "q"); c != 1 || p != 0 {
		t.Fatalf("with a Consume stream open: %d consumers, %d producers; want 1, 0", c, p)
	}
	got, err := producer.Consumers(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if got.Consumers != 1 || got.Producers != 0 || len(got.Clients) != 1 {
		t.Fatalf("ListConsumers: %+v", got)
	}
	if cl := got.Clients[0]; cl.ClientID != "stream-1" || !cl.Consumer || cl.ConsumeStreams != 1 || cl.Leases != 1 || cl.Address == "" {
		t.Fatalf("ListConsumers client: %+v", cl)
	}
	if _, err := producer.Consumers(ctx, "nope"); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("ListConsumers of a missing queue: %v", err)
	}

	stream.CloseRequest()
	stream.CloseResponse()
	chutetest.Eventually(t, "the closed stream to stop counting", func() bool {
		c, _ := countsOf(srv, "q")
		return c == 0
	})

	// A caller without a client ID counts by its address.
	raw := chutev1connect.NewMessageServiceClient(hc, "http://"+addr)
	if _, err := raw.Publish(ctx, connect.NewRequest(&chutev1.PublishRequest{Target: "q",
		Messages: []*chutev1.Message{{Body: []byte("c")}}})); err != nil {
		t.Fatal(err)
	}
	got, err = producer.Consumers(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if got.Producers != 1 || len(got.Clients) != 1 || got.Clients[0].ClientID != "" || got.Clients[0].Address == "" {
		t.Fatalf("ListConsumers after an anonymous publish: %+v", got)
	}
}

// TestQueueStatsClientsAndLatency: GetQueue and ListQueues carry the
// server's consumer and producer counts and the broker's latencies.
func TestQueueStatsClientsAndLatency(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	for _, q := range []string{"q", "idle"} {
		if err := b.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := startServer(t, b, server.Options{})
	producer := dial(t, addr, client.WithClientID("producer-1"))
	consumer := dial(t, addr, client.WithClientID("consumer-1"))
	if _, err := producer.Publish(ctx, "q", chute.Message{Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	ds, err := consumer.Receive(ctx, "q", chute.ReceiveOptions{Max: 1, Wait: -1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive: %v, %v", ds, err)
	}
	if err := consumer.Ack(ctx, "q", ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	check := func(what string, st chute.QueueStats) {
		t.Helper()
		if st.Consumers != 1 || st.Producers != 1 {
			t.Fatalf("%s: %d consumers, %d producers; want 1, 1", what, st.Consumers, st.Producers)
		}
		l := st.Latency
		if l.Wait.Count != 1 || l.Processing.Count != 1 || l.Completion.Count != 1 {
			t.Fatalf("%s: latency counts %+v; want 1 each", what, l)
		}
		if l.Completion.P99 <= 0 {
			t.Fatalf("%s: completion latency %+v; want a positive p99", what, l.Completion)
		}
	}
	st, err := producer.QueueStats(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	check("GetQueue", st)
	qs, err := producer.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		switch q.Name {
		case "q":
			check("ListQueues", q)
		case "idle":
			if q.Consumers != 0 || q.Producers != 0 || q.Latency.Wait.Count != 0 {
				t.Fatalf("ListQueues idle: %+v", q)
			}
		}
	}
	if emb, err := b.QueueStats(ctx, "q"); err != nil || emb.Consumers != 0 || emb.Producers != 0 {
		t.Fatalf("embedded broker: %d consumers, %d producers, %v; want 0, 0", emb.Consumers, emb.Producers, err)
	}
}
