package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestLookupHolder: GetMessage names the client holding a message's lease
// (its client ID and address), for a unary Receive and for a Consume
// stream, and no holder once the message is settled.
func TestLookupHolder(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	_, addr := startServer(t, b, server.Options{})
	c := dial(t, addr, client.WithClientID("worker-7"))
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Receive(ctx, "q", chute.ReceiveOptions{Max: 1, Wait: -1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	info, err := c.GetMessage(ctx, "q", chute.MessageRef{Seq: ds[0].Seq})
	if err != nil {
		t.Fatal(err)
	}
	if info.State != chute.MessageInFlight || !strings.HasPrefix(info.Holder, "worker-7 (127.0.0.1:") {
		t.Fatalf("unary receive: state %v, holder %q", info.State, info.Holder)
	}

	// A Runner of another client takes the other message over a Consume
	// stream and holds it in its handler.
	c2 := dial(t, addr, client.WithClientID("streamer"))
	got := make(chan uint64, 1)
	release := make(chan struct{})
	rctx, stop := context.WithCancel(ctx)
	r := client.NewRunner(c2, "q", func(_ context.Context, d chute.Delivery) error {
		got <- d.Seq
		<-release
		return nil
	}, client.RunnerOptions{Concurrency: 1, Prefetch: 1})
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	seq := <-got
	info, err = c.GetMessage(ctx, "q", chute.MessageRef{Seq: seq})
	if err != nil {
		t.Fatal(err)
	}
	if info.State != chute.MessageInFlight || !strings.HasPrefix(info.Holder, "streamer (127.0.0.1:") {
		t.Fatalf("stream: state %v, holder %q", info.State, info.Holder)
	}
	close(release)
	chutetest.Eventually(t, "the runner's ack", func() bool {
		info, err := c.GetMessage(ctx, "q", chute.MessageRef{Seq: seq})
		return err == nil && info.State == chute.MessageAcked && info.Holder == ""
	})
	stop()
	<-done
}
