package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Shell completion. cobra's own "chute completion bash|zsh|fish|powershell"
// prints the script; the script calls the hidden "chute __complete ARGS",
// which lands in the functions below. Names come from the live server
// (--server, $CHUTE_SERVER, ...) within completeTimeout; when it cannot be
// asked, nothing is offered. File names are never offered for names.

// completeTimeout bounds the call that lists names for a completion, so
// that a server that does not answer never hangs the shell.
const completeTimeout = 2 * time.Second

// argKind is what a positional argument names.
type argKind int

const (
	argNone         argKind = iota // a new name or free text: nothing to offer
	argQueue                       // any queue (subscriptions and dead-letter queues too)
	argTopic                       // a topic
	argTarget                      // a queue or a topic (pub)
	argDLQ                         // a dead-letter queue (as dlq ls --all lists them)
	argSubscription                // a subscription of the topic named by the first argument
)

// completeArgs returns a ValidArgsFunction completing the i-th positional
// argument as kinds[i] says; arguments past kinds get nothing.
func completeArgs(f *clientFlags, kinds ...argKind) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		const directive = cobra.ShellCompDirectiveNoFileComp
		if len(args) >= len(kinds) || kinds[len(args)] == argNone {
			return nil, directive
		}
		names, err := listNames(cmd, f, kinds[len(args)], args)
		if err != nil {
			cobra.CompDebugln(fmt.Sprintf("chute: completion: %v", err), false) // to $BASH_COMP_DEBUG_FILE only
			return nil, directive
		}
		slices.Sort(names)
		return withPrefix(slices.Compact(names), toComplete), directive
	}
}

// withPrefix keeps the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, prefix) })
}

// listNames asks the server for the names of one kind.
func listNames(cmd *cobra.Command, f *clientFlags, kind argKind, args []string) ([]string, error) {
	c, err := f.dial(io.Discard)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completeTimeout)
	defer cancel()

	var names []string
	if kind == argQueue || kind == argTarget || kind == argDLQ {
		qs, err := c.Queues(ctx)
		if err != nil {
			return nil, err
		}
		if kind == argDLQ {
			for _, d := range deadLetterQueues(qs, true) {
				names = append(names, d.Name)
			}
			return names, nil
		}
		for _, q := range qs {
			names = append(names, q.Name)
		}
	}
	if kind == argTopic || kind == argTarget || kind == argSubscription {
		ts, err := c.Topics(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			switch {
			case kind != argSubscription:
				names = append(names, t.Name)
			case len(args) > 0 && t.Name == args[0]:
				names = append(names, t.Subscriptions...)
			}
		}
	}
	return names, nil
}

// enumCompletion completes an enum flag with its choices.
func enumCompletion[T fmt.Stringer](all []T) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return withPrefix(enumNames(all), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}
