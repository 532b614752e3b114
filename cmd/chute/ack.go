package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// ack, nack and extend settle deliveries by receipt, for the messages that
// chute sub --no-ack (or any consumer) printed and left leased.

// settleChunk is the most receipts one call carries: the server's default
// batch limit.
const settleChunk = 1000

// receiptsHelp is the part of the help that ack, nack and extend share.
const receiptsHelp = `Receipts come from the arguments or, when there are none and stdin is not
a terminal, from stdin, one per line; a line may also be a JSON object as
chute sub --no-ack --json prints it (its "receipt" is used). A receipt
whose lease is over (settled, expired, redelivered) fails as stale: the
others are still settled, the failures are listed, and the exit status is
5. With --json it prints one object: {"queue","op","ok","failed":[...]}.`

// settleOp is what differs between ack, nack and extend.
type settleOp struct {
	name, done, noun string // "ack", "acked", "message(s)"
	call             func(ctx context.Context, api chute.API, queue string, receipts []string) error
}

func newAckCmd(f *clientFlags) *cobra.Command {
	op := settleOp{name: "ack", done: "acked", noun: "message(s)",
		call: func(ctx context.Context, api chute.API, queue string, rs []string) error {
			return api.Ack(ctx, queue, rs...)
		}}
	return &cobra.Command{
		Use:   "ack QUEUE [RECEIPT...]",
		Short: "Ack deliveries by receipt: their messages are done",
		Long:  "ack settles deliveries of QUEUE: their messages leave the queue.\n\n" + receiptsHelp,
		Example: `  chute ack orders 1.6.1 1.7.1
  chute sub orders --no-ack --count 10 --json | jq -r .receipt | chute ack orders`,
		Args:              minArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return runSettle(cmd, args, api, f.json, op)
		}),
	}
}

func newNackCmd(f *clientFlags) *cobra.Command {
	var (
		delay time.Duration
		now   bool
		text  string
	)
	cmd := &cobra.Command{
		Use:   "nack QUEUE [RECEIPT...]",
		Short: "Nack deliveries by receipt: their messages are delivered again",
		Long: `nack returns deliveries of QUEUE: their messages are delivered again after
--delay, or at once with --now, or by default after the queue's back-off;
a message that used its --max-deliveries goes to the dead-letter queue
instead. --error is kept as the message's last error (and shown on its
dead letter).

` + receiptsHelp,
		Example: `  chute nack orders 1.6.1 --error "payment service down"
  chute nack orders 1.6.1 --delay 5m
  chute nack orders 1.6.1 --now`,
		Args:              minArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			switch {
			case now && cmd.Flags().Changed("delay"):
				return usageError{errors.New("--delay and --now exclude each other")}
			case delay < 0:
				return usageError{fmt.Errorf("--delay %v: must not be negative (for no delay use --now)", delay)}
			}
			d := delay // 0: the queue's back-off
			if now {
				d = -1
			}
			op := settleOp{name: "nack", done: "nacked", noun: "message(s)",
				call: func(ctx context.Context, api chute.API, queue string, rs []string) error {
					nacks := make([]chute.Nack, len(rs))
					for i, r := range rs {
						nacks[i] = chute.Nack{Receipt: r, Delay: d, Error: text}
					}
					return api.Nack(ctx, queue, nacks...)
				}}
			return runSettle(cmd, args, api, f.json, op)
		}),
	}
	fl := cmd.Flags()
	flagVar(fl, newDurationValue(&delay, 0, false), "delay", "DURATION", "deliver again after this long (0: after the queue's back-off)")
	fl.BoolVar(&now, "now", false, "deliver again at once")
	fl.StringVar(&text, "error", "", "why: kept as the message's last error")
	return cmd
}

func newExtendCmd(f *clientFlags) *cobra.Command {
	var lease time.Duration
	cmd := &cobra.Command{
		Use:   "extend QUEUE [RECEIPT...]",
		Short: "Extend the leases of deliveries by receipt",
		Long: `extend moves the end of the leases of deliveries of QUEUE to --lease from
now (by default the queue's visibility timeout), so that their messages
are not delivered again while you work on them.

` + receiptsHelp,
		Example:           `  chute extend orders 1.6.1 --lease 10m`,
		Args:              minArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			if lease < 0 {
				return usageError{fmt.Errorf("--lease %v: must not be negative (0: the queue's visibility timeout)", lease)}
			}
			op := settleOp{name: "extend", done: "extended", noun: "lease(s)",
				call: func(ctx context.Context, api chute.API, queue string, rs []string) error {
					return api.Extend(ctx, queue, lease, rs...)
				}}
			return runSettle(cmd, args, api, f.json, op)
		}),
	}
	flagVar(cmd.Flags(), newDurationValue(&lease, 0, false), "lease", "DURATION", "new lease, from now (0: the queue's visibility timeout)")
	return cmd
}

