package main

import (
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestBenchRunJSON: a short embedded run adds up, and --json has the
// documented fields.
func TestBenchRunJSON(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	out, err := runCLI(t, "bench", "run", "--data", t.TempDir(), "--count", "2000", "--producers", "2", "--consumers", "2",
		"--prefetch", "1", "--priority-mix", "0:50,9:50", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res struct {
		Config struct {
			Target      string `json:"target"`
			PriorityMix string `json:"priority_mix"`
		} `json:"config"`
		Published, Confirmed, Expected, Consumed int64
		Throughput                               map[string]float64             `json:"throughput"`
		Latency                                  map[string]map[string]float64  `json:"latency_ms"`
		Inversions                               struct{ Count, Checked int64 } `json:"inversions"`
		Errors                                   map[string]any                 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Published != 2000 || res.Confirmed != 2000 || res.Expected != 2000 || res.Consumed != 2000 {
		t.Fatalf("counts do not add up:\n%s", out)
	}
	if res.Config.Target != "embedded" || res.Config.PriorityMix != "0:50,9:50" || res.Inversions.Checked != 2000 {
		t.Fatalf("config or inversions:\n%s", out)
	}
	for _, k := range []string{"published_per_s", "confirmed_per_s", "consumed_per_s"} {
		if res.Throughput[k] <= 0 {
			t.Errorf("throughput %s missing or 0", k)
		}
	}
	for _, l := range []string{"confirm", "end_to_end"} {
		for _, k := range []string{"n", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"} {
			if _, ok := res.Latency[l][k]; !ok {
				t.Errorf("latency %s.%s missing", l, k)
			}
		}
	}
	if res.Latency["end_to_end"]["n"] != 2000 {
		t.Errorf("end-to-end latency of %v messages, want 2000", res.Latency["end_to_end"]["n"])
	}
	if _, ok := res.Errors["publish"]; !ok {
		t.Errorf("errors.publish missing")
	}
}

// TestBenchRunServer: against a server, over the client, a topic with 3
// subscriptions delivers every message 3 times; the table says so.
func TestBenchRunServer(t *testing.T) {
	// Checked once the server has stopped (cleanups run last-in first-out):
	// a connection whose last call was cancelled as the run ended is not
	// idle when the client closes, and lives until the server closes it.
	current := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, current) })
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	addr := chutetest.StartServer(t, b, server.Options{})
	out, err := runCLI(t, "bench", "run", "--server", addr, "--count", "500", "--consumers", "3", "--topic", "--subscriptions", "3",
		"--delay-mix", "0:3,10ms:1")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"# chute bench run: server 127.0.0.1:", "topic with 3 subscriptions", "1500 of 1500", "end-to-end", "lateness"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in\n%s", want, out)
		}
	}
}

// TestBenchRunUsage: bad mixes and impossible shapes are usage errors
// (exit 2), found before any broker starts.
func TestBenchRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--priority-mix", "0:50,10:50"},
		{"--priority-mix", "0:x"},
		{"--delay-mix", "1s"},
		{"--delay-mix", "-1s:1"},
		{"--ack", "none"},
		{"--queues", "3", "--consumers", "2"},
		{"--topic", "--queues", "2"},
		{"--size", "8", "--delay-mix", "1s:1"},
		{"--window", "0"},
		{"--serve", "--server", "127.0.0.1:1"},
		{"--server", "127.0.0.1:1", "--sync", "never"},
		{"--count", "0", "--duration", "0"},
	} {
		out, err := runCLI(t, append([]string{"bench", "run", "--count", "10"}, args...)...)
		if exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v)\n%s", args, exitCode(err), err, out)
		}
	}
}
