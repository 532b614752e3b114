// Package wire is what the server and the Go client share about the
// network form of the API: conversions between chute's Go types and the
// generated protobuf types, the one table mapping chute errors to
// Connect/gRPC status codes and back, and compression.
package wire

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// errorTable maps each chute sentinel error to its status code and the
// stable reason carried in chute.v1.ErrorDetail. It is the only place that
// decides what a client sees for an error; the client maps back through it.
var errorTable = []struct {
	err    error
	code   connect.Code
	reason string
}{
	{chute.ErrQueueNotFound, connect.CodeNotFound, "QUEUE_NOT_FOUND"},
	{chute.ErrTopicNotFound, connect.CodeNotFound, "TOPIC_NOT_FOUND"},
	{chute.ErrNotFound, connect.CodeNotFound, "TARGET_NOT_FOUND"},
	{chute.ErrNotSubscription, connect.CodeNotFound, "NOT_A_SUBSCRIPTION"},
	{chute.ErrScheduleNotFound, connect.CodeNotFound, "SCHEDULE_NOT_FOUND"},
	{chute.ErrExists, connect.CodeAlreadyExists, "NAME_IN_USE"},
	{chute.ErrInvalidName, connect.CodeInvalidArgument, "INVALID_NAME"},
	{chute.ErrInvalidConfig, connect.CodeInvalidArgument, "INVALID_CONFIG"},
	{chute.ErrInvalidMessage, connect.CodeInvalidArgument, "INVALID_MESSAGE"},
	{chute.ErrInvalidReceipt, connect.CodeInvalidArgument, "INVALID_RECEIPT"},
	{chute.ErrMessageTooLarge, connect.CodeInvalidArgument, "MESSAGE_TOO_LARGE"},
	{chute.ErrBatchTooLarge, connect.CodeInvalidArgument, "BATCH_TOO_LARGE"},
	{chute.ErrQueueFull, connect.CodeResourceExhausted, "QUEUE_FULL"},
	{chute.ErrDiskFull, connect.CodeResourceExhausted, "DISK_FULL"},
	{chute.ErrStaleReceipt, connect.CodeFailedPrecondition, "STALE_RECEIPT"},
	{chute.ErrOutOfOrder, connect.CodeFailedPrecondition, "OUT_OF_ORDER"},
	{chute.ErrCrossGroup, connect.CodeFailedPrecondition, "CROSS_GROUP"},
	{chute.ErrMessageNotFound, connect.CodeNotFound, "MESSAGE_NOT_FOUND"},
	{chute.ErrMessageLeased, connect.CodeFailedPrecondition, "MESSAGE_LEASED"},
	{chute.ErrClosed, connect.CodeUnavailable, "BROKER_CLOSED"},
	{chute.ErrNotLeader, connect.CodeUnavailable, "NOT_LEADER"},
	{chute.ErrOutcomeUnknown, connect.CodeUnavailable, "OUTCOME_UNKNOWN"},
	{chute.ErrNotReplicated, connect.CodeUnimplemented, "NOT_REPLICATED"},
	{chute.ErrJournalCorrupt, connect.CodeDataLoss, "JOURNAL_CORRUPT"},
	{context.Canceled, connect.CodeCanceled, "CANCELED"},
	{context.DeadlineExceeded, connect.CodeDeadlineExceeded, "DEADLINE_EXCEEDED"},
}

// Classify returns the status code and reason of err.
func Classify(err error) (connect.Code, string) {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.code, e.reason
		}
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code(), ""
	}
	return connect.CodeInternal, "INTERNAL"
}

// ToConnect turns a broker error into the error a handler returns.
func ToConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return err
	}
	code, reason := Classify(err)
	out := connect.NewError(code, capError(err))
	if detail, derr := connect.NewErrorDetail(&chutev1.ErrorDetail{Reason: reason}); derr == nil {
		out.AddDetail(detail)
	}
	var le *chute.LeaderError
	if errors.As(err, &le) && le.Addr != "" {
		out.Meta().Set(LeaderHeader, le.Addr)
	}
	return out
}

// LeaderHeader carries a *chute.LeaderError's address on the error of a
// call that a cluster node which does not lead refused.
const LeaderHeader = "Chute-Leader"

