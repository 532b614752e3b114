package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// redriveChunk is how many dead letters one Redrive call moves, so that a
// large redrive shows progress and holds the broker's lock in short turns.
const redriveChunk = 1000

func newDLQCmd(f *clientFlags) *cobra.Command {
	return groupCmd("dlq", "List, inspect and redrive dead-letter queues",
		newDLQLsCmd(f), newDLQPeekCmd(f), newDLQRedriveCmd(f))
}

func newDLQLsCmd(f *clientFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List dead-letter queues: those holding dead letters, named *.dlq, or named by a queue's --dlq",
		Long: `ls lists the dead-letter queues: queues that hold dead letters, are named
*.dlq, or are named by a queue's --dlq. A queue's dead-letter queue is
created with the queue, so that a consumer of dead letters can start
first; until something has died into it, it is left out (--all shows it).`,
		Args: noArgs,
		RunE: withAPI(f, func(cmd *cobra.Command, _ []string, api chute.API) error {
			qs, err := api.Queues(cmd.Context())
			if err != nil {
				return err
			}
			dlqs := deadLetterQueues(qs, all)
			if f.json {
				return printJSON(cmd.OutOrStdout(), dlqs)
			}
			if hidden := len(deadLetterQueues(qs, true)) - len(dlqs); len(dlqs) == 0 && hidden > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "nothing has died yet (%d empty dead-letter queue(s) not shown: --all shows them)\n", hidden)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tDEAD LETTERS\tREADY\tOLDEST\tSOURCES")
			for _, d := range dlqs {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", d.Name, d.DeadLetters, d.Ready, d.oldest,
					orDash(strings.Join(d.Sources, ",")))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list dead-letter queues that nothing has died into yet")
	return cmd
}

// dlqJSON is a dead-letter queue as dlq ls --json prints it (docs/cli.md,
// "dead-letter queue").
type dlqJSON struct {
	Name        string   `json:"name"`
	DeadLetters int64    `json:"dead_letters"`
	Ready       int64    `json:"ready"`
	OldestAge   *string  `json:"oldest_age"` // null: nothing ready
	Sources     []string `json:"sources"`    // queues whose dead letters go here
	oldest      string   // OldestAge for the table
}

// deadLetterQueues picks the dead-letter queues out of every queue; all
// keeps those that nothing has ever been in.
func deadLetterQueues(qs []chute.QueueStats, all bool) []dlqJSON {
	sources := make(map[string][]string)
	for _, q := range qs {
		if dlq := q.Config.DeadLetterQueue; dlq != "" && !q.Config.NoDeadLetter {
			sources[dlq] = append(sources[dlq], q.Name)
		}
	}
	out := []dlqJSON{}
	for _, q := range qs {
		srcs, named := sources[q.Name]
		isDLQ := q.DeadLetters > 0 || strings.HasSuffix(q.Name, chute.DeadLetterSuffix) || named
		if !isDLQ || !all && neverUsed(q) {
			continue
		}
		if srcs == nil {
			srcs = []string{}
		}
		slices.Sort(srcs)
		out = append(out, dlqJSON{Name: q.Name, DeadLetters: q.DeadLetters, Ready: q.Ready,
			OldestAge: ageJSON(q.OldestAge), Sources: srcs, oldest: fmtAge(q.OldestAge)})
	}
	slices.SortFunc(out, func(a, b dlqJSON) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func newDLQPeekCmd(f *clientFlags) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "peek DLQ",
		Short: "Show dead letters (where and why they died) without taking them",
		Long: `peek shows up to --count dead letters of DLQ in delivery order, with their
source queue, the reason they died (max-deliveries, expired, overflow), their
deliveries and last error. It leases nothing. With --json: one JSON object
per line, as chute sub --json prints, with a dead_letter object. When DLQ
holds none it says so on stderr and succeeds (exit status 0).`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argDLQ),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return peek(cmd, api, args[0], n, f.json, printDeadLetter, "no dead letters in %s\n")
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&n, "count", 10, "most dead letters to show (the server caps it at its batch limit)")
	fl.IntVar(&n, "max", 10, "most dead letters to show")
	fl.MarkDeprecated("max", "use --count")
	return cmd
}

// printDeadLetter prints one dead letter on a line, as JSON (as
// printDelivery does) or
// seq=7 source=orders reason=max-deliveries deliveries=3 died=... error="..." body="..."
func printDeadLetter(w io.Writer, d *chute.Delivery, asJSON bool) error {
	if asJSON {
		return printDelivery(w, d, true)
	}
	dl := d.DeadLetter
	if dl == nil { // published to the dead-letter queue directly
		dl = &chute.DeadLetterInfo{}
	}
	died := "-"
	if !dl.Died.IsZero() {
		died = dl.Died.UTC().Format(time.RFC3339)
	}
	_, err := fmt.Fprintf(w, "seq=%d source=%s reason=%s deliveries=%d died=%s error=%q body=%q\n",
		d.Seq, orDash(dl.Source), orDash(dl.Reason), dl.Deliveries, died, dl.LastError, d.Body)
	return err
}

