package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/workload"
)

func newPublishCmd() *cobra.Command {
	var f runFlags
	var s systemFlags
	var pubs, chuteAddr string
	var window int
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Confirmed publish throughput with 1, 16 and 256 publishers, chute then each other broker",
		Long: `publish runs N publishers, each publishing one message and waiting for its
confirmation before the next, for --duration: against chute, then against
each other broker with the same N, printing the other's rate with the ratio
chute/other. Then, for brokers whose client keeps many publishes in flight on
one connection (NATS), one run with --window in flight, against chute's best
rate of the run.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			counts, err := parseCounts(pubs)
			if err != nil {
				return err
			}
			sys, cleanup, err := f.embedded()
			if chuteAddr != "" && err == nil {
				cleanup()
				sys, cleanup, err = dialChute(chuteAddr)
			}
			if err != nil {
				return err
			}
			defer cleanup()
			return comparePublish(cmd, sys, s.others(), counts, window, f)
		},
	}
	f.register(cmd, 256)
	s.register(cmd, false)
	cmd.Flags().StringVar(&pubs, "publishers", "1,16,256", "comma-separated publisher counts")
	cmd.Flags().IntVar(&window, "window", 256, "also run each broker that can (NATS) with this many async publishes in flight on one connection (0: skip)")
	cmd.Flags().StringVar(&chuteAddr, "chute", "", "measure a chute server at this address (host:port) instead of chute embedded")
	return cmd
}

func comparePublish(cmd *cobra.Command, chute adapters.System, others []other, counts []int, window int, f runFlags) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "# %s, GOMAXPROCS=%d, sync=%s, %dB bodies\n", runtime.Version(), runtime.GOMAXPROCS(0), f.sync, f.size)
	var best workload.Result
	bestN := 0
	for _, n := range counts {
		r, err := publishOnce(ctx, chute, n, f.size, f.duration)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, r)
		if r.Rate() > best.Rate() || bestN == 0 {
			best, bestN = r, n
		}
		for _, o := range others {
			or, err := publishOnce(ctx, o, n, f.size, f.duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%v  (chute/%s = %.2f)\n", or, short(o), r.Rate()/or.Rate())
		}
	}
	if window <= 1 {
		return nil
	}
	for _, o := range others {
		r, ok, err := windowOnce(ctx, o, window, f.size, f.duration)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintf(out, "%v  (chute at %d publishers/%s = %.2f)\n", r, bestN, short(o), best.Rate()/r.Rate())
		}
	}
	return nil
}

// publishOnce runs workload.Publish on a fresh queue of sys.
func publishOnce(ctx context.Context, sys adapters.System, publishers, size int, d time.Duration) (r workload.Result, err error) {
	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: publishers})
	if err != nil {
		return r, fmt.Errorf("%s: %w", sys.Name(), err)
	}
	defer func() { err = errors.Join(err, q.Delete(context.WithoutCancel(ctx))) }()
	r, err = workload.Publish(ctx, sys.Name(), q, publishers, size, d)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.Name, err)
	}
	return r, err
}

// windowOnce runs workload.Window on a fresh queue of sys, if sys can
// publish asynchronously (ok false: it cannot).
func windowOnce(ctx context.Context, sys adapters.System, window, size int, d time.Duration) (r workload.Result, ok bool, err error) {
	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: window})
	if err != nil {
		return r, false, fmt.Errorf("%s: %w", sys.Name(), err)
	}
	defer func() { err = errors.Join(err, q.Delete(context.WithoutCancel(ctx))) }()
	if _, ok := q.(adapters.AsyncPublisher); !ok {
		return r, false, nil
	}
	r, err = workload.Window(ctx, sys.Name(), q, window, size, d)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.Name, err)
	}
	return r, true, err
}
