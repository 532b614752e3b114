package server_test

import (
	"errors"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/server"
)

// TestAlertAttributes: queue attributes override alert rules per queue
// through the admin API. With queue_depth > 5 for everyone, a queue whose
// attribute raises its threshold to 100 does not fire at 10 messages while
// its neighbour does; removing the attribute makes it fire too; bad
// attributes are refused when the queue is created.
func TestAlertAttributes(t *testing.T) {
	depth := alerts.Quantity(5)
	zero := alerts.Duration(0)
	cfg := alerts.Config{Rules: map[string]alerts.Override{alerts.RuleQueueDepth: {Threshold: &depth, For: &zero}}}
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	srv, addr := startServer(t, b, server.Options{Clock: fakeclock.New(), Alerts: &server.AlertOptions{Config: cfg}})
	c := dial(t, addr)
	big := chute.QueueConfig{Attributes: map[string]string{"alert.queue_depth.threshold": "100", "team": "x"}}
	if err := c.CreateQueue(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateQueue(ctx, "small", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	msgs := make([]chute.Message, 10)
	for _, q := range []string{"big", "small"} {
		if _, err := c.Publish(ctx, q, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	firingQueues := func() []string {
		srv.EvaluateAlerts()
		firing, _, _ := srv.Alerts()
		var qs []string
		for _, a := range firing {
			if a.Rule == alerts.RuleQueueDepth {
				qs = append(qs, a.Queue)
			}
		}
		return qs
	}
	if got := firingQueues(); len(got) != 1 || got[0] != "small" {
		t.Fatalf("firing for %v, want [small]", got)
	}
	if err := c.UpdateQueue(ctx, "big", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if got := firingQueues(); len(got) != 2 {
		t.Fatalf("after removing big's attribute: firing for %v, want both", got)
	}

	for _, bad := range []map[string]string{
		{"alert.queue_depth.threshold": "lots"},
		{"alert.no_such_rule.threshold": "5"},
		{"alert.confirm_p99.threshold": "1s"}, // broker-wide: not per queue
	} {
		err := c.CreateQueue(ctx, "bad", chute.QueueConfig{Attributes: bad})
		if !errors.Is(err, chute.ErrInvalidConfig) {
			t.Errorf("attributes %v: %v, want ErrInvalidConfig", bad, err)
		}
	}
}
