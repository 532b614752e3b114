package chute

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by the embedded broker and, over the network, by the
// client, which maps status codes back to these values. Test with
// errors.Is; the text after the sentinel's own says which name or field.
var (
	// ErrQueueNotFound: the named queue does not exist.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrTopicNotFound: the named topic does not exist.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrNotFound: a publish named neither a queue nor a topic.
	ErrNotFound = errors.New("no queue or topic with this name")
	// ErrExists: a queue or topic with this name already exists (they
	// share one namespace, so that publish can address either by name).
	ErrExists = errors.New("name already in use")
	// ErrInvalidName: a name is empty, longer than MaxNameLen bytes, or not
	// made of [A-Za-z0-9._-] (not starting with '.' or '-').
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidConfig: a queue or topic setting is out of range, or an
	// operation does not fit the queue's kind (a redrive of a queue that
	// is not a dead-letter queue, a delete of a dead-letter queue that
	// queues still use).
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrInvalidMessage: a message field is out of range: priority outside
	// 0–9, a negative delay, a delay or TTL beyond MaxTTL, an over-long ID,
	// key or header, too many headers.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrQueueFull: a publish would exceed a queue's depth limit (and its
	// overflow policy is reject, or nothing could be dropped). Nothing of
	// the batch was stored.
	ErrQueueFull = errors.New("queue full")
	// ErrStaleReceipt: the lease of that receipt is over: the message was
	// acked, its lease expired (it may have been redelivered under a new
	// receipt), or it was dead-lettered, purged or deleted.
	ErrStaleReceipt = errors.New("stale receipt: the lease is no longer held")
	// ErrInvalidReceipt: a receipt is malformed or belongs to another queue.
	ErrInvalidReceipt = errors.New("invalid receipt")
	// ErrNotSubscription: the queue is not a subscription of that topic.
	ErrNotSubscription = errors.New("queue is not a subscription of this topic")
	// ErrMessageTooLarge: a message (body, headers, ID and key) is larger
	// than the broker's maximum message size.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrBatchTooLarge: a call names more messages or receipts than the
	// broker's maximum batch.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrClosed: the broker is closed (or closing).
	ErrClosed = errors.New("broker closed")
	// ErrJournalCorrupt: the journal holds damage that is not a torn tail;
	// errors.As with *CorruptionError gives the file, offset and reason.
	ErrJournalCorrupt = errors.New("journal corrupt")
	// ErrOutOfOrder: a publish in a producer session starts beyond the next
	// number the broker expects (Message.Session): an earlier batch of the
	// session is missing (lost, or still being retried), or the broker forgot
	// the session. Nothing was stored; resend from the missing batch, or start
	// a new session.
	ErrOutOfOrder = errors.New("out of order: the publish leaves a gap in its producer session")
	// ErrDiskFull: the volume holding the journal is (nearly) full.
	// Publishes are refused below the broker's free-space floor
	// (Options.MinFreeDisk), receives below half of it, and anything whose
	// journal write found no space at all fails with it; nothing of the
	// refused call was stored. Acks, nacks and checkpoints go on, and
	// everything resumes by itself once space is freed: retry with
	// back-off (the Go producer does).
	ErrDiskFull = errors.New("disk full")
	// ErrMessageNotFound: GetMessage, CancelMessages or RedriveMessages
	// named a message the queue does not hold: never there, its ID no
	// longer remembered, (for a cancel or redrive) already settled, or
	// (for a redrive) not a dead letter.
	ErrMessageNotFound = errors.New("message not found")
	// ErrMessageLeased: CancelMessages or RedriveMessages named a message
	// that is in flight; only ready and delayed messages can be cancelled
	// or redriven.
	ErrMessageLeased = errors.New("message is in flight")
	// ErrScheduleNotFound: no periodic schedule has this name.
	ErrScheduleNotFound = errors.New("schedule not found")
	// ErrNotLeader: a node of a replicated cluster that does not lead
	// was asked to change or read queues; nothing was done. A
	// *LeaderError says where the leader is, when the node knows.
	ErrNotLeader = errors.New("not the leader")
	// ErrOutcomeUnknown: the node stopped leading while the call was in
	// flight; its change may or may not be applied by the next leader.
	// Retry it where that is safe: a publish with a producer session is
	// stored once.
	ErrOutcomeUnknown = errors.New("outcome unknown: leadership changed during the call")
	// ErrNotReplicated: a feature a replicated cluster does not serve
	// yet: what only a newer command version carries while a member
	// still runs an older binary (a rolling upgrade: docs/operations.md).
	ErrNotReplicated = errors.New("not served by a replicated cluster yet")
)

// LeaderError is ErrNotLeader with the address of the node that leads
// (as its peers know it: a URL such as "http://10.0.0.2:7400"), for a
// client to send the call there.
type LeaderError struct {
	Addr string
}

func (e *LeaderError) Error() string {
	if e.Addr == "" {
		return "not the leader, and no leader is known yet"
	}
	return "not the leader; the leader is at " + e.Addr
}

// Is makes errors.Is(err, ErrNotLeader) true for a *LeaderError.
func (e *LeaderError) Is(target error) bool { return target == ErrNotLeader }

// CorruptionError names the file, offset and reason of damage found in the
// journal. It matches ErrJournalCorrupt with errors.Is.
type CorruptionError struct {
	File   string // the segment or checkpoint file
	Offset int64  // the byte offset in File where the damage starts
	Reason string // what is wrong: "checksum mismatch", "bad magic", …
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("journal corrupt: %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrJournalCorrupt) true for a *CorruptionError.
func (e *CorruptionError) Is(target error) bool { return target == ErrJournalCorrupt }

// ReceiptErrors lists the receipts of an ack, nack or extend that failed;
// the call applied the others. errors.Is(err, ErrStaleReceipt) reports
// whether any failed for that reason.
type ReceiptErrors struct {
	Failed []ReceiptError
}

// ReceiptError is one failed receipt.
type ReceiptError struct {
	Index   int
	Receipt string
	Err     error
}

func (e *ReceiptErrors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d receipt(s) failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; #%d %.40s: %v", f.Index, f.Receipt, f.Err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As every cause.
func (e *ReceiptErrors) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, f := range e.Failed {
		errs[i] = f.Err
	}
	return errs
}
