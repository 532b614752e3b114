package server_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestBreakerOverTheWire: a breaker opened by failures shows in the
// stats a client reads and fires breaker_open; a queue paused through the
// API shows as paused and fires nothing; a resume closes the breaker and
// the alert resolves.
func TestBreakerOverTheWire(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  breaker_open: {for: 0s, resolve_for: 0s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := alerts.LoadConfig(rules)
	if err != nil {
		t.Fatal(err)
	}
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	srv, addr := startServer(t, b, server.Options{Clock: clock, Alerts: &server.AlertOptions{Config: cfg}})
	c := dial(t, addr)
	ctx := chutetest.Ctx(t)
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{Breaker: chute.Breaker{Enabled: true, MinDeliveries: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateQueue(ctx, "held", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := c.PauseQueue(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Receive(ctx, "q", chute.ReceiveOptions{Max: 2, Wait: -1})
	if err != nil || len(ds) != 2 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	for _, d := range ds {
		if err := c.Nack(ctx, "q", chute.Nack{Receipt: d.Receipt}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	chutetest.Eventually(t, "the breaker to open", func() bool {
		s, err := c.QueueStats(ctx, "q")
		return err == nil && s.Breaker == chute.BreakerOpen
	})
	if s, err := c.QueueStats(ctx, "held"); err != nil || !s.Paused || s.Breaker != chute.BreakerClosed {
		t.Fatalf("paused queue over the wire: %+v, %v", s, err)
	}
	srv.EvaluateAlerts()
	firing, _, _ := srv.Alerts()
	if len(firing) != 1 || firing[0].Rule != alerts.RuleBreakerOpen || firing[0].Queue != "q" {
		t.Fatalf("firing %+v, want breaker_open for q alone", firing)
	}
	if err := c.ResumeQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.QueueStats(ctx, "q"); err != nil || s.Breaker != chute.BreakerClosed {
		t.Fatalf("after resume: %+v, %v", s.Breaker, err)
	}
	srv.EvaluateAlerts()
	if firing, resolved, _ := srv.Alerts(); len(firing) != 0 || len(resolved) != 1 {
		t.Fatalf("after resume: firing %+v, resolved %+v", firing, resolved)
	}
}
