package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

// scrape fetches /metrics from addr and parses it.
func scrape(t testing.TB, addr, token string) (map[string]*dto.MetricFamily, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams, len(body)
}

// value finds the series of family name with the given labels (name=value
// pairs) and returns its counter, gauge or histogram count.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestMetricsWorkload publishes 100 messages, acks 60 and nacks 40 with
// max deliveries 1 (so they die), and checks what a scrape over HTTP says.
func TestMetricsWorkload(t *testing.T) {
	sync := new(metrics.SyncHistogram)
	opts, _ := chutetest.MemOptions(nil)
	opts.OnSync = sync.Observe
	b := chutetest.MustOpen(t, "data", opts)
	ctx := context.Background()
	// work.dead opts into its detailed series by attribute; quiet asks
	// for nothing and gets the default series only.
	if err := b.CreateQueue(ctx, "work.dead", chute.QueueConfig{Attributes: map[string]string{metrics.DetailAttribute: "true"}}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateQueue(ctx, "work", chute.QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "work.dead"}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateQueue(ctx, "quiet", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "quiet", chute.Message{ID: "once"}, chute.Message{ID: "once"}); err != nil {
		t.Fatal(err)
	}
	msgs := make([]chute.Message, 100)
	for i := range msgs {
		msgs[i].Body = []byte(fmt.Sprint(i))
	}
	for i := 0; i < 100; i += 10 {
		if _, err := b.Publish(ctx, "work", msgs[i:i+10]...); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.Receive(ctx, "work", chute.ReceiveOptions{Max: 100, Wait: -1})
	if err != nil || len(ds) != 100 {
		t.Fatalf("receive %d: %v", len(ds), err)
	}
	var acks []string
	var nacks []chute.Nack
	for i, d := range ds {
		if i < 60 {
			acks = append(acks, d.Receipt)
		} else {
			nacks = append(nacks, chute.Nack{Receipt: d.Receipt, Delay: -1})
		}
	}
	if err := b.Ack(ctx, "work", acks...); err != nil {
		t.Fatal(err)
	}
	if err := b.Nack(ctx, "work", nacks...); err != nil {
		t.Fatal(err)
	}
	// Two duplicates (by ID), one refused as invalid, for work's detail.
	if _, err := b.Publish(ctx, "work", chute.Message{ID: "a"}, chute.Message{ID: "a"}, chute.Message{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "work", chute.Message{Priority: 10}); !errors.Is(err, chute.ErrInvalidMessage) {
		t.Fatalf("priority 10: %v", err)
	}

	addr := chutetest.StartServer(t, b, server.Options{Metrics: metrics.Handler(b, metrics.Options{
		QueueDetail: []string{"work"}, Sync: sync})})
	fams, _ := scrape(t, addr, "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"chute_queue_published_total", []string{"queue", "work"}, 101},
		{"chute_queue_delivered_total", []string{"queue", "work"}, 100},
		{"chute_queue_acked_total", []string{"queue", "work"}, 60},
		{"chute_queue_nacked_total", []string{"queue", "work"}, 40},
		{"chute_queue_dead_lettered_total", []string{"queue", "work"}, 40},
		{"chute_queue_redelivered_total", []string{"queue", "work"}, 0},
		{"chute_queue_dead_lettered_by_reason_total", []string{"queue", "work", "reason", "max_deliveries"}, 40},
		{"chute_queue_dead_lettered_by_reason_total", []string{"queue", "work", "reason", "expired"}, 0},
		{"chute_queue_deduplicated_total", []string{"queue", "work"}, 2},
		{"chute_queue_cancelled_total", []string{"queue", "work"}, 0},
		{"chute_queue_rejected_total", []string{"queue", "work", "reason", "invalid"}, 1},
		{"chute_queue_rejected_total", []string{"queue", "work", "reason", "full"}, 0},
		{"chute_queue_messages", []string{"queue", "work", "state", "ready"}, 1},
		{"chute_queue_messages", []string{"queue", "work", "state", "inflight"}, 0},
		{"chute_queue_messages", []string{"queue", "work.dead", "state", "ready"}, 40},
		{"chute_queue_dead_letters", []string{"queue", "work.dead"}, 40},
		{"chute_queue_published_total", []string{"queue", "work.dead"}, 40},
		{"chute_queue_is_dead_letter", []string{"queue", "work.dead"}, 1},
		{"chute_queue_is_dead_letter", []string{"queue", "work"}, 0},
		{"chute_queue_wait_seconds", []string{"queue", "work"}, 100},
		{"chute_queue_processing_seconds", []string{"queue", "work"}, 60},
		{"chute_queue_completion_seconds", []string{"queue", "work"}, 60},
		{"chute_wait_seconds", nil, 100},
		{"chute_processing_seconds", nil, 60},
		{"chute_completion_seconds", nil, 60},
		{"chute_confirm_seconds", nil, 12}, // ten batches to work, one to quiet, one of duplicates
		{"chute_healthy", nil, 1},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := value(t, fams, "chute_queue_bytes", "queue", "work.dead", "state", "ready"); got <= 0 {
		t.Errorf("dead-letter bytes %v", got)
	}
	// Detail for work (asked for by name) and work.dead (by attribute):
	// not for quiet, which has the default series alone; and a queue that
	// is not a dead-letter queue has no dead_letters gauge.
	for _, name := range []string{"chute_queue_wait_seconds", "chute_queue_bytes", "chute_queue_deduplicated_total"} {
		for _, m := range fams[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() == "quiet" {
					t.Errorf("%s for quiet, which did not ask for detail", name)
				}
			}
		}
	}
	perQueue := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() == "quiet" {
					perQueue++
				}
			}
		}
	}
	if perQueue > 16 {
		t.Errorf("quiet has %d series, want at most 16 by default", perQueue)
	}
	t.Logf("default series per queue: %d", perQueue)
	syncs := value(t, fams, "chute_journal_syncs_total")
	if syncs == 0 || value(t, fams, "chute_journal_sync_seconds") != syncs {
		t.Errorf("journal syncs %v, sync histogram %v", syncs, value(t, fams, "chute_journal_sync_seconds"))
	}
	for _, name := range []string{"chute_journal_records_total", "chute_journal_bytes_total", "go_goroutines",
		"process_cpu_seconds_total", "chute_server_connections", "chute_memory_budget_bytes", "chute_checkpoints_total",
		"chute_recovery_duration_seconds", "chute_journal_segments_reclaimed_total", "chute_journal_disk_bytes",
		"chute_journal_sync_delays_total", "chute_journal_zeros_ahead_bytes_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	// Every family has HELP, and names follow the conventions.
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
	}
	_ = broker.Stats{}
}

