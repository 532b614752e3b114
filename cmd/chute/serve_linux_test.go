//go:build linux

package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/sysmon"
)

// TestServeMonitorSlack: chute serve sets the runtime monitor thread's
// timer slack from --monitor-slack, and leaves it alone with none.
func TestServeMonitorSlack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting another thread's timer slack needs CAP_SYS_NICE")
	}
	isolateEnv(t)
	tid, err := sysmon.Thread()
	if err != nil {
		t.Fatal(err)
	}
	before, err := sysmon.Slack(tid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sysmon.SetSlack(before) })
	serve := func(slack string) time.Duration {
		t.Helper()
		logs := &logLines{serving: make(chan string, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := runTree(t, ctx, logs, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--monitor-slack", slack, "--log-format", "json")
			done <- err
		}()
		select {
		case <-logs.serving:
		case err := <-done:
			t.Fatalf("serve ended before serving: %v\n%s", err, logs)
		case <-time.After(30 * time.Second):
			t.Fatalf("serve did not log its address within 30s\n%s", logs)
		}
		d, err := sysmon.Slack(tid)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("serve: %v\n%s", err, logs)
		}
		return d
	}
	if d := serve("7ms"); d != 7*time.Millisecond {
		t.Fatalf("--monitor-slack 7ms: the monitor's slack is %v", d)
	}
	if _, err := sysmon.SetSlack(before); err != nil {
		t.Fatal(err)
	}
	if d := serve("none"); d != before {
		t.Fatalf("--monitor-slack none: the monitor's slack is %v, was %v", d, before)
	}
}
