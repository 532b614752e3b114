package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/hist"
)

// bench schedules: issue 13's done-when for periodic schedules — 10,000
// schedules firing every second stay within 1 s of their slots (p99).

func newBenchSchedulesCmd() *cobra.Command {
	var f benchFlags
	var n, queues int
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "Lateness of many periodic schedules (commit time − slot): p50, p99, max",
		Long: `schedules creates --schedules schedules firing every --every into --queues
queues of an embedded broker on local disk, lets them run for --duration on
the real clock, and prints how late their firings were committed: the time
each firing's record became durable minus its slot, from the broker's
lateness histogram (p50 and p99 interpolated within a doubling bucket,
so each is within a factor of two; the bucket's upper bound is printed
too) and the exact maximum. It also prints the journal's syncs in the
run: group commit makes one sync per second's worth of due schedules, not
one per firing. A consumer per queue acks the messages meanwhile.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 || queues < 1 || every < time.Second {
				return usageError{fmt.Errorf("want --schedules ≥ 1, --queues ≥ 1, --every ≥ 1s")}
			}
			b, cleanup, err := f.open("schedules")
			if err != nil {
				return err
			}
			defer cleanup()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# %s, GOMAXPROCS=%d, sync=%s, %d schedules every %v into %d queues, %v\n",
				runtime.Version(), runtime.GOMAXPROCS(0), f.sync, n, every, queues, f.duration)
			for i := range queues {
				if err := b.CreateQueue(ctx, fmt.Sprintf("sq%d", i), chute.QueueConfig{}); err != nil {
					return err
				}
			}
			// Created by 64 goroutines, so that group commit syncs many at once.
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(64)
			for i := range n {
				cfg := chute.ScheduleConfig{Target: fmt.Sprintf("sq%d", i%queues), Every: every,
					Message: chute.Message{Body: make([]byte, f.size)}}
				g.Go(func() error { return b.CreateSchedule(gctx, fmt.Sprintf("s%d", i), cfg) })
			}
			if err := g.Wait(); err != nil {
				return err
			}
			done := make(chan struct{})
			for i := range queues {
				go func() {
					defer func() { done <- struct{}{} }()
					q := fmt.Sprintf("sq%d", i)
					for ctx.Err() == nil {
						ds, err := b.Receive(ctx, q, chute.ReceiveOptions{Max: 1000, Wait: time.Second})
						if err != nil || len(ds) == 0 {
							continue
						}
						rs := make([]string, len(ds))
						for j, d := range ds {
							rs[j] = d.Receipt
						}
						b.Ack(ctx, q, rs...)
					}
				}()
			}
			// Skip a warm-up (up to 2 s): creating the schedules overlaps it.
			time.Sleep(min(2*time.Second, f.duration/5))
			before, jBefore := b.ScheduleStats(), b.JournalStats()
			time.Sleep(f.duration)
			after, jAfter := b.ScheduleStats(), b.JournalStats()
			cancel()
			for range queues {
				<-done
			}
			late := after.Lateness.Sub(before.Lateness)
			// Interpolation within a bucket can overshoot the exact maximum.
			quantile := func(q float64) time.Duration { return min(late.Quantile(q), after.LatenessMax).Round(time.Microsecond) }
			fmt.Fprintf(out, "firings %d (%.0f/s), skipped %d, retried %d\n", late.Count,
				float64(late.Count)/f.duration.Seconds(), after.Skipped-before.Skipped, after.Retried-before.Retried)
			fmt.Fprintf(out, "lateness p50 %v (≤ %v)  p99 %v (≤ %v)  max %v (whole run)  mean %v\n",
				quantile(0.5), bucketBound(late, 0.5), quantile(0.99),
				bucketBound(late, 0.99), after.LatenessMax.Round(time.Microsecond), late.Avg().Round(time.Microsecond))
			syncs := jAfter.Syncs - jBefore.Syncs
			fmt.Fprintf(out, "journal: %d syncs, %d records (%.0f records per sync)\n", syncs, jAfter.Records-jBefore.Records,
				float64(jAfter.Records-jBefore.Records)/float64(max(syncs, 1)))
			return nil
		},
	}
	f.register(cmd, 64)
	f.duration = 30 * time.Second
	cmd.Flags().Lookup("duration").DefValue = "30s"
	cmd.Flags().IntVar(&n, "schedules", 10_000, "schedules")
	cmd.Flags().IntVar(&queues, "queues", 100, "queues the schedules publish to (round robin)")
	cmd.Flags().DurationVar(&every, "every", time.Second, "interval of every schedule")
	return cmd
}

// bucketBound is the upper bound of the histogram bucket that holds the
// q-quantile: the quantile is at most this.
func bucketBound(s hist.Snapshot, q float64) time.Duration {
	rank := q * float64(s.Count)
	var seen float64
	for i, c := range s.Counts {
		seen += float64(c)
		if c > 0 && seen >= rank {
			if i < len(hist.Bounds) {
				return hist.Bounds[i]
			}
			break
		}
	}
	return hist.Bounds[len(hist.Bounds)-1]
}
