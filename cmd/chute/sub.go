package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// settleTimeout bounds the ack that follows printed messages. It runs
// even after an interrupt, so that what was printed is settled.
const settleTimeout = 10 * time.Second

// countWait is sub's --wait when --count is given and --wait is not (a
// variable for tests).
var countWait = 10 * time.Second

// subFlags are the flags of chute sub.
type subFlags struct {
	count int
	noAck bool
	max   int
	wait  time.Duration
	lease time.Duration
}

func newSubCmd(f *clientFlags) *cobra.Command {
	var s subFlags
	cmd := &cobra.Command{
		Use:   "sub QUEUE",
		Short: "Receive messages from a queue, print them and ack them",
		Long: `sub receives messages from QUEUE, prints them, and acks them once
printed (so a message is printed at least once).

How long it runs (as nats sub and kubectl logs -f do, it follows by
default):
  without --count  until interrupted (Ctrl-C); when stdout is a terminal it
                   says so on stderr first. --wait D ends it, with exit
                   status 0, after D without a message.
  with --count N   until N messages are printed, or until --wait (default
                   10s) passes without a message: then it exits with status
                   9, fewer messages than asked. --wait 0 waits for all N.

With --no-ack it neither acks nor nacks: each message is printed with its
receipt ("receipt" and "lease_deadline" in JSON) and stays leased to you
for --lease (default: the queue's visibility timeout), so that you can
settle it later with chute ack, chute nack or chute extend. A lease that
ends unsettled makes the message ready again, and that delivery used one
of its --max-deliveries. To look without taking, use chute queue peek.

Output is one line per message; with --json one JSON object per line
(body is a string when it is valid UTF-8, else body_base64 holds it; the
shape is "delivery" in docs/cli.md).`,
		Example: `  chute sub orders                          # follow until Ctrl-C
  chute sub orders --count 1                # exit 9 if none comes within 10s
  chute sub orders --wait 5s --json | jq .body
  chute sub orders --no-ack --count 10 --json | jq -r .receipt | chute ack orders`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return s.run(cmd, args[0], api, f.json)
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&s.count, "count", 0, "stop after this many messages (0: follow until interrupted)")
	fl.BoolVar(&s.noAck, "no-ack", false, "do not ack: print each receipt and keep the lease, to settle later with chute ack, nack or extend")
	fl.IntVar(&s.max, "max", 10, "most messages per receive")
	flagVar(fl, newDurationValue(&s.wait, 0, false), "wait", "DURATION",
		"stop after this long without a message (default: 10s with --count, else never; 0: never)")
	flagVar(fl, newDurationValue(&s.lease, 0, false), "lease", "DURATION", "how long each delivery is leased (0: the queue's visibility timeout)")
	return cmd
}

