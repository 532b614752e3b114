package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
)

func newMsgCmd(f *clientFlags) *cobra.Command {
	return groupCmd("msg", "Look up or cancel one message of a queue", newMsgGetCmd(f), newMsgRmCmd(f))
}

// messageRef reads a SEQ|ID argument: a number is a sequence unless byID.
func messageRef(arg string, byID bool) (chute.MessageRef, error) {
	if !byID {
		if seq, err := strconv.ParseUint(arg, 10, 64); err == nil && seq > 0 {
			return chute.BySeq(seq), nil
		}
	}
	if arg == "" {
		return chute.MessageRef{}, usageError{errors.New("an empty message ID")}
	}
	return chute.ByID(arg), nil
}

func newMsgGetCmd(f *clientFlags) *cobra.Command {
	var byID bool
	cmd := &cobra.Command{
		Use:   "get QUEUE SEQ|ID",
		Short: "Show where a message is (ready, delayed, in flight) or how it left, without receiving it",
		Long: `get looks up one message of QUEUE by its sequence (a number) or its
message ID (anything else; --id for an ID that is a number) and prints
its state without taking a delivery:

  ready, delayed (until when), in-flight (deliveries, lease deadline, holder),
  or, for the queue's settled window after it left: acked, expired,
  cancelled, purged, dead-lettered (where to), discarded, redriven.

A message the queue does not know, or no longer remembers, is an error
(exit status 4). An ID is found while the queue remembers it (its de-dup
window).`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			ref, err := messageRef(args[1], byID)
			if err != nil {
				return err
			}
			info, err := api.GetMessage(cmd.Context(), args[0], ref)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), messageJSONOf(info))
			}
			return printMessageInfo(cmd.OutOrStdout(), info)
		}),
	}
	cmd.Flags().BoolVar(&byID, "id", false, "SEQ|ID is a message ID even if it is a number")
	return cmd
}

func newMsgRmCmd(f *clientFlags) *cobra.Command {
	var byID bool
	cmd := &cobra.Command{
		Use:     "rm QUEUE SEQ|ID...",
		Aliases: []string{"cancel"},
		Short:   "Cancel ready or delayed messages of a queue",
		Long: `rm cancels messages of QUEUE named by sequence or message ID (as for
msg get): ready and delayed ones are removed, in one journal write, and
remembered as cancelled. An in-flight message is not taken from its
consumer (exit status 5); one already settled or unknown is not found
(exit status 4). Each message gets a line saying what happened.`,
		Args:              minArgs(2),
		ValidArgsFunction: completeArgs(f, argQueue),
		RunE: withAPI(f, func(cmd *cobra.Command, args []string, api chute.API) error {
			refs, err := messageRefs(args[1:], byID)
			if err != nil {
				return err
			}
			rs, err := api.CancelMessages(cmd.Context(), args[0], refs...)
			if err != nil {
				return err
			}
			if f.json {
				out := make([]cancelJSON, len(rs))
				for i, r := range rs {
					out[i] = cancelJSONOf(r)
				}
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				for _, r := range rs {
					printCancelResult(cmd.OutOrStdout(), r)
				}
			}
			return notCancelled(rs)
		}),
	}
	cmd.Flags().BoolVar(&byID, "id", false, "every SEQ|ID is a message ID even if it is a number")
	return cmd
}

// notCancelled is the error for messages that were not cancelled (their
// first error decides the exit status), nil when all were.
func notCancelled(rs []chute.CancelResult) error {
	return notDone(rs, func(r chute.CancelResult) (bool, error) { return r.Cancelled, r.Err }, "message(s) not cancelled")
}

