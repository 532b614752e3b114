package server_test

import (
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/server"
)

// rateOf returns the publish and receive rates of one client on queue.
func rateOf(t *testing.T, srv *server.Server, queue, id string) (pub, recv float64) {
	t.Helper()
	for _, c := range srv.Clients(queue) {
		if c.ClientID == id {
			return c.PublishRate, c.ReceiveRate
		}
	}
	t.Fatalf("no client %s on %s", id, queue)
	return 0, 0
}

// TestClientRates: each client's messages published and received per
// second over the last minute, on the server's clock — unary calls and
// a PublishStream — through ListConsumers too; a minute later they are
// gone from the rate.
func TestClientRates(t *testing.T) {
	clock := fakeclock.New()
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, b, server.Options{Clock: clock})
	producer := dial(t, addr, client.WithClientID("p"))
	consumer := dial(t, addr, client.WithClientID("c"))
	msgs := make([]chute.Message, 60)
	var err error
	if _, err = producer.Publish(ctx, "q", msgs...); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	// 60 more through a PublishStream (the Producer), 30 s later.
	pr := client.NewProducer(producer, "q", client.ProducerOptions{})
	futures := make([]*client.Future, 60)
	for i := range futures {
		if futures[i], err = pr.Publish(ctx, chute.Message{Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range futures {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ds, err := consumer.Receive(ctx, "q", chute.ReceiveOptions{Max: 30, Wait: -1})
	if err != nil || len(ds) != 30 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	if pub, recv := rateOf(t, srv, "q", "p"); pub != 2 || recv != 0 {
		t.Fatalf("producer: %v published/s, %v received/s; want 2 (120 in a minute), 0", pub, recv)
	}
	if pub, recv := rateOf(t, srv, "q", "c"); pub != 0 || recv != 0.5 {
		t.Fatalf("consumer: %v published/s, %v received/s; want 0, 0.5 (30 in a minute)", pub, recv)
	}
	qc, err := consumer.Consumers(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range qc.Clients {
		if c.ClientID == "p" && c.PublishRate != 2 || c.ClientID == "c" && c.ReceiveRate != 0.5 {
			t.Fatalf("ListConsumers: %+v", c)
		}
	}
	// 40 s on, the first 60 (published 70 s ago) have left the window.
	clock.Advance(40 * time.Second)
	if pub, _ := rateOf(t, srv, "q", "p"); pub != 1 {
		t.Fatalf("producer 40 s later: %v published/s, want 1", pub)
	}
}
