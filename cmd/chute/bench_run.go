package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/bench"
)

// bench run: the general load generator (issue 11), like `nats bench` or
// RabbitMQ's PerfTest. The driver is bench.Run; this file only turns flags
// into a bench.RunConfig, picks the broker (embedded, a chute serve
// process, or a running server) and prints the result.

// benchRunLong is the command's help, with the --json fields: keep it in
// step with bench.RunResult.
const benchRunLong = `run drives producers and consumers against a broker and reports throughput
and latency distributions (HDR histograms: p50, p90, p99, p99.9, max).

The broker is, by default, embedded (a fresh journal under --data, or a
temporary directory); with --serve, a 'chute serve' process this command
starts on a free 127.0.0.1 port; with --server ADDR, a running server (the
client flags --token and --tls-ca apply; $CHUTE_SERVER is not read). --sync
and --data are for the first two. The run creates its own queues (--name, default a random
bench-run-XXXXXX) and deletes them afterwards unless --keep.

Each producer is a client.Producer with default options (--batch sets its
BatchSize) and keeps at most --window messages unconfirmed (a semaphore on
messages; the producer's own window of MaxInFlight batches may bind first).
Each consumer is a client.Consumer (over the network a Consume stream,
with --prefetch as its prefetch) on its queue or subscription: it loops
on Receive (at most --prefetch at a time) and acks from a goroutine of its
own (--ack batch: one Ack per received batch; each: one per message), so
that receiving never waits for an ack. Publishing stops at --count messages or after --duration
(given --count alone, there is no time limit), then consumers drain for at
most --drain (plus the longest delay of --delay-mix).

--rate paces publishing across producers on a schedule: message i is due at
start + i/rate; producers that fall behind send at once but never catch up
by more than 10 ms of slots (those are skipped and counted).

Mixes are value:weight lists: --priority-mix 0:50,9:50, --delay-mix
0:90,1s:10. --topic publishes to a topic with --subscriptions N (consumers
spread over them; N copies of each message are expected); --queues K
spreads producers and consumers over K queues.

Latencies, measured in this process with one clock (the body carries the
send time):
  confirm     publish call → confirmed durable
  end_to_end  publish call → received by a consumer (messages without delay)
  lateness    received − (publish call + delay) (delayed messages; "early"
              counts those received before they were due)
Priority inversions (with a priority mix): a first delivery B counts when,
on its queue, a higher-priority undelayed message A was confirmed before the
Receive that returned B started, and was received only by a Receive that
started after that one returned. Meaningful with --prefetch 1.

--json prints one object:
  config       {target, sync, name, producers, consumers, size, count,
                duration_s, rate, window, batch, prefetch, ack, priority_mix,
                delay_mix, topic, subscriptions, queues}
  elapsed_s, published, confirmed, expected (confirmed × copies), consumed
  (first deliveries), redelivered, acked, rate_skipped
  throughput   {published_per_s, confirmed_per_s, consumed_per_s}
  latency_ms   {confirm, end_to_end, lateness}: each {n, mean_ms, p50_ms,
               p90_ms, p99_ms, p99_9_ms, max_ms}
  early, inversions {count, checked}, errors {publish, receive, ack, first}

A publish or receive failure stops the run (exit status 1, after the
report). A progress line goes to stderr once a second on a terminal, or
with --progress.`

// benchRunFlags are bench run's own flags (benchFlags and clientFlags hold
// the shared ones).
type benchRunFlags struct {
	serve                 bool
	producers, consumers  int
	count                 int64
	rate                  float64
	window, batch         int
	linger                time.Duration
	prefetch              int
	ack                   string
	priorityMix, delayMix string
	topic                 bool
	subscriptions, queues int
	name                  string
	drain                 time.Duration
	progress, keep        bool
}

