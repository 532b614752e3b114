package workload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/chutemq/chute/bench/adapters"
)

// W6: a backlog through a server process (adapters.Server), for its
// memory, its drain rate and the disk it gives back.

// SegmentCounter is implemented by servers whose journal is made of
// segment files (chute), so that the backlog workload can time how soon
// the journal is back to a couple of segments once drained.
type SegmentCounter interface {
	Segments() int
}

// settledSegments is the segment count W6 waits for: the active segment
// and at most one more (as `chute bench backlog --server` counts).
const settledSegments = 2

// segmentPoll is how often W6 looks at the segment count while it waits.
const segmentPoll = 50 * time.Millisecond

// Backlog is W6: fill a queue with BacklogMessages × BacklogSize the
// fastest way the system offers (Queue.Fill), then drain it with one
// consumer (prefetch Prefetch, one ack per batch). Figures: the server's
// peak resident memory while filling and while draining (VmHWM, reset
// between the phases through /proc/PID/clear_refs), the drain rate, the
// data directory's disk usage right after the last ack and BacklogSettle
// later, and for a journal of segments the time until it is back to
// settledSegments segments (Never: not within BacklogSettle). A system
// that is not a server process is "n/a".
func Backlog(ctx context.Context, sys adapters.System, cfg Config) (r Report, err error) {
	r = Report{Workload: "W6", System: sys.Name()}
	srv, ok := sys.(adapters.Server)
	if !ok {
		r.NA = sys.Name() + " is not a server process (no memory or disk figures)"
		return r, nil
	}
	q, s, err := newStreams(ctx, sys, adapters.QueueOptions{InFlight: cfg.Window})
	if err != nil || s == nil {
		return na(r, err, sys)
	}
	defer deleteQueue(ctx, q, &err)
	pid := strconv.Itoa(srv.PID())
	if _, err := ResetPeakRSS(pid); err != nil {
		return r, err
	}

	start := time.Now()
	if err := q.Fill(ctx, cfg.BacklogMessages, cfg.BacklogSize); err != nil {
		return r, fmt.Errorf("fill: %w", err)
	}
	fill := time.Since(start)
	fillPeak, err := ResetPeakRSS(pid)
	if err != nil {
		return r, err
	}
	if n, err := q.Len(ctx); err != nil || n < int64(cfg.BacklogMessages) {
		return r, errors.Join(err, fmt.Errorf("filled %d messages, the queue holds %d", cfg.BacklogMessages, n))
	}
	r.notef("filled %d × %d B in %v (%.0f/s)", cfg.BacklogMessages, cfg.BacklogSize, fill.Round(time.Millisecond), perSecond(int64(cfg.BacklogMessages), fill))

	c, err := s.NewConsumer(ctx, 0, cfg.Prefetch)
	if err != nil {
		return r, err
	}
	start = time.Now()
	n, err := drain(ctx, c, int64(cfg.BacklogMessages), cfg.Idle)
	lastAck := time.Now() // drain closed c: every ack is confirmed
	if err != nil {
		return r, err
	}
	took := lastAck.Sub(start)
	drainPeak, err := ResetPeakRSS(pid)
	if err != nil {
		return r, err
	}
	right := diskUsage(srv.DataDir())

	until := Never
	sc, segs := sys.(SegmentCounter)
	if !segs {
		sc, segs = srv.(SegmentCounter)
	}
	for time.Since(lastAck) < cfg.BacklogSettle {
		if segs && until == Never && sc.Segments() <= settledSegments {
			until = time.Since(lastAck).Seconds()
		}
		if err := waitFor(ctx, segmentPoll); err != nil {
			return r, err
		}
	}
	later := diskUsage(srv.DataDir())

	r.lower("fill RSS MB", mb(fillPeak))
	r.lower("drain RSS MB", mb(drainPeak))
	r.rate("drain/s", perSecond(n, took))
	r.lower("disk MB at last ack", mb(right))
	r.lower(fmt.Sprintf("disk MB %v later", cfg.BacklogSettle), mb(later))
	if segs {
		r.lower(fmt.Sprintf("s to ≤%d segments", settledSegments), until)
	}
	return r, nil
}

// drain receives and acks until it has had n messages (bodies need not be
// stamped: Fill's are not), then closes c, waiting for its acks.
func drain(ctx context.Context, c adapters.Consumer, n int64, idle time.Duration) (got int64, err error) {
	defer func() { err = errors.Join(err, c.Close()) }()
	progress := time.Now()
	for got < n {
		if time.Since(progress) > idle {
			return got, fmt.Errorf("drained %d of %d; none for %v", got, n, idle)
		}
		msgs, err := c.Receive(ctx, receiveWait)
		if err != nil {
			return got, fmt.Errorf("receive after %d: %w", got, err)
		}
		if len(msgs) == 0 {
			continue
		}
		got += int64(len(msgs))
		progress = time.Now()
		if err := c.Ack(ctx, msgs); err != nil {
			return got, fmt.Errorf("ack after %d: %w", got, err)
		}
	}
	return got, nil
}

// waitFor waits d or until ctx ends (the backlog's watch of the data
// directory: a measurement over time, nothing to be woken by).
func waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ResetPeakRSS returns process pid's peak resident memory (VmHWM) since
// it started or since the last reset, and resets the peak (Linux: "5" in
// /proc/PID/clear_refs), so that each phase reports its own peak.
func ResetPeakRSS(pid string) (int64, error) {
	_, peak, err := ProcessRSS(pid)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("reset the peak memory of process %s: %w", pid, err)
	}
	return peak, nil
}

// diskUsage is the disk space the files under dir take (allocated
// blocks where the system says, else their sizes).
func diskUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += allocated(fi)
		}
		return nil
	})
	return n
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
