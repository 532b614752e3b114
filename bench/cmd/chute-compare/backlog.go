package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/workload"
)

// fillInFlight is how many publishes the other brokers' fills keep in
// flight (chute's fill publishes batches of 100 instead).
const fillInFlight = 4096

func newBacklogCmd() *cobra.Command {
	var f runFlags
	var s systemFlags
	var n int
	cmd := &cobra.Command{
		Use:   "backlog",
		Short: "Resident memory holding N queued messages: chute embedded, then each other broker's server process",
		Long: `backlog fills a queue of chute embedded in this process with N messages and
prints this process's resident memory, then fills a queue of each other
broker the fastest way its client offers and prints the resident memory of
its server process (--nats-pid), read from /proc before and after.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			others := s.others()
			for _, o := range others {
				if o.pid == "" {
					return usageError{fmt.Errorf("%s needs %s, to read the server's memory", o.Name(), o.pidFlag)}
				}
			}
			sys, cleanup, err := f.embedded()
			if err != nil {
				return err
			}
			defer cleanup()
			if err := chuteBacklog(cmd, sys, n, f); err != nil {
				return err
			}
			for _, o := range others {
				if err := otherBacklog(cmd, o, n, f.size); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd, 1024)
	s.register(cmd, true)
	cmd.Flags().IntVar(&n, "messages", 1_000_000, "messages to queue")
	return cmd
}

// chuteBacklog fills chute embedded and reads this process's memory.
func chuteBacklog(cmd *cobra.Command, sys adapters.System, n int, f runFlags) (err error) {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: 1})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, q.Delete(context.WithoutCancel(ctx))) }()
	base, _, _ := workload.RSS()
	start := time.Now()
	if err := q.Fill(ctx, n, f.size); err != nil {
		return err
	}
	took := time.Since(start)
	cur, peak, err := workload.RSS()
	if err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	settled, _, _ := workload.RSS()
	stored, err := q.Len(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "chute: queued %d × %dB (%d MB of messages) in %v with sync=%s\n", stored, f.size, stored*int64(f.size)>>20, took.Round(time.Millisecond), f.sync)
	fmt.Fprintf(out, "chute: resident memory %d MB at start, %d MB after filling (peak %d MB), %d MB after GC\n",
		base>>20, cur>>20, peak>>20, settled>>20)
	return nil
}

// otherBacklog fills another broker and reads its server's memory.
func otherBacklog(cmd *cobra.Command, o other, n, size int) (err error) {
	ctx := cmd.Context()
	label := short(o) + ":"
	before, _, err := workload.ProcessRSS(o.pid)
	if err != nil {
		return fmt.Errorf("%s server memory (%s): %w", o.Name(), o.pidFlag, err)
	}
	q, err := o.NewQueue(ctx, adapters.QueueOptions{InFlight: fillInFlight})
	if err != nil {
		return fmt.Errorf("%s: %w", o.Name(), err)
	}
	defer func() { err = errors.Join(err, q.Delete(context.WithoutCancel(ctx))) }()
	start := time.Now()
	if err := q.Fill(ctx, n, size); err != nil {
		return fmt.Errorf("%s: fill: %w", o.Name(), err)
	}
	took := time.Since(start)
	after, peak, err := workload.ProcessRSS(o.pid)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%-6s queued %d × %dB in %v (%d in flight)\n", label, n, size, took.Round(time.Millisecond), fillInFlight)
	fmt.Fprintf(cmd.OutOrStdout(), "%-6s resident memory %d MB before, %d MB after filling (peak %d MB)\n", label, before>>20, after>>20, peak>>20)
	return nil
}