// TestMetricsRequestsAndAuth checks the server's call counters and that
// /metrics wants a token when the server has tokens.
func TestMetricsRequestsAndAuth(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, server.Options{
		Tokens:  []server.Token{{Name: "r", Secret: "reader", Role: server.RoleRead}},
		Metrics: metrics.Handler(b, metrics.Options{})})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s, want 401", resp.Status)
	}
	// One API call that reaches a handler, by the Connect protocol.
	req, _ := http.NewRequest("POST", "http://"+addr+"/chute.v1.AdminService/GetServerInfo", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer reader")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fams, _ := scrape(t, addr, "reader")
	if got := value(t, fams, "chute_server_requests_total", "method", "GetServerInfo", "code", "ok"); got != 1 {
		t.Errorf("GetServerInfo calls %v, want 1", got)
	}
	if got := value(t, fams, "chute_server_auth_failures_total"); got != 1 {
		t.Errorf("auth failures %v, want 1", got)
	}
	if got := value(t, fams, "chute_server_connections"); got < 1 {
		t.Errorf("open connections %v", got)
	}
}

// TestScrapeManyQueues builds 10,000 queues and scrapes once: the time
// and size of the answer are logged (go test -v -run ScrapeManyQueues).
func TestScrapeManyQueues(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	b := chutetest.MustOpen(t, "", nil)
	ctx := context.Background()
	const n = 10000
	for i := range n {
		if err := b.CreateQueue(ctx, fmt.Sprintf("queue-%05d", i), chute.QueueConfig{DeadLetterQueue: "dead"}); err != nil {
			t.Fatal(err)
		}
	}
	addr := chutetest.StartServer(t, b, server.Options{Metrics: metrics.Handler(b, metrics.Options{})})
	var took time.Duration
	var size int
	for range 2 { // the second scrape is the steady state
		start := time.Now()
		resp, err := http.Get("http://" + addr + "/metrics") // uncompressed: the Go client asks for gzip only by itself
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		took, size = time.Since(start), len(body)
	}
	start := time.Now()
	fams, _ := scrape(t, addr, "")
	t.Logf("%d queues: scrape %v, %d bytes; with parsing %v, %d series of chute_queue_messages", n+1, took, size,
		time.Since(start), len(fams["chute_queue_messages"].Metric))
	if took > time.Second {
		t.Logf("scrape took %v, over the 1 s target", took)
	}
	if size > 15<<20 {
		t.Errorf("scrape of %d bytes, over 15 MiB", size)
	}
}
