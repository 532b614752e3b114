package main

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// TestMeasureStalls: on a fake clock whose sleeps overrun by 12 ms at the
// end of every 100 ms period (a host's CPU quota), measureStalls counts
// those wake-ups as stalls (and one off the beat), the time they lost,
// the longest, and their period; small overruns are not stalls.
func TestMeasureStalls(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	sleeps := 0
	sleep := func(d time.Duration) {
		sleeps++
		now = now.Add(d + 100*time.Microsecond) // an ordinary wake-up: 0.1 ms late
		// Stalled until the period ends, and once off the beat.
		if sleeps%88 == 0 || sleeps == 40 {
			now = now.Add(12 * time.Millisecond)
		}
	}
	res := measureStalls(time.Second, time.Millisecond, 4*time.Millisecond, clock, sleep)
	if res.Sleeps != sleeps {
		t.Fatalf("sleeps %d, measured %d", sleeps, res.Sleeps)
	}
	wantStalls := sleeps/88 + 1
	if res.Stalls != wantStalls || wantStalls < 8 {
		t.Fatalf("stalls %d, want %d (of %d sleeps)", res.Stalls, wantStalls, sleeps)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6 }
	if !near(res.MaxMs, 12.1) || !near(res.StallMs, 12.1*float64(wantStalls)) || !near(res.P99Ms, 12.1) {
		t.Fatalf("longest %.3f, lost %.3f, p99 %.3f: want 12.1, %.1f, 12.1", res.MaxMs, res.StallMs, res.P99Ms, 12.1*float64(wantStalls))
	}
	period := 88*1.1 + 12 // 88 sleeps of 1.1 ms, then the stall (the one off the beat aside)
	if !near(res.PeriodMs, period) {
		t.Fatalf("period %.3f ms, want %.3f", res.PeriodMs, period)
	}
	if want := res.StallMs / 1000; !near(res.Share, want) {
		t.Fatalf("share %.4f, want %.4f", res.Share, want)
	}
}

// TestBenchStalls: the command runs for real, briefly, prints JSON, and
// refuses bad flags with exit 2.
func TestBenchStalls(t *testing.T) {
	out, err := runCLI(t, "bench", "stalls", "--duration", "50ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r stallResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if r.Sleeps < 1 || r.Sleeps > 50 || r.Stalls > r.Sleeps || r.P99Ms > r.MaxMs {
		t.Fatalf("implausible result %+v", r)
	}
	for _, bad := range [][]string{{"--duration", "0s"}, {"--tick", "0s"}, {"--over", "-1ms"}, {"--tick", "2s", "--duration", "1s"}} {
		if _, err := runCLI(t, append([]string{"bench", "stalls"}, bad...)...); exitCode(err) != 2 {
			t.Errorf("bench stalls %v: exit %d, want 2 (usage)", bad, exitCode(err))
		}
	}
}
