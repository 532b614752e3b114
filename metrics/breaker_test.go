package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

// TestMetricsBreakerState: chute_queue_breaker_state says 0 delivering,
// 1 open, 3 paused; the transitions are counted by the state entered.
func TestMetricsBreakerState(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	for name, cfg := range map[string]chute.QueueConfig{
		"plain":   {},
		"paused":  {},
		"tripped": {Breaker: chute.Breaker{Enabled: true, MinDeliveries: 2}},
	} {
		if err := b.CreateQueue(ctx, name, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.PauseQueue(ctx, "paused"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "tripped", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	ds, err := b.Receive(ctx, "tripped", chute.ReceiveOptions{Max: 2, Wait: -1})
	if err != nil || len(ds) != 2 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	for _, d := range ds {
		if err := b.Nack(ctx, "tripped", chute.Nack{Receipt: d.Receipt}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	chutetest.Eventually(t, "the breaker to open", func() bool {
		s, _ := b.QueueStats(ctx, "tripped")
		return s.Breaker == chute.BreakerOpen
	})
	addr := chutetest.StartServer(t, b, server.Options{Metrics: metrics.Handler(b, metrics.Options{})})
	fams, _ := scrape(t, addr, "")
	for q, want := range map[string]float64{"plain": 0, "paused": 3, "tripped": 1} {
		if got := value(t, fams, "chute_queue_breaker_state", "queue", q); got != want {
			t.Errorf("chute_queue_breaker_state{queue=%q} = %v, want %v", q, got, want)
		}
	}
	for to, want := range map[string]float64{"open": 1, "half-open": 0, "closed": 0} {
		if got := value(t, fams, "chute_breaker_transitions_total", "to", to); got != want {
			t.Errorf("chute_breaker_transitions_total{to=%q} = %v, want %v", to, got, want)
		}
	}
}
