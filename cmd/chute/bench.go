package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/bench"
)

// benchFlags are shared by the bench subcommands.
type benchFlags struct {
	data     string
	size     int
	duration time.Duration
	sync     string
	root     string // the directory in use: data, or a temporary one
}

func (f *benchFlags) register(cmd *cobra.Command, size int) {
	cmd.Flags().StringVar(&f.data, "data", "", "directory for the journals (default: a temporary one, removed afterwards)")
	cmd.Flags().IntVar(&f.size, "size", size, "message body size in bytes")
	cmd.Flags().DurationVar(&f.duration, "duration", 5*time.Second, "how long each run lasts")
	cmd.Flags().StringVar(&f.sync, "sync", "always", "sync policy: always, interval or never")
}

// open opens a fresh embedded broker with a queue "bench" in a new
// directory under the data directory.
func (f *benchFlags) open(name string) (*broker.Broker, func(), error) {
	policy, err := parseSync(f.sync)
	if err != nil {
		return nil, nil, err
	}
	root := f.data
	if root == "" {
		root, err = os.MkdirTemp("", "chute-bench-")
		if err != nil {
			return nil, nil, err
		}
	}
	f.root = root
	dir := filepath.Join(root, name)
	os.RemoveAll(dir)
	b, err := broker.Open(dir, &broker.Options{Sync: policy})
	if err != nil {
		return nil, nil, err
	}
	if err := b.CreateQueue(context.Background(), "bench", chute.QueueConfig{}); err != nil {
		b.Close()
		return nil, nil, err
	}
	cleanup := func() {
		b.Close()
		os.RemoveAll(dir)
		if f.data == "" {
			os.RemoveAll(root)
		}
	}
	return b, cleanup, nil
}

func parseSync(s string) (broker.SyncPolicy, error) {
	p, err := broker.ParseSyncPolicy(s)
	if err != nil {
		return 0, usageError{err}
	}
	return p, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, usageError{fmt.Errorf("bad count %q", p)}
		}
		out = append(out, n)
	}
	return out, nil
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the broker: publish, publish+receive+ack, recovery, backlog memory",
		Long: `bench runs bounded load against an embedded broker on local disk (and, for
'bench network', a 'chute serve' process on 127.0.0.1) and prints rates.
Every figure is from this machine now: compare runs made side by side.

Comparisons with other brokers (NATS JetStream today) are not in this binary:
they are the chute-compare command of the bench/ module, run from the chute
repository:

  go -C bench run ./cmd/chute-compare publish --nats nats://127.0.0.1:4222
  go -C bench run ./cmd/chute-compare backlog --nats nats://127.0.0.1:4222 --nats-pid PID`,
	}
	cmd.AddCommand(newBenchPublishCmd(), newBenchPubSubCmd(), newBenchRecoveryCmd(), newBenchBacklogCmd(), newBenchNetworkCmd(),
		newBenchSchedulesCmd(), newBenchDiskCmd(), newBenchStallsCmd(), newBenchRunCmd()) // bench_schedules.go, bench_disk.go, bench_stalls.go, bench_run.go
	return cmd
}

func newBenchPublishCmd() *cobra.Command {
	var f benchFlags
	var pubs string
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Confirmed publish throughput with 1, 16 and 256 publishers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			counts, err := parseInts(pubs)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "# %s, GOMAXPROCS=%d, sync=%s, %dB bodies\n", runtime.Version(), runtime.GOMAXPROCS(0), f.sync, f.size)
			for _, n := range counts {
				b, cleanup, err := f.open(fmt.Sprintf("publish-%d", n))
				if err != nil {
					return err
				}
				before := b.JournalStats()
				r, err := bench.Publish(cmd.Context(), b, "bench", n, f.size, f.duration, false)
				after := b.JournalStats()
				cleanup()
				if err != nil {
					return err
				}
				r.Name = "chute embedded " + r.Name
				r.Syncs = after.Syncs - before.Syncs
				if r.Syncs > 0 {
					r.RecordsPerSync = float64(after.Records-before.Records) / float64(r.Syncs)
				}
				fmt.Fprintln(out, r)
			}
			return nil
		},
	}
	f.register(cmd, 256)
	cmd.Flags().StringVar(&pubs, "publishers", "1,16,256", "comma-separated publisher counts")
	return cmd
}

