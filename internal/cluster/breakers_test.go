package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// TestBreaker: a queue's circuit breaker in a cluster opens when half of
// its deliveries fail, holds deliveries back, half-opens after its
// cool-down and lets one probe out (no more while it is out), and closes
// once the probe is acked; every transition is replicated.
func TestBreaker(t *testing.T) {
	ctx := context.Background()
	c := newTestCluster(t, 3)
	api := NewAPI(c.leader().node)
	cfg := chute.QueueConfig{MaxDeliveries: 100, Breaker: chute.Breaker{Enabled: true, Threshold: 0.5, Window: 10 * time.Second,
		MinDeliveries: 4, Cooldown: 500 * time.Millisecond, Probes: 1}}
	if err := api.CreateQueue(ctx, "q", cfg); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := api.Publish(ctx, "q", chute.Message{Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	receive := func(max int) []chute.Delivery {
		t.Helper()
		ds, err := api.Receive(ctx, "q", chute.ReceiveOptions{Max: max, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	waitFor := func(st chute.BreakerState) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s, err := api.QueueStats(ctx, "q")
			if err == nil && s.Breaker == st {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("breaker %v within 5 s, want %v (%v)", s.Breaker, st, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the leader's breaker tick
		}
	}
	ds := receive(4)
	for _, d := range ds {
		if err := api.Nack(ctx, "q", chute.Nack{Receipt: d.Receipt, Delay: -1, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(chute.BreakerOpen)
	if ds := receive(10); len(ds) != 0 {
		t.Fatalf("an open breaker delivered %d", len(ds))
	}
	waitFor(chute.BreakerHalfOpen)
	probe := receive(10)
	if len(probe) != 1 {
		t.Fatalf("a half-open breaker with one probe delivered %d", len(probe))
	}
	if ds := receive(10); len(ds) != 0 {
		t.Fatalf("a second probe went out: %d", len(ds))
	}
	if err := api.Ack(ctx, "q", probe[0].Receipt); err != nil {
		t.Fatal(err)
	}
	waitFor(chute.BreakerClosed)
	if ds := receive(10); len(ds) != 9 {
		t.Fatalf("after the breaker closed: %d delivered, want 9", len(ds))
	}
	c.converge(nil)
}
