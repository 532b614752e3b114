package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/chutemq/chute"
)

// This file holds what the client commands (pub, sub, ack, nack, extend,
// queue, topic, subscription, dlq) share: running with a connection, argument checks,
// key=value flags, tables and progress bars.

// withAPI returns a RunE that dials the server named by f, runs fn with the
// connection, and closes it.
func withAPI(f *clientFlags, fn func(cmd *cobra.Command, args []string, api chute.API) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := f.dial(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer c.Close()
		return f.explain(fn(cmd, args, c))
	}
}

// rangeArgs accepts min to max positional arguments.
func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageError{fmt.Errorf("%s takes %d to %d argument(s), got %d", cmd.CommandPath(), min, max, len(args))}
		}
		return nil
	}
}

// minArgs accepts min or more positional arguments.
func minArgs(min int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			return usageError{fmt.Errorf("%s takes at least %d argument(s), got %d (see --help)", cmd.CommandPath(), min, len(args))}
		}
		return nil
	}
}

// groupCmd is a command that only holds subcommands. Run without one, or
// with an unknown one, it is a usage error (cobra would print the help and
// succeed).
func groupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			names := make([]string, len(subs))
			for i, s := range subs {
				names[i] = s.Name()
			}
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q (use %s)", args[0], cmd.CommandPath(), strings.Join(names, ", "))}
			}
			return usageError{fmt.Errorf("%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(names, ", "))}
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// flagVar adds flag name with value v, shown in the help as
// "--name TYPE" (DURATION, SIZE|none, ...) and without a "(default 0s)"
// when its default is 0.
func flagVar(fs *pflag.FlagSet, v pflag.Value, name, typ, usage string) {
	fs.Var(typedValue{Value: v, typ: typ}, name, usage)
	if fl := fs.Lookup(name); fl.DefValue == "0s" {
		fl.DefValue = "0"
	}
}

// typedValue names a value's type for the help.
type typedValue struct {
	pflag.Value
	typ string
}

func (v typedValue) Type() string { return v.typ }

// kvValue is a repeatable key=value flag (--header, --filter).
type kvValue struct{ m *map[string]string }

func (v kvValue) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want key=value", s)
	}
	if *v.m == nil {
		*v.m = make(map[string]string)
	}
	(*v.m)[k] = val
	return nil
}

func (v kvValue) String() string {
	if v.m == nil {
		return ""
	}
	return fmtKV(*v.m)
}

func (v kvValue) Type() string { return "key=value" }

// fmtKV prints a map as k=v pairs in key order, separated by commas.
func fmtKV(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, m[k])
	}
	return b.String()
}

// fmtAge prints a wait rounded for a table ("1m30s", "250ms"); "-" when
// there is none.
func fmtAge(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmtDuration(roundAge(d))
}

// ageJSON is a wait as --json prints it: fmtDuration of the wait rounded
// as in tables, or null when there is none (nothing ready).
func ageJSON(d time.Duration) *string {
	if d <= 0 {
		return nil
	}
	s := fmtDuration(roundAge(d))
	return &s
}

// roundAge rounds a wait to milliseconds below a second, else to seconds.
func roundAge(d time.Duration) time.Duration {
	if d < time.Second {
		return max(d.Round(time.Millisecond), time.Millisecond)
	}
	return d.Round(time.Second)
}

// orDash prints s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newTable starts an aligned table; the caller writes tab-separated rows
// and calls Flush.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// isTerminal reports whether v (a command's input, output or error
// stream) is a terminal. Anything but an *os.File is not. A variable so
// that a test can pretend.
var isTerminal = func(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a progress bar on a terminal, or nothing: the zero value and
// nil do nothing, so callers need not ask whether one is shown.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress draws a bar on w when w is a terminal and show is set. max
// is the total (-1: unknown, a spinner); bytes counts bytes, not unit.
func newProgress(w io.Writer, show bool, max int64, desc, unit string, bytes bool) *progress {
	if !show || !isTerminal(w) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
		// No spinner goroutine: the bar is drawn only from the caller's
		// goroutine (by add), so clear and done never race with it.
		progressbar.OptionSetSpinnerChangeInterval(0),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetItsString(unit), progressbar.OptionShowIts())
	}
	return &progress{bar: progressbar.NewOptions64(max, opts...)}
}

func (p *progress) add(n int64) {
	if p != nil {
		p.bar.Add64(n)
	}
}

// clear wipes the bar before other output goes to the same terminal; the
// next add draws it again.
func (p *progress) clear() {
	if p != nil {
		p.bar.Clear()
	}
}

// done removes the bar.
func (p *progress) done() {
	if p != nil {
		p.bar.Finish()
	}
}

// hintError shows a message of the CLI's own in place of an error's text,
// while errors.Is and errors.As (so the exit status) still see the error.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// withHint returns err shown as msg.
func withHint(err error, msg string) error { return &hintError{msg: msg, err: err} }
