//go:build linux

package main

import (
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
		_, logs, stop := serveJSON(t, "--monitor-slack", slack)
		d, err := sysmon.Slack(tid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stop(); err != nil {
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
