package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestAlertFiresAndResolves: a rules file with queue_depth > 5, for 0s;
// ten messages make it fire (Server.Alerts, ListAlerts, the metric);
// acking them all makes it resolve once clear for resolve_for on the
// server's (fake) clock. The test drives evaluation with EvaluateAlerts.
func TestAlertFiresAndResolves(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  queue_depth:\n    threshold: 5\n    for: 0s\n    resolve_for: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := alerts.LoadConfig(rules)
	if err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New()
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "orders", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	var notified []alerts.Alert // the evaluator calls notifiers one at a time
	srv, addr := startServer(t, b, server.Options{Clock: clock, Metrics: metrics.Handler(b, metrics.Options{}),
		Alerts: &server.AlertOptions{Config: cfg, Notifiers: []alerts.Notifier{alerts.NotifierFunc(func(a alerts.Alert) {
			notified = append(notified, a)
		})}}})
	c := dial(t, addr)
	msgs := make([]chute.Message, 10)
	for i := range msgs {
		msgs[i] = chute.Message{Body: []byte("m")}
	}
	if _, err := c.Publish(ctx, "orders", msgs...); err != nil {
		t.Fatal(err)
	}
	srv.EvaluateAlerts()
	firing, _, enabled := srv.Alerts()
	if !enabled || len(firing) != 1 || firing[0].Rule != "queue_depth" || firing[0].Queue != "orders" || firing[0].Value != 10 {
		t.Fatalf("after 10 messages: enabled %v, firing %+v", enabled, firing)
	}
	got, err := c.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Enabled || len(got.Firing) != 1 || got.Firing[0].Rule != "queue_depth" || got.Firing[0].Status != "firing" || got.Firing[0].Started.IsZero() {
		t.Fatalf("ListAlerts: %+v", got)
	}
	const line = `chute_alert_firing{alertname="queue_depth",queue="orders",severity="warning"} 1`
	if m := scrape(t, addr); !strings.Contains(m, line) {
		t.Fatalf("/metrics lacks %s", line)
	}

	ds, err := c.Receive(ctx, "orders", chute.ReceiveOptions{Max: 10, Wait: -1})
	if err != nil || len(ds) != 10 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	receipts := make([]string, len(ds))
	for i, d := range ds {
		receipts[i] = d.Receipt
	}
	if err := c.Ack(ctx, "orders", receipts...); err != nil {
		t.Fatal(err)
	}
	srv.EvaluateAlerts() // clear from now
	if firing, _, _ := srv.Alerts(); len(firing) != 1 {
		t.Fatalf("resolved before resolve_for: %+v", firing)
	}
	clock.Advance(10 * time.Second)
	srv.EvaluateAlerts()
	got, err = c.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Firing) != 0 || len(got.Resolved) != 1 || got.Resolved[0].Status != "resolved" || got.Resolved[0].Resolved.IsZero() {
		t.Fatalf("ListAlerts after acking: %+v", got)
	}
	if m := scrape(t, addr); strings.Contains(m, "chute_alert_firing{") {
		t.Fatal("/metrics still shows a firing alert")
	}
	if !strings.Contains(scrape(t, addr), `chute_queue_consumers{queue="orders"} 1`) {
		t.Error(`/metrics lacks chute_queue_consumers{queue="orders"} 1`)
	}
	// The loop may have evaluated too when the clock moved (its timer):
	// each alert is notified once either way.
	srv.Shutdown(context.Background())
	if len(notified) != 2 || notified[0].Status != alerts.StatusFiring || notified[1].Status != alerts.StatusResolved {
		t.Fatalf("notified %+v", notified)
	}
}

// TestAlertLoopStops: Serve starts the alert loop and Shutdown stops it:
// no goroutine of the server's is left.
func TestAlertLoopStops(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := server.New(b, server.Options{Alerts: &server.AlertOptions{Interval: time.Millisecond}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	chutetest.Eventually(t, "the loop to evaluate", func() bool {
		_, _, enabled := srv.Alerts()
		return enabled && len(srv.Stats().Requests) == 0 // at least started
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
}

// TestAlertsOff: without AlertOptions nothing is evaluated.
func TestAlertsOff(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{})
	srv.EvaluateAlerts()
	got, err := dial(t, addr).Alerts(chutetest.Ctx(t))
	if err != nil || got.Enabled {
		t.Fatalf("ListAlerts without alerts: %+v, %v", got, err)
	}
}