func (s *subFlags) run(cmd *cobra.Command, queue string, api chute.API, asJSON bool) error {
	switch {
	case s.count < 0:
		return usageError{fmt.Errorf("--count %d: must not be negative", s.count)}
	case s.max < 1:
		return usageError{fmt.Errorf("--max %d: must be at least 1", s.max)}
	case s.wait < 0:
		return usageError{fmt.Errorf("--wait %v: must not be negative", s.wait)}
	case s.lease < 0:
		return usageError{fmt.Errorf("--lease %v: must not be negative", s.lease)}
	}
	wait := s.wait
	if s.count > 0 && !cmd.Flags().Changed("wait") {
		wait = countWait
	}
	if wait == 0 && isTerminal(cmd.OutOrStdout()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "waiting for messages on %s (Ctrl-C to stop)\n", queue)
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	for got := 0; s.count == 0 || got < s.count; {
		n := s.max
		if s.count > 0 {
			n = min(n, s.count-got)
		}
		ds, err := api.Receive(ctx, queue, chute.ReceiveOptions{Max: n, Wait: wait, Lease: s.lease})
		if err != nil {
			if ctx.Err() == nil {
				return err
			}
			if s.count == 0 {
				return nil // interrupted: the way a sub without --count ends
			}
			return fmt.Errorf("interrupted after %d of %d messages: %w", got, s.count, ctx.Err())
		}
		if len(ds) == 0 { // --wait passed without a message
			if s.count > 0 {
				return &shortReceiveError{queue: queue, got: got, want: s.count, wait: wait}
			}
			return nil
		}
		receipts := make([]string, len(ds))
		for i := range ds {
			receipts[i] = ds[i].Receipt
			if !s.noAck { // acked below: the receipt is of no use to the reader
				ds[i].Receipt, ds[i].LeaseDeadline = "", time.Time{}
			}
			if err := printDelivery(out, &ds[i], asJSON); err != nil {
				return err
			}
		}
		got += len(ds)
		if s.noAck {
			continue
		}
		if err := settle(ctx, func(ctx context.Context) error { return api.Ack(ctx, queue, receipts...) }); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

// settle runs an ack or nack with a context that outlives an interrupt of
// ctx, bounded by settleTimeout.
func settle(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return fn(ctx)
}

// deliveryJSON is a message as --json prints it (sub, queue peek, dlq
// peek; docs/cli.md, "delivery"). Receipt and LeaseDeadline are there only
// while the lease is the reader's to settle (sub --no-ack).
type deliveryJSON struct {
	Queue         string            `json:"queue"`
	Seq           uint64            `json:"seq"`
	Receipt       string            `json:"receipt,omitempty"`
	LeaseDeadline *time.Time        `json:"lease_deadline,omitempty"`
	Body          *string           `json:"body,omitempty"`
	BodyBase64    string            `json:"body_base64,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	Priority      int               `json:"priority"`
	ID            string            `json:"id,omitempty"`
	Key           string            `json:"key,omitempty"`
	Deliveries    int               `json:"deliveries"`
	Published     time.Time         `json:"published"`
	LastError     string            `json:"last_error,omitempty"`
	DeadLetter    *deadLetterJSON   `json:"dead_letter,omitempty"`
}

type deadLetterJSON struct {
	Source     string    `json:"source"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	LastError  string    `json:"last_error,omitempty"`
	Died       time.Time `json:"died"`
	SourceSeq  uint64    `json:"source_seq"`
}

func newDeliveryJSON(d *chute.Delivery) deliveryJSON {
	j := deliveryJSON{Queue: d.Queue, Seq: d.Seq, Receipt: d.Receipt, Headers: d.Headers, Priority: d.Priority, ID: d.ID, Key: d.Key,
		Deliveries: d.Deliveries, Published: d.Published, LastError: d.LastError}
	if d.Receipt != "" && !d.LeaseDeadline.IsZero() {
		deadline := d.LeaseDeadline
		j.LeaseDeadline = &deadline
	}
	if utf8.Valid(d.Body) {
		body := string(d.Body)
		j.Body = &body
	} else {
		j.BodyBase64 = base64.StdEncoding.EncodeToString(d.Body)
	}
	if dl := d.DeadLetter; dl != nil {
		j.DeadLetter = &deadLetterJSON{Source: dl.Source, Reason: dl.Reason, Deliveries: dl.Deliveries,
			LastError: dl.LastError, Died: dl.Died, SourceSeq: dl.SourceSeq}
	}
	return j
}

// printDelivery prints a message on one line: a JSON object, or
// seq=12 prio=0 deliveries=1 [receipt=R] body="..." headers=k=v,...
// (the receipt when the delivery has one).
func printDelivery(w io.Writer, d *chute.Delivery, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(newDeliveryJSON(d))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d prio=%d deliveries=%d", d.Seq, d.Priority, d.Deliveries)
	if d.Receipt != "" {
		fmt.Fprintf(&b, " receipt=%s", d.Receipt)
	}
	if d.ID != "" {
		fmt.Fprintf(&b, " id=%s", strconv.Quote(d.ID))
	}
	if d.Key != "" {
		fmt.Fprintf(&b, " key=%s", strconv.Quote(d.Key))
	}
	fmt.Fprintf(&b, " body=%q", d.Body)
	if len(d.Headers) > 0 {
		fmt.Fprintf(&b, " headers=%s", fmtKV(d.Headers))
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}