func newBenchPubSubCmd() *cobra.Command {
	var f benchFlags
	var pubs, cons, batch int
	cmd := &cobra.Command{
		Use:   "pubsub",
		Short: "Publish, receive and ack throughput (acked messages per second)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, cleanup, err := f.open("pubsub")
			if err != nil {
				return err
			}
			defer cleanup()
			r, err := bench.PubSub(cmd.Context(), b, "bench", pubs, cons, f.size, batch, f.duration)
			if err != nil {
				return err
			}
			r.Name = "chute embedded " + r.Name
			fmt.Fprintln(cmd.OutOrStdout(), r)
			return nil
		},
	}
	f.register(cmd, 256)
	cmd.Flags().IntVar(&pubs, "publishers", 64, "publishers")
	cmd.Flags().IntVar(&cons, "consumers", 8, "consumers")
	cmd.Flags().IntVar(&batch, "batch", 64, "messages per receive (and per ack)")
	return cmd
}

func newBenchRecoveryCmd() *cobra.Command {
	var f benchFlags
	var n int
	cmd := &cobra.Command{
		Use:   "recovery",
		Short: "Time to reopen a journal holding N queued messages, after a clean stop and after a crash",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			f.sync = "never" // filling fast; recovery is what is measured
			b, cleanup, err := f.open("recovery")
			if err != nil {
				return err
			}
			defer cleanup()
			start := time.Now()
			if err := bench.Fill(ctx, b, "bench", n, f.size, 1); err != nil {
				return err
			}
			fmt.Fprintf(out, "filled %d × %dB messages (one publish each) in %v\n", n, f.size, time.Since(start).Round(time.Millisecond))
			// A crash image: the files as they are now, without the final
			// checkpoint that Close writes.
			dir := filepath.Join(f.root, "recovery")
			crash := dir + "-crash"
			if err := syncCopy(ctx, b, dir, crash); err != nil {
				return err
			}
			defer os.RemoveAll(crash)
			if err := b.Close(); err != nil {
				return err
			}
			for _, c := range []struct{ name, dir string }{{"after a clean stop", dir}, {"after a crash", crash}} {
				start := time.Now()
				rb, err := broker.Open(c.dir, nil)
				if err != nil {
					return err
				}
				took := time.Since(start)
				rs := rb.RecoveryStats()
				s, err := rb.QueueStats(ctx, "bench")
				rb.Close()
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "reopen %-20s %8v  (%d queued; checkpoint %d B, %d records replayed)\n",
					c.name, took.Round(time.Millisecond), s.Ready, rs.Checkpoint, rs.Records)
			}
			return nil
		},
	}
	f.register(cmd, 256)
	cmd.Flags().IntVar(&n, "messages", 1_000_000, "messages to queue")
	return cmd
}

// syncCopy copies the journal directory as it is on disk (after a sync),
// which is what a crash would leave.
func syncCopy(ctx context.Context, b *broker.Broker, from, to string) error {
	if err := b.SyncJournal(ctx); err != nil {
		return err
	}
	os.RemoveAll(to)
	if out, err := exec.CommandContext(ctx, "cp", "-r", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("copy journal: %v: %s", err, out)
	}
	return nil
}

func newBenchBacklogCmd() *cobra.Command {
	var f benchFlags
	var n int
	var server bool
	cmd := &cobra.Command{
		Use:   "backlog",
		Short: "Resident memory of the broker holding N queued messages (embedded, or through a chute serve process)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			b, cleanup, err := f.open("backlog")
			if err != nil {
				return err
			}
			defer cleanup()
			if server {
				b.Close() // only the directory is used: the server opens its own
				return backlogThroughServer(ctx, out, f.root, n, f.size, f.sync)
			}
			base, _, _ := bench.RSS()
			start := time.Now()
			if err := bench.Fill(ctx, b, "bench", n, f.size, 100); err != nil {
				return err
			}
			took := time.Since(start)
			cur, peak, err := bench.RSS()
			if err != nil {
				return err
			}
			runtime.GC()
			debug.FreeOSMemory()
			settled, _, _ := bench.RSS()
			s, _ := b.QueueStats(ctx, "bench")
			fmt.Fprintf(out, "chute: queued %d × %dB (%d MB of messages) in %v with sync=%s\n", s.Ready, f.size, s.ReadyBytes>>20, took.Round(time.Millisecond), f.sync)
			fmt.Fprintf(out, "chute: resident memory %d MB at start, %d MB after filling (peak %d MB), %d MB after GC\n",
				base>>20, cur>>20, peak>>20, settled>>20)
			return nil
		},
	}
	f.register(cmd, 1024)
	cmd.Flags().IntVar(&n, "messages", 1_000_000, "messages to queue")
	cmd.Flags().BoolVar(&server, "server", false, "through a chute serve process on 127.0.0.1 (Linux: its memory from /proc): memory while filling and draining, the drain rate, and the disk given back after the last ack")
	return cmd
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments", cmd.CommandPath())}
	}
	return nil
}
