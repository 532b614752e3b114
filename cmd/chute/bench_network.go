package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/bench"
	"github.com/chutemq/chute/internal/serveproc"
)

func newBenchNetworkCmd() *cobra.Command {
	var f benchFlags
	var pubs, consumers, batch, prefetch, concurrency int
	var messages int64
	cmd := &cobra.Command{
		Use:   "network",
		Short: "The same loads embedded and over the network (a chute serve process on 127.0.0.1), side by side",
		Long: `network measures, in one run: confirmed publishes from N goroutines through the
embedded broker, then through the Go client's Producer to a 'chute serve'
process on 127.0.0.1 (sync always in both); and draining a queue of M
messages with receive+ack embedded, then with the Go client's Runner over the
network. It prints each rate and the network/embedded ratios.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			b, cleanup, err := f.open("embedded")
			if err != nil {
				return err
			}
			defer cleanup()
			c, addr, _, stop, err := servedBench(ctx, filepath.Join(f.root, "served"), f.sync)
			if err != nil {
				return err
			}
			defer stop()
			fmt.Fprintf(out, "# sync=%s, %dB bodies, server %s\n", f.sync, f.size, addr)

			// The same messages both ways: with message IDs and without
			// (the Producer's default, a session, keeps no per-message
			// de-dup entry: it costs what "without IDs" costs).
			for _, ids := range []bool{true, false} {
				label := "with message IDs"
				if !ids {
					label = "without IDs"
				}
				emb, err := bench.Publish(ctx, b, "bench", pubs, f.size, f.duration, ids)
				if err != nil {
					return err
				}
				emb.Name = "embedded " + emb.Name + ", " + label
				fmt.Fprintln(out, emb)
				net, err := bench.ProducerPublish(ctx, c, "bench", pubs, f.size, f.duration, client.ProducerOptions{NoSession: true, NoIDs: !ids})
				if err != nil {
					return err
				}
				net.Name = "network " + net.Name + ", " + label
				fmt.Fprintf(out, "%v\n  → network/embedded publish %s: %.2f\n", net, label, net.Rate()/emb.Rate())
			}

			for _, api := range []chute.API{b, c} {
				if _, err := api.PurgeQueue(ctx, "bench"); err != nil {
					return err
				}
				if err := bench.Fill(ctx, api, "bench", int(messages), f.size, 500); err != nil {
					return err
				}
			}
			drain, err := bench.Drain(ctx, b, "bench", consumers, batch, messages)
			if err != nil {
				return err
			}
			drain.Name = "embedded " + drain.Name
			fmt.Fprintln(out, drain)
			runner, err := bench.RunnerDrain(ctx, c, "bench", messages, client.RunnerOptions{Concurrency: concurrency, Prefetch: prefetch})
			if err != nil {
				return err
			}
			runner.Name = "network " + runner.Name
			fmt.Fprintf(out, "%v\n  → network/embedded receive+ack: %.2f\n", runner, runner.Rate()/drain.Rate())
			return nil
		},
	}
	f.register(cmd, 256)
	cmd.Flags().IntVar(&pubs, "publishers", 256, "publishing goroutines")
	cmd.Flags().Int64Var(&messages, "messages", 300_000, "messages to drain")
	cmd.Flags().IntVar(&consumers, "consumers", 8, "embedded consumers")
	cmd.Flags().IntVar(&batch, "batch", 64, "embedded receive and ack batch")
	cmd.Flags().IntVar(&concurrency, "concurrency", 8, "runner handlers")
	cmd.Flags().IntVar(&prefetch, "prefetch", 2048, "runner prefetch")
	return cmd
}

// servedBench starts this binary's serve on 127.0.0.1 with its journal in
// dir (serveproc), connects to it and creates the queue "bench"; stop
// closes the client, stops the process and removes dir.
func servedBench(ctx context.Context, dir, sync string) (c *client.Client, addr string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", 0, nil, err
	}
	p, err := serveproc.Start(ctx, exe, nil, "", "--data", dir, "--sync", sync)
	if err != nil {
		return nil, "", 0, nil, err
	}
	addr, pid = p.Addr, p.PID()
	stopServer := func() { p.Stop(); os.RemoveAll(dir) }
	if c, err = client.Dial(addr); err != nil {
		stopServer()
		return nil, "", 0, nil, err
	}
	stop = func() { c.Close(); stopServer() }
	if err := c.CreateQueue(ctx, "bench", chute.QueueConfig{}); err != nil {
		stop()
		return nil, "", 0, nil, err
	}
	return c, addr, pid, stop, nil
}