// ToStatus is ToConnect for an error inside a stream or a batch.
func ToStatus(err error) *chutev1.Status {
	if err == nil {
		return nil
	}
	code, reason := Classify(err)
	return &chutev1.Status{Code: code.String(), Message: capError(err).Error(), Reason: reason}
}

// FromConnect turns an error from a call into one that errors.Is matches
// against chute's sentinels (when the server named a reason), keeping the
// server's message.
func FromConnect(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return err
	}
	if s := sentinel(Reason(err)); s != nil {
		if s == chute.ErrNotLeader {
			return &chute.LeaderError{Addr: ce.Meta().Get(LeaderHeader)}
		}
		return &RemoteError{Sentinel: s, Code: ce.Code(), Msg: ce.Message(), Cause: err}
	}
	switch ce.Code() {
	case connect.CodeCanceled:
		return fmt.Errorf("%w: %w", context.Canceled, err)
	case connect.CodeDeadlineExceeded:
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// FromStatus turns a Status from a stream or batch back into an error.
func FromStatus(s *chutev1.Status) error {
	if s == nil {
		return nil
	}
	if sent := sentinel(s.Reason); sent != nil {
		var code connect.Code
		code.UnmarshalText([]byte(s.Code))
		return &RemoteError{Sentinel: sent, Code: code, Msg: s.Message}
	}
	return fmt.Errorf("%s: %s", s.Code, s.Message)
}

func sentinel(reason string) error {
	if reason == "" {
		return nil
	}
	for _, e := range errorTable {
		if e.reason == reason {
			return e.err
		}
	}
	return nil
}

// RemoteError is a chute error reported by the server. errors.Is matches
// its sentinel (chute.ErrQueueFull, ...); its message is the server's.
type RemoteError struct {
	Sentinel error
	Code     connect.Code
	Msg      string
	Cause    error // the *connect.Error, when there was one
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap lets errors.Is find the sentinel and errors.As the Connect error.
func (e *RemoteError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Sentinel, e.Cause}
	}
	return []error{e.Sentinel}
}

// IsTransient reports whether err is worth retrying after a back-off: the
// server was unreachable, overloaded or restarting, a queue or the
// broker's disk was full, or a cluster's leader changed (the node asked
// does not lead, or stopped leading during the call: retried, a publish
// in a producer session is stored once). A status inside a stream
// carries no Connect error: its code is the RemoteError's, and the
// sentinels are tested by name too, as an embedded API returns them
// bare. (Without the stream's code, a Producer's batches answered
// "outcome unknown" in its stream during an election failed instead of
// being sent again: 2,048 of 200,000 in a 3-node cluster's backlog fill;
// docs/replication.md, "Publishes through an election".)
func IsTransient(err error) bool {
	if errors.Is(err, chute.ErrQueueFull) || errors.Is(err, chute.ErrDiskFull) ||
		errors.Is(err, chute.ErrNotLeader) || errors.Is(err, chute.ErrOutcomeUnknown) {
		return true
	}
	code := connect.CodeOf(err)
	var re *RemoteError
	if errors.As(err, &re) && re.Code != 0 {
		code = re.Code
	}
	switch code {
	case connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeAborted:
		return true
	}
	return false
}

// maxErrorMessage bounds the text of an error sent to a client (and
// logged): whatever a client sent, the answer stays small (issue 8: an
// 8 MiB invalid name came back whole).
const maxErrorMessage = 1024

// capError cuts err's message to maxErrorMessage bytes, keeping its chain
// for errors.Is.
func capError(err error) error {
	if len(err.Error()) <= maxErrorMessage {
		return err
	}
	return cappedError{err}
}

type cappedError struct{ err error }

func (c cappedError) Error() string {
	msg := c.err.Error()
	return fmt.Sprintf("%s… (%d bytes cut)", strings.ToValidUTF8(msg[:maxErrorMessage], ""), len(msg)-maxErrorMessage)
}

func (c cappedError) Unwrap() error { return c.err }

// Reason is the reason of the chute.v1.ErrorDetail on err's Connect error;
// "" if it has none.
func Reason(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if ed, ok := v.(*chutev1.ErrorDetail); ok {
				return ed.GetReason()
			}
		}
	}
	return ""
}