// newBenchRunCmd builds `chute bench run`; benchRunLong says what it does.
func newBenchRunCmd() *cobra.Command {
	var f benchFlags
	var cf clientFlags
	var rf benchRunFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Producers and consumers against a broker: throughput, confirm and end-to-end latency (HDR), --json",
		Long:  benchRunLong,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rf.config(cmd, &f)
			if err != nil {
				return err
			}
			api, cleanup, err := rf.open(cmd, &f, &cf, &cfg)
			if err != nil {
				return err
			}
			defer cleanup()
			res, runErr := bench.Run(cmd.Context(), api, cfg)
			if res == nil {
				if errors.Is(runErr, chute.ErrExists) {
					return usageError{fmt.Errorf("%w (choose another --name)", runErr)}
				}
				return cf.explain(runErr)
			}
			if cf.json {
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else {
				printRunResult(cmd.OutOrStdout(), res)
			}
			return cf.explain(runErr)
		},
	}
	f.register(cmd, 256)
	cf.register(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&rf.serve, "serve", false, "start a chute serve process on 127.0.0.1 (a free port, a fresh directory) and run against it")
	fl.IntVar(&rf.producers, "producers", 1, "producers (each a client.Producer)")
	fl.IntVar(&rf.consumers, "consumers", 1, "consumers (each a Receive + Ack loop); 0 publishes only")
	fl.Int64Var(&rf.count, "count", 0, "messages to publish in all (0: until --duration)")
	fl.Float64Var(&rf.rate, "rate", 0, "messages per second across producers (0: flat out)")
	fl.IntVar(&rf.window, "window", 1000, "most unconfirmed messages per producer")
	fl.IntVar(&rf.batch, "batch", 0, "producer batch size (0: the Producer's default)")
	fl.DurationVar(&rf.linger, "linger", 0, "how long a producer's batch may wait for more messages (0: sent as soon as the window has room)")
	fl.IntVar(&rf.prefetch, "prefetch", 1000, "each consumer's prefetch, and the most messages per Receive")
	fl.StringVar(&rf.ack, "ack", "batch", "ack mode: batch (one call per received batch) or each (one call per message)")
	fl.StringVar(&rf.priorityMix, "priority-mix", "", `priorities with weights, e.g. "0:50,9:50" (default all 0)`)
	fl.StringVar(&rf.delayMix, "delay-mix", "", `delays with weights, e.g. "0:90,1s:10" (default none)`)
	fl.BoolVar(&rf.topic, "topic", false, "publish to a topic with --subscriptions subscriptions")
	fl.IntVar(&rf.subscriptions, "subscriptions", 1, "subscriptions of the topic (with --topic)")
	fl.IntVar(&rf.queues, "queues", 1, "queues to spread producers and consumers over")
	fl.StringVar(&rf.name, "name", "", "name of the run's queue or topic (default bench-run-XXXXXX, random)")
	fl.DurationVar(&rf.drain, "drain", 10*time.Second, "longest wait for consumers after publishing stops (plus the longest delay)")
	fl.BoolVar(&rf.progress, "progress", false, "print a progress line to stderr every second even when it is not a terminal")
	fl.BoolVar(&rf.keep, "keep", false, "leave the run's queues or topic in place afterwards")
	return cmd
}

// config turns the flags into a run configuration; mistakes are usage
// errors.
func (rf *benchRunFlags) config(cmd *cobra.Command, f *benchFlags) (bench.RunConfig, error) {
	prio, err := bench.ParsePriorityMix(rf.priorityMix)
	if err != nil {
		return bench.RunConfig{}, usageError{err}
	}
	delays, err := bench.ParseDelayMix(rf.delayMix)
	if err != nil {
		return bench.RunConfig{}, usageError{err}
	}
	duration := f.duration
	if cmd.Flags().Changed("count") && !cmd.Flags().Changed("duration") {
		duration = 0
	}
	name := rf.name
	if name == "" {
		var b [3]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		name = "bench-run-" + hex.EncodeToString(b[:])
	}
	cfg := bench.RunConfig{Name: name, Producers: rf.producers, Consumers: rf.consumers, Size: f.size,
		Count: rf.count, Duration: duration, Rate: rf.rate, Window: rf.window, Batch: rf.batch, Linger: rf.linger, Prefetch: rf.prefetch,
		Ack: bench.AckMode(rf.ack), Priorities: prio, Delays: delays, Topic: rf.topic, Subscriptions: rf.subscriptions,
		Queues: rf.queues, Drain: rf.drain, Keep: rf.keep}
	// Explicit zeros must not turn into defaults: bench.Run fills zeros.
	if rf.producers < 1 || rf.consumers < 0 || rf.window < 1 || rf.prefetch < 1 || rf.subscriptions < 1 || rf.queues < 1 || f.size < 1 || rf.drain <= 0 {
		return cfg, usageError{errors.New("--producers, --window, --prefetch, --subscriptions, --queues, --size and --drain must be positive, --consumers at least 0")}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	switch {
	case rf.serve && cmd.Flags().Changed("server"):
		return cfg, usageError{errors.New("--serve and --server exclude each other")}
	case cmd.Flags().Changed("server") && (cmd.Flags().Changed("sync") || cmd.Flags().Changed("data")):
		return cfg, usageError{errors.New("--sync and --data are for the embedded broker and --serve, not --server")}
	}
	if isTerminal(cmd.ErrOrStderr()) || rf.progress {
		cfg.Progress, cfg.InPlace = cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr())
	}
	return cfg, nil
}

