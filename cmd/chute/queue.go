package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

func newQueueCmd(f *clientFlags) *cobra.Command {
	cmd := groupCmd("queue", "Create, list, inspect, peek into, change, purge and delete queues",
		newQueueCreateCmd(f), newQueueLsCmd(f), newQueueStatCmd(f), newQueuePeekCmd(f), newQueueUpdateCmd(f),
		newQueueRmCmd(f), newQueuePurgeCmd(f), newQueueConsumersCmd(f),
		newQueuePauseCmd(f), newQueueResumeCmd(f)) // pause.go
	cmd.Aliases = []string{"queues"}
	return cmd
}

func newQueueCreateCmd(f *clientFlags) *cobra.Command {
	var qf queueFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a queue (and, when needed, its dead-letter queue)",
		Long: `create makes queue NAME, and its dead-letter queue (NAME.dlq, or --dlq)
when that does not exist yet, so that a consumer of dead letters can start
first. Every setting has a default: 0 asks for it, and "none" turns the
setting off (--max-deliveries none, --ttl none, --dedup-window none, ...).
Durations take days and weeks (7d, 2w), sizes take units (64MiB, 1.5GB).`,
		Example: `  chute queue create orders --max-deliveries 5 --backoff fixed --backoff-delay 10s
  chute queue create events --max-messages 100000 --overflow drop-oldest --ttl 7d
  chute queue create audit --max-deliveries none --max-bytes 1GiB --dedup-window none`,
		Args:              exactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			var cfg chute.QueueConfig
			if err := qf.apply(&cfg); err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			if err := api.CreateQueue(ctx, name, cfg); err != nil {
				return err
			}
			if !f.json {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "created queue %s\n", name)
				return err
			}
			st, err := api.QueueStats(ctx, name)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), newQueueJSON(st))
		}),
	}
	qf.register(cmd)
	return cmd
}

func newQueueUpdateCmd(f *clientFlags) *cobra.Command {
	var qf queueFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change the settings given as flags; the others stay as they are",
		Long: `update changes the settings given as flags and keeps the others. As with
create, 0 gives a setting its default back and "none" turns it off; the
defaults the help shows are those of a new queue.`,
		Example: `  chute queue update orders --visibility 2m
  chute queue update orders --dlq orders-failed --max-deliveries none
  chute queue update orders --ttl 0      # back to the default: no TTL`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			if !qf.changed() {
				return usageError{errors.New("nothing to change: give the settings as flags (see --help)")}
			}
			ctx, name := cmd.Context(), args[0]
			st, err := api.QueueStats(ctx, name)
			if err != nil {
				return err
			}
			cfg := st.Config
			if err := qf.apply(&cfg); err != nil {
				return err
			}
			if err := api.UpdateQueue(ctx, name, cfg); err != nil {
				return err
			}
			if st, err = api.QueueStats(ctx, name); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), newQueueJSON(st))
			}
			return printUpdated(cmd.OutOrStdout(), &qf, name, st.Config)
		}),
	}
	qf.register(cmd)
	return cmd
}

// printUpdated prints the settings the command line changed, as they are
// now.
func printUpdated(out io.Writer, qf *queueFlags, name string, cfg chute.QueueConfig) error {
	fmt.Fprintf(out, "updated queue %s\n", name)
	tw := newTable(out)
	for _, row := range queueConfigRows(cfg) {
		if qf.fs.Changed(row[0]) || row[0] == "dlq" && qf.fs.Changed("no-dlq") {
			fmt.Fprintf(tw, "  %s\t%s\n", row[0], row[1])
		}
	}
	return tw.Flush()
}