// notDone is the error for the results that say their action was not
// done (the first one's error decides the exit status), nil when all were.
func notDone[R any](rs []R, done func(R) (bool, error), what string) error {
	var first error
	n := 0
	for _, r := range rs {
		if ok, err := done(r); !ok {
			n++
			if first == nil {
				first = err
			}
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d %s: %w", n, len(rs), what, first)
}

// messageRefs parses SEQ|ID arguments (see messageRef).
func messageRefs(args []string, byID bool) ([]chute.MessageRef, error) {
	refs := make([]chute.MessageRef, len(args))
	for i, a := range args {
		ref, err := messageRef(a, byID)
		if err != nil {
			return nil, err
		}
		refs[i] = ref
	}
	return refs, nil
}

// refName names a message in a result line: the ref, and the sequence it
// was found at when the ref is an ID.
func refName(ref chute.MessageRef, seq uint64) string {
	if ref.ID != "" && seq != 0 {
		return fmt.Sprintf("%s (seq %d)", ref, seq)
	}
	return ref.String()
}

func printCancelResult(w io.Writer, r chute.CancelResult) {
	name := refName(r.Ref, r.Seq)
	switch {
	case r.Cancelled:
		fmt.Fprintf(w, "cancelled %s\n", name)
	case r.State == chute.MessageInFlight:
		fmt.Fprintf(w, "not cancelled %s: in flight (only ready and delayed messages can be cancelled)\n", name)
	case r.State == chute.MessageUnknown:
		fmt.Fprintf(w, "not cancelled %s: not found\n", name)
	default:
		fmt.Fprintf(w, "not cancelled %s: already %s\n", name, r.State)
	}
}

// printMessageInfo prints a lookup as "field: value" lines, only those
// that apply.
func printMessageInfo(w io.Writer, m chute.MessageInfo) error {
	line := func(k, format string, args ...any) {
		fmt.Fprintf(w, "%-15s %s\n", k+":", fmt.Sprintf(format, args...))
	}
	when := func(t time.Time) string {
		return fmt.Sprintf("%s (%s)", t.UTC().Format(time.RFC3339), relTime(t))
	}
	line("queue", "%s", m.Queue)
	line("seq", "%d", m.Seq)
	if m.ID != "" {
		line("id", "%s", strconv.Quote(m.ID))
	}
	state := m.State.String()
	if m.KeyWaiting {
		state += " (waiting behind its ordering key)"
	}
	line("state", "%s", state)
	if m.Key != "" {
		line("key", "%s", strconv.Quote(m.Key))
	}
	if !m.State.Settled() {
		line("priority", "%d", m.Priority)
		line("published", "%s", when(m.Published))
		line("deliveries", "%d", m.Deliveries)
	}
	if !m.DeliverAt.IsZero() {
		line("deliver at", "%s", when(m.DeliverAt))
	}
	if !m.LeaseDeadline.IsZero() {
		line("lease deadline", "%s", when(m.LeaseDeadline))
		line("holder", "%s", orDash(m.Holder))
	}
	if m.LastError != "" {
		line("last error", "%s", strconv.Quote(m.LastError))
	}
	if dl := m.DeadLetter; dl != nil {
		line("died in", "%s seq %d (%s, %d deliveries) %s", dl.Source, dl.SourceSeq, dl.Reason, dl.Deliveries, when(dl.Died))
	}
	if !m.SettledAt.IsZero() {
		line("settled", "%s", when(m.SettledAt))
	}
	if m.Reason != "" {
		line("reason", "%s", m.Reason)
	}
	if m.MovedTo != "" || m.MovedSeq != 0 {
		line("moved to", "%s seq %d", orDash(m.MovedTo), m.MovedSeq)
	}
	return nil
}

// relTime says how far t is from now: "in 5s" or "5s ago".
func relTime(t time.Time) string {
	d := time.Until(t).Round(time.Second)
	if d >= 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

// messageJSON is a lookup as msg get --json prints it (docs/cli.md).
type messageJSON struct {
	Queue         string          `json:"queue"`
	Seq           uint64          `json:"seq"`
	ID            string          `json:"id,omitempty"`
	Key           string          `json:"key,omitempty"`
	State         string          `json:"state"`
	KeyWaiting    bool            `json:"key_waiting,omitempty"`
	Priority      uint8           `json:"priority"`
	Published     *time.Time      `json:"published,omitempty"`
	Deliveries    int             `json:"deliveries"`
	DeliverAt     *time.Time      `json:"deliver_at,omitempty"`
	LeaseDeadline *time.Time      `json:"lease_deadline,omitempty"`
	Holder        string          `json:"holder,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	DeadLetter    *deadLetterJSON `json:"dead_letter,omitempty"`
	SettledAt     *time.Time      `json:"settled_at,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	MovedTo       string          `json:"moved_to,omitempty"`
	MovedSeq      uint64          `json:"moved_seq,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func messageJSONOf(m chute.MessageInfo) messageJSON {
	j := messageJSON{Queue: m.Queue, Seq: m.Seq, ID: m.ID, Key: m.Key, State: m.State.String(), KeyWaiting: m.KeyWaiting,
		Priority: m.Priority, Published: optTime(m.Published), Deliveries: m.Deliveries, DeliverAt: optTime(m.DeliverAt),
		LeaseDeadline: optTime(m.LeaseDeadline), Holder: m.Holder, LastError: m.LastError,
		SettledAt: optTime(m.SettledAt), Reason: m.Reason, MovedTo: m.MovedTo, MovedSeq: m.MovedSeq}
	if dl := m.DeadLetter; dl != nil {
		j.DeadLetter = &deadLetterJSON{Source: dl.Source, Reason: dl.Reason, Deliveries: dl.Deliveries,
			LastError: dl.LastError, Died: dl.Died.UTC(), SourceSeq: dl.SourceSeq}
	}
	return j
}

// cancelJSON is one result of msg rm --json.
type cancelJSON struct {
	Seq       uint64 `json:"seq"`
	ID        string `json:"id,omitempty"`
	Cancelled bool   `json:"cancelled"`
	State     string `json:"state,omitempty"` // not cancelled: why
	Error     string `json:"error,omitempty"`
}

func cancelJSONOf(r chute.CancelResult) cancelJSON {
	c := cancelJSON{Seq: r.Seq, ID: r.Ref.ID, Cancelled: r.Cancelled}
	if !r.Cancelled {
		c.State = r.State.String()
		if r.Err != nil {
			c.Error = r.Err.Error()
		}
	}
	return c
}