func newDLQRedriveCmd(f *clientFlags) *cobra.Command {
	var n int64
	var byID bool
	cmd := &cobra.Command{
		Use:   "redrive DLQ [SEQ|ID...]",
		Short: "Move dead letters back to the queues they died in",
		Long: `redrive moves up to --max dead letters of DLQ (all by default) back to the
queues they died in, as new messages there, and reports how many moved. A
dead letter whose source queue is gone or full stays. A queue that is not
a dead-letter queue (none dead-letters into it and it holds no dead
letters) is refused (exit status 5). A progress bar shows on stderr when
it is a terminal.

With SEQ|ID arguments (sequences in DLQ, or message IDs as for msg get;
--id for an ID that is a number) it moves just those dead letters, in the
order given, in one journal write, and prints a line for each saying what
happened. Only ready and delayed dead letters move: an in-flight one, or
one whose source queue is full, is refused (exit status 5); one already
settled, unknown, not a dead letter, or whose source queue is gone is not
found (exit status 4). The first failure decides the exit status.`,
		Args:              minArgs(1),
		ValidArgsFunction: completeArgs(f, argDLQ),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			if n < 0 {
				return usageError{fmt.Errorf("--max %d: must not be negative (0 = all)", n)}
			}
			if len(args) > 1 {
				if n != 0 {
					return usageError{errors.New("--max limits a redrive of everything: not with SEQ|ID")}
				}
				return redriveChosen(cmd, api, args[0], args[1:], byID, f.json)
			}
			ctx, dlq := cmd.Context(), args[0]
			st, err := api.QueueStats(ctx, dlq)
			if err != nil {
				return err
			}
			total := st.DeadLetters
			if n > 0 {
				total = min(total, n)
			}
			bar := newProgress(cmd.ErrOrStderr(), !f.json && total > 0, total, "redriving", "msgs", false)
			moved, err := redrive(cmd, api, dlq, n, bar)
			bar.done()
			if err != nil {
				return err
			}
			if st, err = api.QueueStats(ctx, dlq); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"dlq": dlq, "redriven": moved, "remaining": st.DeadLetters})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "redrove %d dead letter(s) from %s; %d remain\n", moved, dlq, st.DeadLetters)
			return err
		}),
	}
	cmd.Flags().Int64Var(&n, "max", 0, "most dead letters to move (0: all)")
	cmd.Flags().BoolVar(&byID, "id", false, "every SEQ|ID is a message ID even if it is a number")
	return cmd
}

// redriveChosen redrives the dead letters args name (RedriveMessages) and
// prints a line, or a JSON array element, for each.
func redriveChosen(cmd *cobra.Command, api chute.API, dlq string, args []string, byID, asJSON bool) error {
	refs, err := messageRefs(args, byID)
	if err != nil {
		return err
	}
	rs, err := api.RedriveMessages(cmd.Context(), dlq, refs...)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		out := make([]redriveJSON, len(rs))
		for i, r := range rs {
			out[i] = redriveJSONOf(r)
		}
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else {
		for _, r := range rs {
			printRedriveResult(w, r)
		}
	}
	return notDone(rs, func(r chute.RedriveResult) (bool, error) { return r.Moved, r.Err }, "dead letter(s) not redriven")
}

func printRedriveResult(w io.Writer, r chute.RedriveResult) {
	name := refName(r.Ref, r.Seq)
	switch {
	case r.Moved:
		fmt.Fprintf(w, "redriven %s to %s (seq %d)\n", name, r.Queue, r.NewSeq)
	case r.State == chute.MessageInFlight:
		fmt.Fprintf(w, "not redriven %s: in flight (only ready and delayed dead letters can be redriven)\n", name)
	case errors.Is(r.Err, chute.ErrQueueNotFound):
		fmt.Fprintf(w, "not redriven %s: its source queue %s is gone\n", name, r.Queue)
	case errors.Is(r.Err, chute.ErrQueueFull):
		fmt.Fprintf(w, "not redriven %s: its source queue %s is full\n", name, r.Queue)
	case r.State == chute.MessageReady || r.State == chute.MessageDelayed:
		fmt.Fprintf(w, "not redriven %s: not a dead letter\n", name)
	case r.State == chute.MessageUnknown:
		fmt.Fprintf(w, "not redriven %s: not found\n", name)
	default:
		fmt.Fprintf(w, "not redriven %s: already %s\n", name, r.State)
	}
}

// redriveJSON is one result of dlq redrive DLQ SEQ|ID... --json.
type redriveJSON struct {
	Seq      uint64 `json:"seq"`
	ID       string `json:"id,omitempty"`
	Redriven bool   `json:"redriven"`
	Queue    string `json:"queue,omitempty"`   // the source queue
	NewSeq   uint64 `json:"new_seq,omitempty"` // redriven: its sequence in queue
	State    string `json:"state,omitempty"`   // not redriven: the dead letter's state
	Error    string `json:"error,omitempty"`
}

func redriveJSONOf(r chute.RedriveResult) redriveJSON {
	j := redriveJSON{Seq: r.Seq, ID: r.Ref.ID, Redriven: r.Moved, Queue: r.Queue, NewSeq: r.NewSeq}
	if !r.Moved {
		j.State = r.State.String()
		if r.Err != nil {
			j.Error = r.Err.Error()
		}
	}
	return j
}

// redrive moves up to limit (0: all) dead letters in chunks, until done or
// a chunk moves less than it asked for (the rest cannot move now).
func redrive(cmd *cobra.Command, api chute.API, dlq string, limit int64, bar *progress) (int64, error) {
	var moved int64
	for limit == 0 || moved < limit {
		chunk := int64(redriveChunk)
		if limit > 0 {
			chunk = min(chunk, limit-moved)
		}
		got, err := api.Redrive(cmd.Context(), dlq, chunk)
		switch {
		case err != nil && moved == 0:
			return 0, err
		case err != nil:
			return moved, fmt.Errorf("redrive %s (%d moved before this): %w", dlq, moved, err)
		}
		moved += got
		bar.add(got)
		if got < chunk {
			break
		}
	}
	return moved, nil
}
