// Command chute runs the chute message broker and talks to it.
//
// main only builds the command tree and exits with the status the command
// returns; every command is a function returning an error (see
// exitCode for the mapping scripts can rely on).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chute:", err)
	}
	os.Exit(exitCode(err))
}

// newRootCmd builds the command tree; tests run it with their own args.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "chute",
		Short:         "chute is a durable message broker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(), newDemoCmd(), newBenchCmd(), newJournalCmd())
	addClientCommands(root)
	return root
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ error }

// exitCode: 0 success, 1 failure, 2 bad usage, 3 journal damaged, and for
// client commands 4–8 (see clientExitCode).
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, errCorrupt):
		return 3
	}
	if code, ok := clientExitCode(err); ok {
		return code
	}
	return 1
}
