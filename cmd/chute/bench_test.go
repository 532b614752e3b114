package main

import (
	"strings"
	"testing"
)

// TestBenchCommands runs each bench briefly: they must work and report,
// whatever the figures (performance is never asserted in a test).
func TestBenchCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "publish", "--data", dir, "--publishers", "1,4", "--duration", "200ms"}, "chute embedded publish 4×256B"},
		{[]string{"bench", "pubsub", "--data", dir, "--publishers", "2", "--consumers", "2", "--duration", "200ms"}, "publish+receive+ack"},
		{[]string{"bench", "recovery", "--data", dir, "--messages", "3000"}, "reopen after a crash"},
		{[]string{"bench", "backlog", "--data", dir, "--messages", "3000", "--sync", "never"}, "chute: resident memory"},
	} {
		out, err := runCLI(t, c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
	}
	if _, err := runCLI(t, "bench", "publish", "--sync", "sometimes"); exitCode(err) != 2 {
		t.Fatalf("bad sync policy: exit %d", exitCode(err))
	}
}