func newQueueLsCmd(f *clientFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List queues with their depth",
		Long: `ls lists queues with their depth, sorted by name. A queue's dead-letter
queue is created with it; while nothing has ever been in such a queue it
is left out of the list (--all shows it, and chute dlq ls --all lists the
dead-letter queues alone).`,
		Args: noArgs,
		RunE: withAPI(f, func(cmd *cobra.Command, _ []string, api chute.API) error {
			qs, err := api.Queues(cmd.Context())
			if err != nil {
				return err
			}
			if !all {
				qs = withoutUnusedDLQs(qs)
			}
			slices.SortFunc(qs, func(a, b chute.QueueStats) int { return strings.Compare(a.Name, b.Name) })
			if f.json {
				return printJSON(cmd.OutOrStdout(), queuesJSON(qs))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tREADY\tDELAYED\tIN FLIGHT\tDEAD LETTERS\tOLDEST\tTOPIC")
			for _, q := range qs {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\n", q.Name, q.Ready, q.Delayed, q.InFlight,
					q.DeadLetters, fmtAge(q.OldestAge), orDash(q.Topic))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list dead-letter queues that nothing has been in yet")
	return cmd
}

// withoutUnusedDLQs leaves out the dead-letter queues that the broker
// created with their queues and that nothing has been in yet: named by a
// queue's config, empty, and every total 0.
func withoutUnusedDLQs(qs []chute.QueueStats) []chute.QueueStats {
	dlqs := make(map[string]bool)
	for _, q := range qs {
		if !q.Config.NoDeadLetter && q.Config.DeadLetterQueue != "" {
			dlqs[q.Config.DeadLetterQueue] = true
		}
	}
	return slices.DeleteFunc(qs, func(q chute.QueueStats) bool { return dlqs[q.Name] && neverUsed(q) })
}

// neverUsed reports whether nothing has ever been in a queue.
func neverUsed(q chute.QueueStats) bool {
	return q.Depth() == 0 && q.DeadLetters == 0 && q.Totals == chute.QueueTotals{}
}

func newQueueStatCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "stat NAME",
		Short:             "Show every statistic and the configuration of a queue",
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			st, err := api.QueueStats(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), newQueueJSON(st))
			}
			return printQueueStats(cmd.OutOrStdout(), st)
		}),
	}
}

func printQueueStats(w io.Writer, st chute.QueueStats) error {
	tw := newTable(w)
	t := st.Totals
	rows := [][2]string{
		{"name", st.Name},
		{"topic", orDash(st.Topic)},
		{"filter", orDash(fmtKV(st.Filter))},
		{"paused", yesNo(st.Paused)}, // pause.go
		{"breaker", breakerRow(st)},  // pause.go
		{"ready", fmt.Sprintf("%d (%d bytes)", st.Ready, st.ReadyBytes)},
		{"delayed", fmt.Sprintf("%d (%d bytes)", st.Delayed, st.DelayedBytes)},
		{"in flight", fmt.Sprintf("%d (%d bytes)", st.InFlight, st.InFlightBytes)},
		{"dead letters", fmt.Sprint(st.DeadLetters)},
		{"ordering keys", fmt.Sprint(st.OrderingKeys)},
		{"de-dup IDs", fmt.Sprint(st.DedupIDs)},
		{"sessions", fmt.Sprint(st.Sessions)},
		{"de-dup memory", fmtSize(st.DedupBytes)},
		{"oldest age", fmtAge(st.OldestAge)},
		{"enqueued", fmt.Sprint(t.Enqueued)},
		{"delivered", fmt.Sprint(t.Delivered)},
		{"acked", fmt.Sprint(t.Acked)},
		{"nacked", fmt.Sprint(t.Nacked)},
		{"lease expired", fmt.Sprint(t.LeaseExpired)},
		{"expired", fmt.Sprint(t.Expired)},
		{"dead-lettered", fmt.Sprintf("%d (%d bytes)", t.DeadLettered, t.DeadLetteredBytes)},
		{"discarded", fmt.Sprint(t.Discarded)},
		{"dropped", fmt.Sprint(t.Dropped)},
		{"redriven", fmt.Sprint(t.Redriven)},
		{"returned", fmt.Sprint(t.Returned)},
		{"de-dup forgotten", fmt.Sprint(t.DedupForgotten)},
		{"consumers", fmt.Sprint(st.Consumers)},
		{"producers", fmt.Sprint(st.Producers)},
		{"wait latency", fmtLatency(st.Latency.Wait)},
		{"processing latency", fmtLatency(st.Latency.Processing)},
		{"completion latency", fmtLatency(st.Latency.Completion)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	fmt.Fprintln(tw, "config:")
	for _, r := range queueConfigRows(st.Config) {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// fmtLatency prints a latency summary on one line; "-" when nothing was
// observed.
func fmtLatency(l chute.LatencySummary) string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("avg %s, p50 %s, p99 %s (%d)", fmtDuration(l.Avg), fmtDuration(l.P50), fmtDuration(l.P99), l.Count)
}

func newQueueRmCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"delete"},
		Short:   "Delete a queue and its messages (its dead-letter queue stays)",
		Long: `rm deletes a queue and every message in it; its dead-letter queue stays.
A dead-letter queue that queues still use is not deleted (exit status 5):
give those queues another one (queue update Q --dlq NAME or --no-dlq) or
delete them first.`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			ctx, name := cmd.Context(), args[0]
			if err := api.DeleteQueue(ctx, name); err != nil {
				return explainDeleteDLQ(ctx, api, name, err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"queue": name, "deleted": true})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted queue %s\n", name)
			return err
		}),
	}
}

