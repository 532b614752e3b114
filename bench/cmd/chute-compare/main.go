// Command chute-compare runs the same workloads against chute and against
// other brokers in one run, and prints each figure with its ratio against
// chute.
//
// `all` is issue 11's comparison: it starts a fresh server of each system
// per run (chute serve with its defaults; NATS JetStream, Redis and
// RabbitMQ through package peers, installed from Debian if missing), runs
// the eight workloads of package workload, stops the server by PID, and
// prints medians of the runs with ratios chute/best peer:
//
//	go -C bench run ./cmd/chute-compare all --runs 3 --duration 5s
//
// `publish` and `backlog` are the earlier comparisons against chute
// embedded and a NATS server started by hand:
//
//	go -C bench run ./cmd/chute-compare publish --nats nats://127.0.0.1:4222
//
// It lives in its own module (github.com/chutemq/chute/bench) so that the
// other brokers' clients never enter the chute binary (issue 7); chute is
// reached through its public packages only (broker, client) and its
// binary.
//
// main only builds the command tree and exits with the status the command
// returns: 0 success, 1 failure, 2 bad usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chute-compare:", err)
	}
	os.Exit(exitCode(err))
}

// newRootCmd builds the command tree; tests run it with their own args.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "chute-compare",
		Short: "Compare chute with other brokers under the same load, in one run",
		Long: `chute-compare all runs issue 11's comparison: fresh servers of chute, NATS
JetStream, Redis and RabbitMQ, the eight workloads, medians of runs and
ratios (see 'chute-compare all --help').

publish and backlog run each workload against chute embedded in this process and
against the other brokers named by flags (--nats URL: a NATS server with
JetStream that you started), one after the other in the same run, and prints
each rate with its ratio against chute. Every figure is from this machine
now: read the ratios, not the absolute rates.

Run it from the chute repository:

  go -C bench run ./cmd/chute-compare all --runs 3 --duration 5s
  go -C bench run ./cmd/chute-compare publish --duration 5s --nats nats://127.0.0.1:4222
  go -C bench run ./cmd/chute-compare backlog --nats nats://127.0.0.1:4222 --nats-pid $(pgrep nats-server)

Chute-only measurements are 'chute bench'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newAllCmd(), newPublishCmd(), newBacklogCmd())
	return root
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// runFlags are shared by the subcommands.
type runFlags struct {
	size     int
	duration time.Duration
	sync     string
	data     string
}

func (f *runFlags) register(cmd *cobra.Command, size int) {
	cmd.Flags().IntVar(&f.size, "size", size, "message body size in bytes")
	cmd.Flags().DurationVar(&f.duration, "duration", 5*time.Second, "how long each run lasts")
	cmd.Flags().StringVar(&f.sync, "sync", "always", "chute's sync policy: always, interval or never")
	cmd.Flags().StringVar(&f.data, "data", "", "directory for chute's journals (default: a temporary one, removed afterwards)")
}

// embedded returns chute embedded, with its journals under the data
// directory, and a function removing what it made.
func (f *runFlags) embedded() (*adapters.Chute, func(), error) {
	policy, err := broker.ParseSyncPolicy(f.sync)
	if err != nil {
		return nil, nil, usageError{err}
	}
	dir, cleanup := f.data, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "chute-compare-"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	return adapters.NewChuteEmbedded(dir, &broker.Options{Sync: policy}), cleanup, nil
}

// systemFlags name the brokers chute is compared with. Issue 11 adds Redis
// and RabbitMQ here, each a URL flag and a pid flag.
type systemFlags struct {
	nats, natsPID string
}

func (s *systemFlags) register(cmd *cobra.Command, pids bool) {
	cmd.Flags().StringVar(&s.nats, "nats", "", "also run against NATS JetStream at this URL (e.g. nats://127.0.0.1:4222)")
	if pids {
		cmd.Flags().StringVar(&s.natsPID, "nats-pid", "", "the nats-server process id, to read its memory (needed with --nats)")
	}
}

// other is a broker chute is compared with, and its server's process id
// (for memory measurements).
type other struct {
	adapters.System
	pid     string
	pidFlag string
}

func (s *systemFlags) others() []other {
	var out []other
	if s.nats != "" {
		out = append(out, other{adapters.NewNATS(s.nats), s.natsPID, "--nats-pid"})
	}
	return out
}

// short is the first word of a system's name, for ratio labels
// ("chute/nats").
func short(sys adapters.System) string { return strings.Fields(sys.Name())[0] }

// dialChute compares a chute server over the network instead of the
// embedded broker.
func dialChute(addr string) (*adapters.Chute, func(), error) {
	c, err := client.Dial(addr)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--chute %s: %w", addr, err)}
	}
	return adapters.NewChuteAPI("chute network", c), func() { c.Close() }, nil
}

func parseCounts(s string) ([]int, error) {
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

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments", cmd.CommandPath())}
	}
	return nil
}
