package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// maxLine bounds one line read from stdin: the largest message a server
// can be configured to take.
const maxLine = 64 << 20

// pubFlags are the flags of chute pub.
type pubFlags struct {
	file     string
	batch    int
	priority int
	delay    time.Duration
	ttl      time.Duration
	headers  map[string]string
	id       string
	key      string
}

func newPubCmd(f *clientFlags) *cobra.Command {
	var p pubFlags
	cmd := &cobra.Command{
		Use:   "pub QUEUE|TOPIC [BODY]",
		Short: "Publish messages to a queue or a topic",
		Long: `pub publishes one message whose body is BODY, or the whole of --file F,
or one message per line of stdin (BODY "-", or no BODY with stdin not a
terminal). Lines are published in batches of --batch, each batch stored
atomically; a progress bar shows on stderr when it is a terminal.

It prints one line per message: its sequence number, and "duplicate" when
its --id was seen within the de-dup window (nothing was stored). With
--json it prints one JSON object per line: {"seq":N,"duplicate":false}.`,
		Example: `  chute pub orders 'order 1' --priority 5 --header kind=new
  chute pub orders --file order.json --id order-1
  seq 1000 | chute pub orders --batch 500`,
		Args:              rangeArgs(1, 2),
		ValidArgsFunction: completeArgs(f, argTarget, argNone),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return p.run(cmd, args, api, f.json)
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&p.file, "file", "", "publish the whole file as one message")
	fl.IntVar(&p.batch, "batch", 100, "messages per publish when reading lines from stdin")
	fl.IntVar(&p.priority, "priority", 0, "priority 0 (lowest) to 9 (highest)")
	flagVar(fl, newDurationValue(&p.delay, 0, false), "delay", "DURATION", "hold the message back for this long (such as 90s or 1d)")
	flagVar(fl, newDurationValue(&p.ttl, 0, false), "ttl", "DURATION",
		"time to live from the publish, instead of the queue's --ttl (0: the queue's); past it a waiting message is discarded or dead-lettered, and a leased one expires if its lease ends without an ack")
	fl.Var(kvValue{&p.headers}, "header", "header key=value (repeatable)")
	fl.StringVar(&p.id, "id", "", "producer ID for de-duplication (for stdin lines: ID-<line number>)")
	fl.StringVar(&p.key, "key", "", "ordering key: messages with the same key are delivered one at a time, in order")
	return cmd
}

// template checks the flags and returns the message every body is put in.
func (p *pubFlags) template() (chute.Message, error) {
	switch {
	case p.priority < 0 || p.priority > 9:
		return chute.Message{}, usageError{fmt.Errorf("--priority %d: want 0 to 9", p.priority)}
	case p.delay < 0:
		return chute.Message{}, usageError{fmt.Errorf("--delay %v: must not be negative", p.delay)}
	case p.ttl < 0:
		return chute.Message{}, usageError{fmt.Errorf("--ttl %v: must not be negative", p.ttl)}
	case p.batch < 1:
		return chute.Message{}, usageError{fmt.Errorf("--batch %d: must be at least 1", p.batch)}
	}
	return chute.Message{Headers: p.headers, Priority: p.priority, Delay: p.delay, TTL: p.ttl, ID: p.id, Key: p.key}, nil
}

func (p *pubFlags) run(cmd *cobra.Command, args []string, api chute.API, asJSON bool) error {
	tmpl, err := p.template()
	if err != nil {
		return err
	}
	ctx, target, out := cmd.Context(), args[0], cmd.OutOrStdout()
	fromArg := len(args) == 2 && args[1] != "-"
	switch {
	case p.file != "" && len(args) == 2:
		return usageError{errors.New("give either BODY or --file, not both")}
	case p.file != "":
		body, err := os.ReadFile(p.file)
		if err != nil {
			return fmt.Errorf("read --file: %w", err)
		}
		tmpl.Body = body
	case fromArg:
		tmpl.Body = []byte(args[1])
	case len(args) == 1 && isTerminal(cmd.InOrStdin()):
		return usageError{errors.New("no message: give BODY, --file F, or pipe lines on stdin (or BODY \"-\" to type them)")}
	default:
		return p.publishLines(ctx, api, target, cmd.InOrStdin(), out, cmd.ErrOrStderr(), asJSON, tmpl)
	}
	res, err := api.Publish(ctx, target, tmpl)
	if err != nil {
		return err
	}
	return printPublished(out, res, asJSON)
}

// publishLines publishes each line of in as a message, --batch at a time.
// A failed batch stops it; the error says which lines failed and how many
// lines before them were published (every earlier one).
func (p *pubFlags) publishLines(ctx context.Context, api chute.API, target string, in io.Reader, out, errw io.Writer, asJSON bool, tmpl chute.Message) error {
	total, inBytes := int64(-1), false
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			total, inBytes = st.Size(), true
		}
	}
	bar := newProgress(errw, !asJSON, total, "publishing", "msgs", inBytes)
	defer bar.done()

	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	batch := make([]chute.Message, 0, p.batch)
	var line, batchBytes int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := api.Publish(ctx, target, batch...)
		if err != nil {
			first := line - int64(len(batch)) + 1
			return fmt.Errorf("publish lines %d-%d (%d line(s) before them published): %w", first, line, first-1, err)
		}
		bar.clear()
		if err := printPublished(out, res, asJSON); err != nil {
			return err
		}
		if inBytes {
			bar.add(batchBytes)
		} else {
			bar.add(int64(len(batch)))
		}
		batch, batchBytes = batch[:0], 0
		return nil
	}
	for sc.Scan() {
		line++
		m := tmpl
		m.Body = bytes.Clone(sc.Bytes())
		if p.id != "" {
			m.ID = fmt.Sprintf("%s-%d", p.id, line)
		}
		batch = append(batch, m)
		batchBytes += int64(len(m.Body)) + 1
		if len(batch) == p.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin line %d: %w", line+1, err)
	}
	return flush()
}

// pubResultJSON is one published message as --json prints it.
type pubResultJSON struct {
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

func printPublished(w io.Writer, res []chute.PublishResult, asJSON bool) error {
	enc := json.NewEncoder(w)
	for _, r := range res {
		var err error
		switch {
		case asJSON:
			err = enc.Encode(pubResultJSON{Seq: r.Seq, Duplicate: r.Duplicate})
		case r.Duplicate:
			_, err = fmt.Fprintf(w, "seq=%d duplicate\n", r.Seq)
		default:
			_, err = fmt.Fprintf(w, "seq=%d\n", r.Seq)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