// settleJSON is the result of ack, nack or extend as --json prints it
// (docs/cli.md, "settle result").
type settleJSON struct {
	Queue  string              `json:"queue"`
	Op     string              `json:"op"`
	OK     int                 `json:"ok"`
	Failed []receiptFailedJSON `json:"failed"`
}

type receiptFailedJSON struct {
	Receipt string `json:"receipt"`
	Error   string `json:"error"`
}

// runSettle settles the receipts of args (or stdin) in chunks, prints how
// many succeeded, and returns the failed ones as a *chute.ReceiptErrors
// indexed in the whole list.
func runSettle(cmd *cobra.Command, args []string, api chute.API, asJSON bool, op settleOp) error {
	queue := args[0]
	receipts, err := readReceipts(cmd, queue, args[1:])
	if err != nil {
		return err
	}
	var failed []chute.ReceiptError
	for off := 0; off < len(receipts); off += settleChunk {
		chunk := receipts[off:min(off+settleChunk, len(receipts))]
		err := op.call(cmd.Context(), api, queue, chunk)
		var re *chute.ReceiptErrors
		switch {
		case err == nil:
		case errors.As(err, &re):
			for _, f := range re.Failed {
				f.Index += off
				failed = append(failed, f)
			}
		case off == 0:
			return err
		default:
			return fmt.Errorf("%s receipts %d-%d (the %d before them were sent): %w", op.name, off+1, off+len(chunk), off, err)
		}
	}
	if err := printSettled(cmd.OutOrStdout(), queue, op, len(receipts), failed, asJSON); err != nil {
		return err
	}
	if len(failed) > 0 {
		return &chute.ReceiptErrors{Failed: failed}
	}
	return nil
}

func printSettled(w io.Writer, queue string, op settleOp, n int, failed []chute.ReceiptError, asJSON bool) error {
	ok := n - len(failed)
	if asJSON {
		j := settleJSON{Queue: queue, Op: op.name, OK: ok, Failed: []receiptFailedJSON{}}
		for _, f := range failed {
			j.Failed = append(j.Failed, receiptFailedJSON{Receipt: f.Receipt, Error: f.Err.Error()})
		}
		return printJSON(w, j)
	}
	var err error
	if len(failed) == 0 {
		_, err = fmt.Fprintf(w, "%s %d %s on %s\n", op.done, ok, op.noun, queue)
	} else {
		_, err = fmt.Fprintf(w, "%s %d of %d %s on %s\n", op.done, ok, n, op.noun, queue)
	}
	return err
}

// readReceipts returns the receipts given as arguments or, when there are
// none, those on stdin (unless it is a terminal).
func readReceipts(cmd *cobra.Command, queue string, args []string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	in := cmd.InOrStdin()
	if isTerminal(in) {
		return nil, usageError{errors.New("no receipts: give them as arguments, or pipe them on stdin one per line")}
	}
	var receipts []string
	sc := bufio.NewScanner(in)
	for line := 1; sc.Scan(); line++ {
		r := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(r, "{") {
			var d struct {
				Queue   string `json:"queue"`
				Receipt string `json:"receipt"`
			}
			switch err := json.Unmarshal([]byte(r), &d); {
			case err != nil || d.Receipt == "":
				return nil, usageError{fmt.Errorf("stdin line %d: a JSON object without a \"receipt\" (sub prints receipts with --no-ack)", line)}
			case d.Queue != "" && d.Queue != queue:
				return nil, usageError{fmt.Errorf("stdin line %d: a delivery of queue %s, not %s", line, d.Queue, queue)}
			}
			r = d.Receipt
		}
		if r != "" {
			receipts = append(receipts, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read receipts from stdin: %w", err)
	}
	return receipts, nil
}
