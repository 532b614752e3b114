package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// settleTimeout bounds the ack or nack that follows printed messages. It
// runs even after an interrupt, so that what was printed is settled.
const settleTimeout = 10 * time.Second

// subFlags are the flags of chute sub.
type subFlags struct {
	count int
	noAck bool
	max   int
	wait  time.Duration
}

func newSubCmd(f *clientFlags) *cobra.Command {
	var s subFlags
	cmd := &cobra.Command{
		Use:   "sub QUEUE",
		Short: "Receive messages from a queue, print them and ack them",
		Long: `sub receives messages from QUEUE, prints them, and acks them once
printed (so a message is printed at least once). It stops after --count
messages, after --wait without a message, or when interrupted.

With --no-ack it acks nothing: it holds the leases while it runs, so that
it shows each message once, and at the end nacks them all for immediate
redelivery. Each look still uses one of a message's deliveries: a message
on its last delivery goes to the dead-letter queue. A lease that lapses
while sub runs (the queue's visibility timeout) makes its message ready
again, and sub may show it again.

Output is one line per message; with --json one JSON object per line
(body is a string when it is valid UTF-8, else body_base64 holds it).`,
		Example: `  chute sub orders --count 1
  chute sub orders --wait 5s --json | jq .body
  chute sub orders --no-ack --count 10     # look without consuming`,
		Args: exactArgs(1),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return s.run(cmd, args[0], api, f.json)
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&s.count, "count", 0, "stop after this many messages (0: until interrupted)")
	fl.BoolVar(&s.noAck, "no-ack", false, "do not ack: nack every message back for immediate redelivery when sub ends")
	fl.IntVar(&s.max, "max", 10, "most messages per receive")
	fl.DurationVar(&s.wait, "wait", 0, "give up after this long without a message (0: wait until interrupted)")
	return cmd
}

func (s *subFlags) run(cmd *cobra.Command, queue string, api chute.API, asJSON bool) (err error) {
	switch {
	case s.count < 0:
		return usageError{fmt.Errorf("--count %d: must not be negative", s.count)}
	case s.max < 1:
		return usageError{fmt.Errorf("--max %d: must be at least 1", s.max)}
	case s.wait < 0:
		return usageError{fmt.Errorf("--wait %v: must not be negative", s.wait)}
	}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	var held []string // --no-ack: receipts to nack when sub ends
	defer func() {
		if rerr := release(ctx, api, queue, held); err == nil {
			err = rerr
		}
	}()
	for got := 0; s.count == 0 || got < s.count; {
		n := s.max
		if s.count > 0 {
			n = min(n, s.count-got)
		}
		ds, err := api.Receive(ctx, queue, chute.ReceiveOptions{Max: n, Wait: s.wait})
		if err != nil {
			if ctx.Err() == nil {
				return err
			}
			if s.count == 0 {
				return nil // interrupted: the way a sub without --count ends
			}
			return fmt.Errorf("interrupted after %d of %d messages: %w", got, s.count, ctx.Err())
		}
		if len(ds) == 0 {
			return nil // --wait passed without a message
		}
		receipts := make([]string, len(ds))
		for i := range ds {
			if err := printDelivery(out, &ds[i], asJSON); err != nil {
				return err
			}
			receipts[i] = ds[i].Receipt
		}
		got += len(ds)
		if s.noAck {
			held = append(held, receipts...)
			continue
		}
		if err := settle(ctx, func(ctx context.Context) error { return api.Ack(ctx, queue, receipts...) }); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

// release nacks the receipts held by sub --no-ack for immediate
// redelivery. A receipt whose lease already lapsed is no failure: its
// message is back already.
func release(ctx context.Context, api chute.API, queue string, receipts []string) error {
	const chunk = 1000 // the server's default batch limit
	for len(receipts) > 0 {
		n := min(chunk, len(receipts))
		nacks := make([]chute.Nack, n)
		for i, r := range receipts[:n] {
			nacks[i] = chute.Nack{Receipt: r, Delay: -1}
		}
		err := settle(ctx, func(ctx context.Context) error { return api.Nack(ctx, queue, nacks...) })
		if err != nil && !onlyStale(err) {
			return fmt.Errorf("nack (--no-ack): %w", err)
		}
		receipts = receipts[n:]
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

// onlyStale reports whether err lists receipts that all failed as stale.
func onlyStale(err error) bool {
	var re *chute.ReceiptErrors
	if !errors.As(err, &re) {
		return false
	}
	for _, f := range re.Failed {
		if !errors.Is(f.Err, chute.ErrStaleReceipt) {
			return false
		}
	}
	return true
}

// deliveryJSON is a delivered message as --json prints it (sub, dlq peek).
type deliveryJSON struct {
	Queue      string            `json:"queue"`
	Seq        uint64            `json:"seq"`
	Body       *string           `json:"body,omitempty"`
	BodyBase64 string            `json:"body_base64,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Priority   int               `json:"priority"`
	ID         string            `json:"id,omitempty"`
	Key        string            `json:"key,omitempty"`
	Deliveries int               `json:"deliveries"`
	Published  time.Time         `json:"published"`
	LastError  string            `json:"last_error,omitempty"`
	DeadLetter *deadLetterJSON   `json:"dead_letter,omitempty"`
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
	j := deliveryJSON{Queue: d.Queue, Seq: d.Seq, Headers: d.Headers, Priority: d.Priority, ID: d.ID, Key: d.Key,
		Deliveries: d.Deliveries, Published: d.Published, LastError: d.LastError}
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
// seq=12 prio=0 deliveries=1 body="..." headers=k=v,...
func printDelivery(w io.Writer, d *chute.Delivery, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(newDeliveryJSON(d))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seq=%d prio=%d deliveries=%d", d.Seq, d.Priority, d.Deliveries)
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
