package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// clientFlags are the persistent flags of every command that talks to a
// server: where it is, the token, and --json output.
type clientFlags struct {
	server string
	token  string
	json   bool
}

func (f *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "server address host:port (default $CHUTE_SERVER or "+client.DefaultAddr+")")
	pf.StringVar(&f.token, "token", "", "bearer token (default $CHUTE_TOKEN)")
	pf.BoolVar(&f.json, "json", false, "print JSON (for scripts) instead of tables")
}

// dial connects to the server named by the flags or the environment.
func (f *clientFlags) dial() (*client.Client, error) {
	addr := f.server
	if addr == "" {
		addr = os.Getenv("CHUTE_SERVER")
	}
	if addr == "" {
		addr = client.DefaultAddr
	}
	token := f.token
	if token == "" {
		token = os.Getenv("CHUTE_TOKEN")
	}
	c, err := client.Dial(addr, client.WithToken(token))
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Exit statuses of client commands, for scripts (see exitCode):
//
//	0 success · 1 failure · 2 bad usage · 3 journal damaged
//	4 not found (queue, topic, subscription) · 5 refused (queue full,
//	invalid message or config, name in use, stale receipt)
//	6 server unreachable or unavailable · 7 not authorised · 8 timed out
func clientExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, chute.ErrQueueNotFound), errors.Is(err, chute.ErrTopicNotFound),
		errors.Is(err, chute.ErrNotFound), errors.Is(err, chute.ErrNotSubscription):
		return 4, true
	case errors.Is(err, chute.ErrQueueFull), errors.Is(err, chute.ErrInvalidMessage),
		errors.Is(err, chute.ErrInvalidConfig), errors.Is(err, chute.ErrInvalidName),
		errors.Is(err, chute.ErrExists), errors.Is(err, chute.ErrStaleReceipt),
		errors.Is(err, chute.ErrMessageTooLarge), errors.Is(err, chute.ErrBatchTooLarge):
		return 5, true
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable:
		return 6, true
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return 7, true
	case connect.CodeDeadlineExceeded:
		return 8, true
	}
	return 0, false
}

// addClientCommands registers the commands that talk to a server.
func addClientCommands(root *cobra.Command) {
	var f clientFlags
	cmds := clientCommands(&f)
	for _, c := range cmds {
		f.register(c)
		root.AddCommand(c)
	}
}

// clientCommands returns the commands that talk to a server (pub, sub,
// queue, topic, subscription, dlq), each defined in its own file.
func clientCommands(f *clientFlags) []*cobra.Command {
	return []*cobra.Command{newPubCmd(f), newSubCmd(f), newQueueCmd(f), newTopicCmd(f), newSubscriptionCmd(f), newDLQCmd(f)}
}
