package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Between two systems the machine settles: a system stopped by PID may
// leave work behind it — dirty pages of its data to write back, a
// runtime still exiting — that the next system would pay for. In the
// comparison of 2026-11-30 (docs/benchmarks.md) whichever system followed
// RabbitMQ (648 MB in its data directory at the stop) drained W6's
// backlog 15–30 % slower than in its other runs.
// settle flushes the file systems (sync) and then waits until the CPUs are
// quiet (below quietBusy busy over a settleSample), or settleMax.
const (
	quietBusy    = 0.15
	settleSample = 250 * time.Millisecond
	settleMax    = 30 * time.Second
)

// cpuTimes reads the busy and total jiffies of all CPUs (/proc/stat's
// first line); ok is false where there is none (not Linux).
func cpuTimes() (busy, total uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total, true
}

// settle syncs, then waits for a quiet sample of the CPUs (read by times,
// one sample every tick) until deadline; it says whether the machine was
// quiet by then.
func settle(ctx context.Context, times func() (busy, total uint64, ok bool), tick <-chan time.Time, deadline <-chan time.Time) (quiet bool) {
	syscall.Sync()
	b0, t0, ok := times()
	if !ok {
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline:
			return false
		case <-tick:
		}
		b1, t1, ok := times()
		if !ok {
			return true
		}
		if t1 > t0 && float64(b1-b0)/float64(t1-t0) < quietBusy {
			return true
		}
		b0, t0 = b1, t1
	}
}

// settleMachine is settle with the real clock and /proc/stat.
func settleMachine(ctx context.Context) (waited time.Duration, quiet bool) {
	start := time.Now()
	t := time.NewTicker(settleSample)
	defer t.Stop()
	d := time.NewTimer(settleMax)
	defer d.Stop()
	quiet = settle(ctx, cpuTimes, t.C, d.C)
	return time.Since(start), quiet
}