// explainDeleteDLQ turns the broker's refusal to delete a dead-letter queue
// in use into what to do about it; other errors pass unchanged.
func explainDeleteDLQ(ctx context.Context, api chute.API, name string, err error) error {
	if !errors.Is(err, chute.ErrInvalidConfig) {
		return err
	}
	qs, lerr := api.Queues(ctx)
	if lerr != nil {
		return err
	}
	var users []string
	for _, q := range qs {
		if q.Config.DeadLetterQueue == name && !q.Config.NoDeadLetter {
			users = append(users, q.Name)
		}
	}
	if len(users) == 0 {
		return err
	}
	slices.Sort(users)
	list := strings.Join(users, ", ")
	return withHint(err, fmt.Sprintf("queue %s is the dead-letter queue of %s: give %s another one first (chute queue update %s --dlq NAME, or --no-dlq), or delete %s",
		name, list, pronoun(len(users)), users[0], pronoun(len(users))))
}

// pronoun is "it" or "them".
func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func newQueuePeekCmd(f *clientFlags) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "peek QUEUE",
		Short: "Show the next ready messages without taking them",
		Long: `peek shows up to --count ready messages of QUEUE in delivery order, printed
as chute sub prints them (with --json one object per line, without a
receipt). It leases nothing: the messages stay ready and use none of their
deliveries. Delayed and in-flight messages are not shown. When nothing is
ready it says so on stderr and succeeds (exit status 0).`,
		Example: `  chute queue peek orders
  chute queue peek orders --count 100 --json | jq -r .body`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return peek(cmd, api, args[0], n, f.json, printDelivery, "no ready messages in %s\n")
		}),
	}
	cmd.Flags().IntVar(&n, "count", 10, "most messages to show (the server caps it at its batch limit)")
	return cmd
}

// peek prints up to n ready messages of queue with print, or, when there
// are none, the note empty (a format taking the queue) on stderr.
func peek(cmd *cobra.Command, api chute.API, queue string, n int, asJSON bool,
	print func(io.Writer, *chute.Delivery, bool) error, empty string) error {
	if n < 1 {
		return usageError{fmt.Errorf("--count %d: must be at least 1", n)}
	}
	ds, err := api.Peek(cmd.Context(), queue, n)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		_, err := fmt.Fprintf(cmd.ErrOrStderr(), empty, queue)
		return err
	}
	for i := range ds {
		if err := print(cmd.OutOrStdout(), &ds[i], asJSON); err != nil {
			return err
		}
	}
	return nil
}

func newQueuePurgeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "purge NAME",
		Short:             "Remove every message of a queue, in flight ones included",
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			name := args[0]
			n, err := api.PurgeQueue(cmd.Context(), name)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"queue": name, "purged": n})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "purged %d message(s) from queue %s\n", n, name)
			return err
		}),
	}
}

