package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

// queue pause and queue resume: the operator's hand on a queue's
// deliveries (chute.API.PauseQueue, ResumeQueue).

func newQueuePauseCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Stop delivering a queue's messages until resume (publishes are still accepted)",
		Long: `pause stops deliveries of queue NAME, any queue, until chute queue resume:
receivers get nothing from it (they wait), publishes are still accepted,
leases already held go on and can be acked, and the withheld messages do
not use up their deliveries. The pause is journaled: it survives a
restart. While a queue is paused its circuit breaker (--breaker) does
nothing. Pausing a paused queue changes nothing.`,
		Example:           `  chute queue pause orders     # the downstream is down for maintenance`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return pauseOrResume(cmd, f, api, args[0], true)
		}),
	}
}

func newQueueResumeCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Deliver a paused queue's messages again; also closes an open circuit breaker",
		Long: `resume clears a pause of queue NAME, and also closes its circuit breaker if
it is open or half-open: the operator's word that the downstream is back.
Waiting receivers get messages at once. Resuming a running queue changes
nothing.`,
		Example:           `  chute queue resume orders`,
		Args:              exactArgs(1),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			return pauseOrResume(cmd, f, api, args[0], false)
		}),
	}
}

func pauseOrResume(cmd *cobra.Command, f *clientFlags, api chute.API, name string, pause bool) error {
	ctx := cmd.Context()
	var err error
	if pause {
		err = api.PauseQueue(ctx, name)
	} else {
		err = api.ResumeQueue(ctx, name)
	}
	if err != nil {
		return err
	}
	st, err := api.QueueStats(ctx, name)
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(cmd.OutOrStdout(), newQueueJSON(st))
	}
	verb := "resumed"
	if pause {
		verb = "paused"
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s queue %s (%s)\n", verb, name, deliveryState(st))
	return err
}

// deliveryState says in words whether a queue delivers: "delivering",
// "paused", "breaker open", "breaker half-open".
func deliveryState(st chute.QueueStats) string {
	switch {
	case st.Paused:
		return "paused"
	case st.Breaker != chute.BreakerClosed:
		return "breaker " + st.Breaker.String()
	}
	return "delivering"
}

// breakerRow is the breaker's state for queue stat: "off" for a queue
// without one.
func breakerRow(st chute.QueueStats) string {
	if !st.Config.Breaker.Enabled && st.Breaker == chute.BreakerClosed {
		return "off"
	}
	return st.Breaker.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
