package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/server"
)

func TestQueueConsumers(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "orders")
	c, err := client.Dial(s.addr, client.WithClientID("worker-7"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Publish(ctx, "orders", chute.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Receive(ctx, "orders", chute.ReceiveOptions{Max: 1, Wait: -1}); err != nil {
		t.Fatal(err)
	}
	out := s.must("queue", "consumers", "orders")
	if !strings.Contains(out, "orders: 1 consumer(s), 1 producer(s)") || !strings.Contains(out, "worker-7") ||
		!strings.Contains(out, "consumer,producer") {
		t.Fatalf("queue consumers printed\n%s", out)
	}
	j := parseJSON[consumersJSON](t, s.must("queue", "consumers", "orders", "--json"))
	if j.Consumers != 1 || j.Producers != 1 || len(j.Clients) != 1 || j.Clients[0].ClientID != "worker-7" {
		t.Fatalf("queue consumers --json: %+v", j)
	}
	s.wantExit(4, "queue", "consumers", "nope")
}
