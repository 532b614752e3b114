package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

func newDemoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an embedded broker and show its features at work, in a few seconds",
		Long: `demo opens an embedded broker on a temporary journal and walks through
publish, priority and delayed delivery, ack, nack with back-off, retries,
dead-lettering and redrive, printing what happens.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				tmp, err := os.MkdirTemp("", "chute-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			return runDemo(cmd.Context(), cmd.OutOrStdout(), dir)
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "journal directory (default: a temporary one, removed afterwards)")
	return cmd
}

func runDemo(ctx context.Context, w io.Writer, dir string) error {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(w, "[%5.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	b, err := broker.Open(dir, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	say("opened an embedded broker, journal in %s (sync: always)", dir)

	cfg := chute.QueueConfig{
		MaxDeliveries: 3,
		Backoff:       chute.Backoff{Kind: chute.BackoffExponential, Delay: 200 * time.Millisecond, Jitter: -1},
	}
	if err := b.CreateQueue(ctx, "orders", cfg); err != nil {
		return err
	}
	say("created queue %q: 3 deliveries, exponential back-off from 200ms, dead letters to %q", "orders", "orders.dlq")

	// Priority: the urgent order overtakes the ones published before it.
	msgs := []chute.Message{
		{Body: []byte("order 1")},
		{Body: []byte("order 2")},
		{Body: []byte("URGENT order 3"), Priority: 9},
		{Body: []byte("poison order 4"), Headers: map[string]string{"kind": "poison"}},
		{Body: []byte("order 5, delayed by 1s"), Delay: time.Second},
	}
	res, err := b.Publish(ctx, "orders", msgs...)
	if err != nil {
		return err
	}
	say("published %d messages (seq %d..%d), confirmed after fsync", len(res), res[0].Seq, res[len(res)-1].Seq)

	// A consumer that handles everything except the poison message.
	deadline := time.Now().Add(5 * time.Second)
	acked := 0
	for acked < 4 && time.Now().Before(deadline) {
		ds, err := b.Receive(ctx, "orders", chute.ReceiveOptions{Max: 10, Wait: time.Until(deadline)})
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Headers["kind"] == "poison" {
				say("received %-26q delivery %d → nack: cannot parse", d.Body, d.Deliveries)
				if err := b.Nack(ctx, "orders", chute.Nack{Receipt: d.Receipt, Error: "cannot parse order"}); err != nil {
					return err
				}
				continue
			}
			say("received %-26q priority %d → ack", d.Body, d.Priority)
			if err := b.Ack(ctx, "orders", d.Receipt); err != nil {
				return err
			}
			acked++
		}
	}
	dls, err := b.Peek(ctx, "orders.dlq", 10)
	if err != nil {
		return err
	}
	for _, d := range dls {
		var hs []string
		for k, v := range d.Headers {
			if strings.HasPrefix(k, "chute-dead-") {
				hs = append(hs, k+"="+v)
			}
		}
		sort.Strings(hs)
		say("dead letter in orders.dlq: %q  %s", d.Body, strings.Join(hs, " "))
	}
	n, err := b.Redrive(ctx, "orders.dlq", 0)
	if err != nil {
		return err
	}
	s, err := b.QueueStats(ctx, "orders")
	if err != nil {
		return err
	}
	say("redrove %d dead letter(s) back: orders now holds %d ready message(s)", n, s.Ready)
	t := s.Totals
	say("orders totals: enqueued %d, delivered %d, acked %d, nacked %d, dead-lettered %d, redriven %d",
		t.Enqueued, t.Delivered, t.Acked, t.Nacked, t.DeadLettered, t.Redriven)
	if acked != 4 || len(dls) != 1 || n != 1 {
		return fmt.Errorf("demo did not go as expected: %d acked, %d dead letters, %d redriven", acked, len(dls), n)
	}
	return nil
}
