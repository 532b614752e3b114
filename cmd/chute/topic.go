package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

func newTopicCmd(f *clientFlags) *cobra.Command {
	cmd := groupCmd("topic", "Create, list and delete topics (see also: subscription)",
		newTopicCreateCmd(f), newTopicLsCmd(f), newTopicRmCmd(f))
	cmd.Aliases = []string{"topics"}
	return cmd
}

func newTopicCreateCmd(f *clientFlags) *cobra.Command {
	var window = chute.TopicConfig{}.WithDefaults().DedupWindow
	cmd := &cobra.Command{
		Use:               "create NAME",
		Short:             "Create a topic; messages published to it go to every matching subscription",
		Args:              exactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			var cfg chute.TopicConfig
			if cmd.Flags().Changed("dedup-window") {
				w, err := noneOrPositive("dedup-window", window)
				if err != nil {
					return err
				}
				cfg.DedupWindow = w
			}
			ctx, name := cmd.Context(), args[0]
			if err := api.CreateTopic(ctx, name, cfg); err != nil {
				return err
			}
			if !f.json {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "created topic %s\n", name)
				return err
			}
			ts, err := api.Topics(ctx)
			if err != nil {
				return err
			}
			for _, t := range ts {
				if t.Name == name {
					return printJSON(cmd.OutOrStdout(), newTopicJSON(t))
				}
			}
			return fmt.Errorf("topic %s: created, but not listed: %w", name, chute.ErrTopicNotFound)
		}),
	}
	flagVar(cmd.Flags(), newDurationValue(&window, window, true), "dedup-window", "DURATION|none",
		"how long a producer ID is remembered (0: the default; none: no de-dup)")
	return cmd
}

func newTopicLsCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List topics with their subscriptions",
		Args:    noArgs,
		RunE: withAPI(f, func(cmd *cobra.Command, _ []string, api chute.API) error {
			ts, err := api.Topics(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				out := make([]topicJSON, len(ts))
				for i, t := range ts {
					out[i] = newTopicJSON(t)
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tPUBLISHED\tUNROUTED\tDEDUP WINDOW\tSUBSCRIPTIONS")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", t.Name, t.Published, t.Unrouted,
					fmtDuration(t.Config.DedupWindow), orDash(strings.Join(t.Subscriptions, ",")))
			}
			return tw.Flush()
		}),
	}
}

func newTopicRmCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "rm NAME",
		Aliases:           []string{"delete"},
		Short:             "Delete a topic (its subscriptions' queues stay, as plain queues)",
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argTopic),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			name := args[0]
			if err := api.DeleteTopic(cmd.Context(), name); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"topic": name, "deleted": true})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", name)
			return err
		}),
	}
}

// topicJSON is a topic as --json prints it (docs/cli.md, "topic").
type topicJSON struct {
	Name          string   `json:"name"`
	DedupWindow   string   `json:"dedup_window"` // fmtDuration; "none": no de-dup
	Subscriptions []string `json:"subscriptions"`
	DedupIDs      int64    `json:"dedup_ids"`
	Published     int64    `json:"published"`
	Unrouted      int64    `json:"unrouted"`
}

func newTopicJSON(t chute.TopicStats) topicJSON {
	subs := t.Subscriptions
	if subs == nil {
		subs = []string{}
	}
	return topicJSON{Name: t.Name, DedupWindow: fmtDuration(t.Config.DedupWindow), Subscriptions: subs,
		DedupIDs: t.DedupIDs, Published: t.Published, Unrouted: t.Unrouted}
}
