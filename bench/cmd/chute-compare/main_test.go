package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestCommands runs each comparison briefly against chute alone (and
// NATS when $CHUTE_BENCH_NATS_URL is set): they must work and report,
// whatever the figures.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	nats := os.Getenv("CHUTE_BENCH_NATS_URL")
	publish := []string{"publish", "--data", dir, "--publishers", "1,4", "--duration", "100ms", "--size", "64"}
	backlog := []string{"backlog", "--data", dir, "--messages", "300", "--sync", "never"}
	wants := map[string][]string{
		"publish": {"chute embedded publish 1×64B", "chute embedded publish 4×64B", "records/sync"},
		"backlog": {"chute: queued 300 × 1024B", "chute: resident memory"},
	}
	if nats != "" {
		publish = append(publish, "--nats", nats, "--window", "16")
		wants["publish"] = append(wants["publish"], "nats jetstream publish 4×64B", "(chute/nats = ",
			"nats jetstream publish async window 16×64B", "(chute at ")
	}
	for _, args := range [][]string{publish, backlog} {
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		for _, want := range wants[args[0]] {
			if !strings.Contains(out, want) {
				t.Errorf("%v: no %q in\n%s", args, want, out)
			}
		}
		t.Log(out)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("journals left behind: %v", left)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"publish", "--sync", "sometimes"},
		{"publish", "--publishers", "0"},
		{"publish", "extra"},
		{"backlog", "--nats", "nats://127.0.0.1:1"}, // without --nats-pid
		{"publish", "--no-such-flag"},
		{"all", "--systems", "chute,kafka"},
		{"all", "--workloads", "W1,W9"},
		{"all", "--runs", "0"},
	} {
		if _, err := runCLI(t, args...); exitCode(err) != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
	}
}
