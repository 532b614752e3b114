package main

import (
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
	cmd := &cobra.Command{
		Use:   "redrive DLQ",
		Short: "Move dead letters back to the queues they died in",
		Long: `redrive moves up to --max dead letters of DLQ (all by default) back to the
queues they died in, as new messages there, and reports how many moved. A
dead letter whose source queue is gone or full stays. A queue that is not
a dead-letter queue (none dead-letters into it and it holds no dead
letters) is refused (exit status 5). A progress bar shows on stderr when
it is a terminal.`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argDLQ),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			if n < 0 {
				return usageError{fmt.Errorf("--max %d: must not be negative (0 = all)", n)}
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
	return cmd
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