// queueJSON is a queue's stats as --json prints them (queue and
// subscription commands; docs/cli.md, "queue").
type queueJSON struct {
	Name          string            `json:"name"`
	Topic         string            `json:"topic,omitempty"`
	Filter        map[string]string `json:"filter,omitempty"`
	Ready         int64             `json:"ready"`
	ReadyBytes    int64             `json:"ready_bytes"`
	Delayed       int64             `json:"delayed"`
	DelayedBytes  int64             `json:"delayed_bytes"`
	InFlight      int64             `json:"in_flight"`
	InFlightBytes int64             `json:"in_flight_bytes"`
	DeadLetters   int64             `json:"dead_letters"`
	OrderingKeys  int64             `json:"ordering_keys"`
	DedupIDs      int64             `json:"dedup_ids"`
	Sessions      int64             `json:"sessions"`
	DedupBytes    int64             `json:"dedup_bytes"`
	OldestAge     *string           `json:"oldest_age"` // null: nothing ready
	Totals        queueTotalsJSON   `json:"totals"`
	Latency       queueLatencyJSON  `json:"latency"`
	Consumers     int64             `json:"consumers"`
	Producers     int64             `json:"producers"`
	Paused        bool              `json:"paused"`
	Breaker       string            `json:"breaker"` // closed, open, half-open
	Config        queueConfigJSON   `json:"config"`
}

type queueLatencyJSON struct {
	Wait       latencyJSON `json:"wait"`
	Processing latencyJSON `json:"processing"`
	Completion latencyJSON `json:"completion"`
}

// latencyJSON is a latency summary; durations as fmtDuration strings.
type latencyJSON struct {
	Count uint64 `json:"count"`
	Avg   string `json:"avg"`
	P50   string `json:"p50"`
	P99   string `json:"p99"`
}

func newLatencyJSON(l chute.LatencySummary) latencyJSON {
	return latencyJSON{Count: l.Count, Avg: fmtDuration(l.Avg), P50: fmtDuration(l.P50), P99: fmtDuration(l.P99)}
}

type queueTotalsJSON struct {
	Enqueued          int64 `json:"enqueued"`
	Delivered         int64 `json:"delivered"`
	Acked             int64 `json:"acked"`
	Nacked            int64 `json:"nacked"`
	LeaseExpired      int64 `json:"lease_expired"`
	Expired           int64 `json:"expired"`
	DeadLettered      int64 `json:"dead_lettered"`
	DeadLetteredBytes int64 `json:"dead_lettered_bytes"`
	Discarded         int64 `json:"discarded"`
	Dropped           int64 `json:"dropped"`
	Redriven          int64 `json:"redriven"`
	Returned          int64 `json:"returned"`
	DedupForgotten    int64 `json:"dedup_forgotten"`
}

func newQueueJSON(s chute.QueueStats) queueJSON {
	t := s.Totals
	return queueJSON{
		Name: s.Name, Topic: s.Topic, Filter: s.Filter,
		Ready: s.Ready, ReadyBytes: s.ReadyBytes, Delayed: s.Delayed, DelayedBytes: s.DelayedBytes,
		InFlight: s.InFlight, InFlightBytes: s.InFlightBytes, DeadLetters: s.DeadLetters,
		OrderingKeys: s.OrderingKeys, DedupIDs: s.DedupIDs, Sessions: s.Sessions, DedupBytes: s.DedupBytes, OldestAge: ageJSON(s.OldestAge),
		Totals: queueTotalsJSON{Enqueued: t.Enqueued, Delivered: t.Delivered, Acked: t.Acked, Nacked: t.Nacked,
			LeaseExpired: t.LeaseExpired, Expired: t.Expired, DeadLettered: t.DeadLettered,
			DeadLetteredBytes: t.DeadLetteredBytes, Discarded: t.Discarded, Dropped: t.Dropped, Redriven: t.Redriven,
			Returned: t.Returned, DedupForgotten: t.DedupForgotten},
		Latency: queueLatencyJSON{Wait: newLatencyJSON(s.Latency.Wait), Processing: newLatencyJSON(s.Latency.Processing),
			Completion: newLatencyJSON(s.Latency.Completion)},
		Consumers: s.Consumers, Producers: s.Producers,
		Paused: s.Paused, Breaker: s.Breaker.String(),
		Config: newQueueConfigJSON(s.Config),
	}
}

// queuesJSON converts a list; never null, so scripts can always iterate.
func queuesJSON(qs []chute.QueueStats) []queueJSON {
	out := make([]queueJSON, len(qs))
	for i, q := range qs {
		out[i] = newQueueJSON(q)
	}
	return out
}
