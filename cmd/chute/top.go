package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// clearScreen moves the cursor home and clears the screen (ANSI).
const clearScreen = "\x1b[H\x1b[2J"

func newTopCmd(f *clientFlags) *cobra.Command {
	var (
		interval time.Duration
		sortBy   string
		once     bool
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show queues live: depth, rates, clients and latency",
		Long: `top lists the queues every --interval, like top: ready, delayed and in
flight; PUB/S, messages enqueued per second (published, routed from a
topic, dead-lettered or redriven into the queue) and ACK/S, acks per
second, both from the change in the queue's totals since the previous
refresh ("-" for a queue that was not there then); the active consumers
and producers as the server counts them; and the p99 of the processing
(delivery to ack) and completion (due to ack) latencies since the broker
started. Dead-letter queues that nothing has been in are left out, as in
queue ls.

On a terminal each frame replaces the last; elsewhere frames follow one
another. --once prints one frame, from two samples --interval apart, and
exits. Interrupt (Ctrl-C) to stop.`,
		Example: `  chute top
  chute top --sort rate --interval 5s
  chute top --once > queues.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval %v: must be positive", interval)}
			}
			if !slices.Contains([]string{"name", "depth", "rate"}, sortBy) {
				return usageError{fmt.Errorf("--sort %q: want name, depth or rate", sortBy)}
			}
			return withAPI(f, func(cmd *cobra.Command, _ []string, api chute.API) error {
				return runTop(cmd.Context(), api, cmd.OutOrStdout(), interval, sortBy, once)
			})(cmd, args)
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	cmd.Flags().StringVar(&sortBy, "sort", "depth", "order of the queues: name, depth (deepest first) or rate (busiest first)")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame (two samples --interval apart) and exit")
	return cmd
}

// runTop samples the queues every interval and prints a frame for each
// sample after the first, until ctx ends (no error) or once is set.
func runTop(ctx context.Context, api chute.API, w io.Writer, interval time.Duration, sortBy string, once bool) error {
	prev, err := api.Queues(ctx)
	if err != nil {
		return err
	}
	prevAt := time.Now()
	clear := isTerminal(w)
	t := time.NewTicker(interval)
	defer t.Stop()
	for frames := 0; ; frames++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := api.Queues(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := time.Now()
		switch {
		case clear:
			fmt.Fprint(w, clearScreen)
		case frames > 0:
			fmt.Fprintln(w)
		}
		if err := printTopFrame(w, topRows(prev, cur, now.Sub(prevAt), sortBy), now, interval, sortBy); err != nil {
			return err
		}
		if once {
			return nil
		}
		prev, prevAt = cur, now
	}
}

// topRow is one queue in a frame. A rate is negative when unknown (the
// queue was not in the previous sample).
type topRow struct {
	st               chute.QueueStats
	pubRate, ackRate float64
}

// topRows computes the rates of cur against prev, elapsed apart, and
// sorts the queues.
func topRows(prev, cur []chute.QueueStats, elapsed time.Duration, sortBy string) []topRow {
	before := make(map[string]chute.QueueTotals, len(prev))
	for _, q := range prev {
		before[q.Name] = q.Totals
	}
	secs := elapsed.Seconds()
	rate := func(now, then int64) float64 {
		if secs <= 0 || now < then { // a queue deleted and made again
			return 0
		}
		return float64(now-then) / secs
	}
	rows := make([]topRow, 0, len(cur))
	for _, q := range withoutUnusedDLQs(cur) {
		r := topRow{st: q, pubRate: -1, ackRate: -1}
		if t, ok := before[q.Name]; ok {
			r.pubRate, r.ackRate = rate(q.Totals.Enqueued, t.Enqueued), rate(q.Totals.Acked, t.Acked)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b topRow) int {
		byName := cmp.Compare(a.st.Name, b.st.Name)
		switch sortBy {
		case "depth":
			return cmp.Or(cmp.Compare(b.st.Depth(), a.st.Depth()), byName)
		case "rate":
			return cmp.Or(cmp.Compare(max(b.pubRate, 0)+max(b.ackRate, 0), max(a.pubRate, 0)+max(a.ackRate, 0)), byName)
		}
		return byName
	})
	return rows
}

// printTopFrame prints a heading line and a table of the rows.
func printTopFrame(w io.Writer, rows []topRow, at time.Time, interval time.Duration, sortBy string) error {
	fmt.Fprintf(w, "chute top  %s  %d queues  every %s  sort %s\n", at.Format(time.TimeOnly), len(rows), fmtDuration(interval), sortBy)
	tw := newTable(w)
	fmt.Fprintln(tw, "QUEUE\tREADY\tDELAYED\tIN FLIGHT\tPUB/S\tACK/S\tCONSUMERS\tPRODUCERS\tP99 PROC\tP99 COMPL")
	for _, r := range rows {
		q := r.st
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", q.Name, q.Ready, q.Delayed, q.InFlight,
			fmtRate(r.pubRate), fmtRate(r.ackRate), q.Consumers, q.Producers,
			fmtP99(q.Latency.Processing), fmtP99(q.Latency.Completion))
	}
	return tw.Flush()
}

// fmtRate prints a rate per second; "-" when unknown.
func fmtRate(r float64) string {
	if r < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

// fmtP99 prints a summary's p99; "-" when nothing was observed.
func fmtP99(l chute.LatencySummary) string {
	if l.Count == 0 {
		return "-"
	}
	return fmtDuration(l.P99)
}
