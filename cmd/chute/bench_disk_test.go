package main

import (
	"encoding/json"
	"os"
	"testing"
)

// TestBenchDisk: bench disk syncs in the given directory, leaves nothing
// there, and prints ordered percentiles of real syncs.
func TestBenchDisk(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(t, "bench", "disk", "--data", dir, "--duration", "100ms", "--size", "512", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r diskResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if r.Syncs < 1 || r.Size != 512 || r.P50ms <= 0 || r.P50ms > r.P90ms || r.P90ms > r.P99ms || r.P99ms > r.MaxMs || r.PerSecond <= 0 {
		t.Fatalf("implausible result %+v", r)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left %d entries in --data", len(left))
	}
	for _, bad := range [][]string{{"--size", "0"}, {"--duration", "0s"}, {"--size", "2000000"}} {
		if _, err := runCLI(t, append([]string{"bench", "disk", "--data", dir}, bad...)...); exitCode(err) != 2 {
			t.Errorf("bench disk %v: exit %d, want 2 (usage)", bad, exitCode(err))
		}
	}
}
