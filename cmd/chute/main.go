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

	"github.com/chutemq/chute/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	err := cmd.ExecuteContext(ctx)
	if err != nil && !errors.As(err, new(loggedError)) {
		fmt.Fprintln(os.Stderr, "chute:", err)
	}
	os.Exit(exitCode(err))
}

// newRootCmd builds the command tree; tests run it with their own args.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "chute",
		Short:         "chute is a durable message broker",
		Version:       versionLine(version.Get()),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("chute {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCmd(), newDemoCmd(), newBenchCmd(), newJournalCmd())
	root.AddCommand(newBackupCmd(), newRestoreCmd()) // backup.go
	root.AddCommand(newTokenCmd())                   // token.go
	root.AddCommand(newClusterCmd())                 // cluster.go
	addClientCommands(root)
	var vf clientFlags // version asks the server too, where the client commands would
	vc := newVersionCmd(&vf)
	vf.register(vc)
	root.AddCommand(vc)
	return root
}

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ error }

// loggedError is an error the command has logged already (serve logs
// through slog); main does not print it again. Its exit status is the
// wrapped error's.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }

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
