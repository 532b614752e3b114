package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

func newSubscriptionCmd(f *clientFlags) *cobra.Command {
	cmd := groupCmd("subscription", "Create, list and delete the subscriptions of topics",
		newSubscriptionCreateCmd(f), newSubscriptionLsCmd(f), newSubscriptionRmCmd(f))
	cmd.Aliases = []string{"subscriptions"}
	return cmd
}

func newSubscriptionCreateCmd(f *clientFlags) *cobra.Command {
	var (
		qf     queueFlags
		filter map[string]string
	)
	cmd := &cobra.Command{
		Use:   "create TOPIC NAME",
		Short: "Create queue NAME as a subscription of TOPIC",
		Long: `create makes a queue NAME that gets a copy of every message published to
TOPIC whose headers include every --filter pair (all of them without a
filter). The queue takes the same settings as chute queue create; read it
with chute sub NAME.`,
		Example: `  chute subscription create orders billing
  chute subscription create orders eu-shipping --filter region=eu --max-deliveries 3`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeArgs(f, argTopic, argNone),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			var cfg chute.QueueConfig
			if err := qf.apply(&cfg); err != nil {
				return err
			}
			ctx, topic, name := cmd.Context(), args[0], args[1]
			if err := api.Subscribe(ctx, topic, name, chute.SubscriptionConfig{Filter: filter, Queue: cfg}); err != nil {
				return err
			}
			if !f.json {
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "created subscription %s of topic %s (filter: %s)\n",
					name, topic, orDash(fmtKV(filter)))
				return err
			}
			st, err := api.QueueStats(ctx, name)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), newQueueJSON(st))
		}),
	}
	cmd.Flags().Var(kvValue{&filter}, "filter", "deliver only messages with header key=value (repeatable: all must match)")
	qf.register(cmd)
	return cmd
}

func newSubscriptionLsCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "ls [TOPIC]",
		Aliases:           []string{"list"},
		Short:             "List subscriptions (of every topic, or of TOPIC) with their depth",
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeArgs(f, argTopic),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			ctx := cmd.Context()
			var topic string
			if len(args) == 1 {
				topic = args[0]
				ts, err := api.Topics(ctx)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(ts, func(t chute.TopicStats) bool { return t.Name == topic }) {
					return fmt.Errorf("topic %q: %w", topic, chute.ErrTopicNotFound)
				}
			}
			qs, err := api.Queues(ctx)
			if err != nil {
				return err
			}
			qs = slices.DeleteFunc(qs, func(q chute.QueueStats) bool {
				return q.Topic == "" || topic != "" && q.Topic != topic
			})
			if f.json {
				return printJSON(cmd.OutOrStdout(), queuesJSON(qs))
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tTOPIC\tFILTER\tREADY\tDELAYED\tIN FLIGHT\tOLDEST")
			for _, q := range qs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", q.Name, q.Topic, orDash(fmtKV(q.Filter)),
					q.Ready, q.Delayed, q.InFlight, fmtAge(q.OldestAge))
			}
			return tw.Flush()
		}),
	}
}

func newSubscriptionRmCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "rm TOPIC NAME",
		Aliases:           []string{"delete"},
		Short:             "Delete a subscription and its queue",
		Args:              exactArgs(2),
		ValidArgsFunction: completeArgs(f, argTopic, argSubscription),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			topic, name := args[0], args[1]
			if err := api.Unsubscribe(cmd.Context(), topic, name); err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"topic": topic, "subscription": name, "deleted": true})
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted subscription %s of topic %s\n", name, topic)
			return err
		}),
	}
}
