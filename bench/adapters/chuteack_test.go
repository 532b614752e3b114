package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/broker"
)

// gatedAcks is a chute.API whose Ack calls wait for gate, announcing each
// on entered first.
type gatedAcks struct {
	chute.API
	entered chan int
	gate    chan struct{}
}

func (g gatedAcks) Ack(ctx context.Context, queue string, receipts ...string) error {
	g.entered <- len(receipts)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.API.Ack(ctx, queue, receipts...)
}

// TestChuteAckFreesWhenSent: a chute consumer's prefetch counts an ack
// until it is sent, not until its answer comes back, as NATS's
// MaxAckPending counts it until the server has it and chute's Runner
// settles without waiting. With the prefetch held by messages whose ack is
// out, the next Receive gets more at once.
func TestChuteAckFreesWhenSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	api := gatedAcks{API: b, entered: make(chan int, 4), gate: make(chan struct{})}
	q, err := adapters.NewChuteAPI("gated", api).NewQueue(ctx, adapters.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := q.Publish(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := q.(adapters.Streams).NewConsumer(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Receive(ctx, 5*time.Second)
	if err != nil || len(first) != 2 {
		t.Fatalf("first receive: %d messages, %v", len(first), err)
	}
	if err := c.Ack(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := <-api.entered; n != 2 {
		t.Fatalf("the ack sent %d receipts, want 2", n)
	}
	// The ack is out and unanswered: the prefetch has room again.
	second, err := c.Receive(ctx, 5*time.Second)
	if err != nil || len(second) != 2 {
		t.Fatalf("receive while the ack is out: %d messages, %v", len(second), err)
	}
	close(api.gate)
	if err := c.Ack(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}