// open returns the broker to run against (labelling cfg with it) and what
// closes it.
func (rf *benchRunFlags) open(cmd *cobra.Command, f *benchFlags, cf *clientFlags, cfg *bench.RunConfig) (chute.API, func(), error) {
	switch {
	case cmd.Flags().Changed("server"):
		c, err := cf.dial(cmd.ErrOrStderr())
		if err != nil {
			return nil, nil, err
		}
		cfg.Target = "server " + cf.target.hostport
		return c, func() { c.Close() }, nil
	case rf.serve:
		if _, err := parseSync(f.sync); err != nil {
			return nil, nil, err
		}
		root := f.data
		if root == "" {
			dir, err := os.MkdirTemp("", "chute-bench-")
			if err != nil {
				return nil, nil, err
			}
			root = dir
		}
		c, addr, _, stop, err := servedBench(cmd.Context(), filepath.Join(root, "run-serve"), f.sync)
		if err != nil {
			return nil, nil, err
		}
		cfg.Target, cfg.Sync = "serve "+addr, f.sync
		return c, func() {
			stop()
			if f.data == "" {
				os.RemoveAll(root)
			}
		}, nil
	}
	b, cleanup, err := f.open("run")
	if err != nil {
		return nil, nil, err
	}
	cfg.Target, cfg.Sync = "embedded", f.sync
	return b, cleanup, nil
}

// printRunResult prints the human table.
func printRunResult(out io.Writer, r *bench.RunResult) {
	c := r.Config
	fmt.Fprintf(out, "# chute bench run: %s", c.Target)
	if c.Sync != "" {
		fmt.Fprintf(out, ", sync=%s", c.Sync)
	}
	fmt.Fprintf(out, ", %d producer(s), %d consumer(s), %d B", c.Producers, c.Consumers, c.Size)
	if c.Rate > 0 {
		fmt.Fprintf(out, ", rate %g/s", c.Rate)
	}
	if c.Topic {
		fmt.Fprintf(out, ", topic with %d subscriptions", c.Subscriptions)
	} else if c.Queues > 1 {
		fmt.Fprintf(out, ", %d queues", c.Queues)
	}
	fmt.Fprintf(out, ", %.1fs\n", r.ElapsedS)
	t := newTable(out)
	fmt.Fprintln(t, "\tmessages\tper second")
	fmt.Fprintf(t, "published\t%d\t%.0f\n", r.Published, r.Throughput.Published)
	fmt.Fprintf(t, "confirmed\t%d\t%.0f\n", r.Confirmed, r.Throughput.Confirmed)
	if c.Consumers > 0 {
		fmt.Fprintf(t, "consumed\t%d of %d\t%.0f\n", r.Consumed, r.Expected, r.Throughput.Consumed)
	}
	t.Flush()
	fmt.Fprintln(out)
	t = newTable(out)
	fmt.Fprintln(t, "latency (ms)\tn\tp50\tp90\tp99\tp99.9\tmax")
	for _, l := range []struct {
		name string
		p    bench.Percentiles
	}{{"confirm", r.Latency.Confirm}, {"end-to-end", r.Latency.EndToEnd}, {"lateness", r.Latency.Lateness}} {
		if l.p.N > 0 {
			fmt.Fprintf(t, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", l.name, l.p.N, l.p.P50, l.p.P90, l.p.P99, l.p.P999, l.p.Max)
		}
	}
	t.Flush()
	if r.Redelivered > 0 || r.Early > 0 || r.RateSkipped > 0 {
		fmt.Fprintf(out, "redelivered %d, delivered early %d, paced slots skipped %d\n", r.Redelivered, r.Early, r.RateSkipped)
	}
	if r.Inversions.Checked > 0 {
		fmt.Fprintf(out, "priority inversions: %d of %d first deliveries\n", r.Inversions.Count, r.Inversions.Checked)
	}
	if e := r.Errors; e.Publish+e.Receive+e.Ack > 0 {
		fmt.Fprintf(out, "errors: %d publish, %d receive, %d ack", e.Publish, e.Receive, e.Ack)
		if e.First != "" {
			fmt.Fprintf(out, " (first: %s)", e.First)
		}
		fmt.Fprintln(out)
	}
}
