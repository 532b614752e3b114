package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/chutemq/chute/bench/workload"
)

// TestAllChute runs the whole comparison against chute alone with tiny
// sizes (building chute from this repository, as the command does by
// default): every workload must run, count what it sent, and print its
// table with figures.
func TestAllChute(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(t, "all", "--systems", "chute", "--runs", "1", "--data", dir,
		"--duration", "300ms", "--backlog-messages", "2000", "--backlog-settle", "500ms",
		"--delayed-messages", "200", "--delay-spread", "200ms", "--priority-messages", "100",
		"--queues", "20", "--queue-workers", "2", "--disk-duration", "300ms", "--stalls")
	t.Log(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# machine: ", "# chute: chute", "# command: ",
		"## W1 durable publish", "## W2 publish + consume + ack, producer flat out", "## W3 publish + consume + ack, paced",
		"## W4 fan-out", "## W5 delayed burst and priorities", "## W6 backlog through the server",
		"## W7 many publishers", "## W8 many queues",
		"confirms/s", "e2e p99 ms", "fsync p50 ms", "disk (chute bench disk)", "priority inversions",
		"drain RSS MB", "s to ≤2 segments", "fsync before confirm (--sync always)",
		"stalls >2ms", "longest stall ms",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "chute" && strings.Contains(l, "n/a") {
			t.Errorf("chute row without figures: %s", l)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("data left behind: %v", left)
	}
}

// TestStallFigures: chute bench stalls' JSON read into W3's figures; an
// output without them is an error, not zeros.
func TestStallFigures(t *testing.T) {
	figs, err := stallFigures([]byte(`{"sleeps": 4000, "stalls": 33, "stalled_ms": 120.6, "late_max_ms": 10.565}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []workload.Figure{{Name: "stalls >2ms", Value: 33, Lower: true}, {Name: "longest stall ms", Value: 10.565, Lower: true}}
	if len(figs) != len(want) || figs[0] != want[0] || figs[1] != want[1] {
		t.Fatalf("figures %+v, want %+v", figs, want)
	}
	for _, bad := range []string{``, `not json`, `{"sleeps": 4000}`, `{"stalls": 3}`} {
		if figs, err := stallFigures([]byte(bad)); err == nil {
			t.Errorf("%q: figures %+v, want an error", bad, figs)
		}
	}
}

// TestTables: medians per figure, the best peer by each figure's
// direction, and "never" for a moment that did not come.
func TestTables(t *testing.T) {
	rep := func(sys string, rate, p99, until float64) workload.Report {
		return workload.Report{Workload: "W6", System: sys, Figures: []workload.Figure{
			{Name: "drain/s", Value: rate}, {Name: "p99 ms", Value: p99, Lower: true}, {Name: "s to ≤2 segments", Value: until, Lower: true},
		}}
	}
	reports := []workload.Report{
		rep("chute", 300, 2, 1), rep("chute", 100, 9, 3), rep("chute", 200, 4, 2),
		rep("nats", 100, 1, math.Inf(1)), rep("redis", 150, 3, math.Inf(1)), rep("redis", 50, 3, math.Inf(1)),
		{Workload: "W6", System: "rabbitmq", NA: "not a server"},
	}
	w, _ := workload.Find("W6")
	ts := tables([]workload.Workload{w}, []string{"chute", "nats", "redis", "rabbitmq"}, reports, map[string]string{"chute": "fsync"}, workload.Config{}.WithDefaults())
	if len(ts) != 1 || len(ts[0].Rows) != 4 {
		t.Fatalf("tables: %+v", ts)
	}
	tb := ts[0]
	chute := tb.Rows[0]
	if chute.System != "chute" || chute.Runs != 3 || *chute.Values[0] != 200 || *chute.Values[1] != 4 || *chute.Values[2] != 2 {
		t.Errorf("chute medians: %+v", chute)
	}
	if r := tb.Rows[2]; r.System != "redis" || *r.Values[0] != 100 {
		t.Errorf("redis median of two: %+v", r)
	}
	// Rate: best peer is the highest (nats 100 ties redis 100: first);
	// latency: the lowest (nats 1); the segments: no finite peer value.
	if r := tb.Ratios[0]; r == nil || float64(r.Value) != 2 {
		t.Errorf("rate ratio: %+v", r)
	}
	if r := tb.Ratios[1]; r == nil || r.Peer != "nats" || float64(r.Value) != 4 {
		t.Errorf("latency ratio: %+v", r)
	}
	if tb.Ratios[2] != nil {
		t.Errorf("ratio against never: %+v", tb.Ratios[2])
	}
	b, err := json.Marshal(ts)
	if err != nil || !strings.Contains(string(b), `"never"`) {
		t.Errorf("json: %v %s", err, b)
	}
	var sb strings.Builder
	tb.print(&sb)
	for _, want := range []string{"never", "n/a", "not a server", "2.00 (nats)", "4.00 (nats)"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("no %q in\n%s", want, sb.String())
		}
	}
}
