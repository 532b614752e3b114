package chute

import (
	"fmt"
	"strconv"
	"time"
)

// Looking up, cancelling and redriving one message (API.GetMessage,
// API.CancelMessages, API.RedriveMessages).
//
// A message of a queue is named by its sequence, or by its message ID
// while the queue remembers the ID (QueueConfig.DedupWindow). A lookup
// takes no delivery and writes nothing. After a message leaves the queue
// the queue remembers how it left (acked, expired, cancelled, purged,
// dead-lettered, discarded, redriven) for QueueConfig.SettledWindow and at
// most QueueConfig.MaxSettled messages; then it is unknown.

// MessageRef names one message of a queue: by sequence or by message ID,
// exactly one of the two.
type MessageRef struct {
	Seq uint64 // the sequence the broker gave it (PublishResult.Seq)
	ID  string // the producer's message ID (Message.ID)
}

// BySeq names a message by its sequence.
func BySeq(seq uint64) MessageRef { return MessageRef{Seq: seq} }

// ByID names a message by its message ID.
func ByID(id string) MessageRef { return MessageRef{ID: id} }

// Validate reports a ref that names no message, or two ways at once.
func (r MessageRef) Validate() error {
	switch {
	case r.Seq == 0 && r.ID == "":
		return fmt.Errorf("%w: a message is named by a sequence or an ID", ErrInvalidMessage)
	case r.Seq != 0 && r.ID != "":
		return fmt.Errorf("%w: name a message by its sequence or by its ID, not both", ErrInvalidMessage)
	case len(r.ID) > MaxIDLen:
		return fmt.Errorf("%w: ID longer than %d bytes", ErrInvalidMessage, MaxIDLen)
	}
	return nil
}

func (r MessageRef) String() string {
	if r.ID != "" {
		return "id " + strconv.Quote(r.ID)
	}
	return "seq " + strconv.FormatUint(r.Seq, 10)
}

// MessageState is where a message is in its queue, or how it left.
type MessageState uint8

const (
	// MessageUnknown: never in the queue, or settled and forgotten.
	MessageUnknown MessageState = iota
	// MessageReady: deliverable (perhaps waiting behind its ordering key).
	MessageReady
	// MessageDelayed: waiting for its delivery time or a retry back-off
	// (MessageInfo.DeliverAt).
	MessageDelayed
	// MessageInFlight: leased to a consumer (MessageInfo.LeaseDeadline).
	MessageInFlight
	// MessageDeadLettered: moved from this queue to its dead-letter queue
	// (MessageInfo.MovedTo, MovedSeq, Reason).
	MessageDeadLettered
	// MessageAcked: settled by a consumer.
	MessageAcked
	// MessageExpired: its TTL passed and it was discarded.
	MessageExpired
	// MessageCancelled: removed by CancelMessages.
	MessageCancelled
	// MessagePurged: removed by PurgeQueue.
	MessagePurged
	// MessageDiscarded: it should have been dead-lettered (Reason) but the
	// queue has no dead-letter queue.
	MessageDiscarded
	// MessageRedriven: a dead letter moved back to its source queue by
	// Redrive (MessageInfo.MovedTo, MovedSeq).
	MessageRedriven
)

var messageStateNames = [...]string{
	MessageUnknown: "unknown", MessageReady: "ready", MessageDelayed: "delayed",
	MessageInFlight: "in-flight", MessageDeadLettered: "dead-lettered", MessageAcked: "acked",
	MessageExpired: "expired", MessageCancelled: "cancelled", MessagePurged: "purged",
	MessageDiscarded: "discarded", MessageRedriven: "redriven",
}

func (s MessageState) String() string {
	if int(s) < len(messageStateNames) {
		return messageStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ParseMessageState parses the names String gives.
func ParseMessageState(s string) (MessageState, error) {
	for i, n := range messageStateNames {
		if n == s {
			return MessageState(i), nil
		}
	}
	return 0, fmt.Errorf("unknown message state %q", s)
}

// Settled reports whether the state is one of a message that left the
// queue.
func (s MessageState) Settled() bool { return s >= MessageDeadLettered }

// MessageInfo is what GetMessage tells about one message. Fields that do
// not apply to its state are zero.
type MessageInfo struct {
	Queue string
	Seq   uint64
	// ID is the message ID when the message was looked up by it ("" when
	// looked up by sequence: the engine does not keep IDs beside bodies).
	ID string
	// Key is the ordering key, when the message has one and is queued.
	Key   string
	State MessageState

	// Queued (ready, delayed, in flight):
	Priority   uint8
	Published  time.Time
	DeliverAt  time.Time // delayed: when it becomes ready
	Deliveries int       // deliveries that count towards MaxDeliveries
	// KeyWaiting: ready, but waiting behind another message of its key.
	KeyWaiting    bool
	LeaseDeadline time.Time // in flight
	// Holder is who holds the lease, as the server knows it (the client's
	// ID or address); "" embedded or when unknown.
	Holder    string
	LastError string // the last nack's error text
	// DeadLetter is set for a message in a dead-letter queue: where it
	// died and why.
	DeadLetter *DeadLetterInfo

	// Settled (dead-lettered, acked, expired, cancelled, purged, discarded,
	// redriven):
	SettledAt time.Time
	// Reason is why it was dead-lettered or discarded ("max-deliveries",
	// "expired", "overflow", "damaged").
	Reason string
	// MovedTo and MovedSeq are where it went: the dead-letter queue
	// (dead-lettered) or the source queue (redriven), and its new
	// sequence there.
	MovedTo  string
	MovedSeq uint64
}

// MaxCancel is the most messages one CancelMessages call names (more is
// ErrBatchTooLarge): they go into one journal record.
const MaxCancel = 10_000

// CancelResult is the outcome of cancelling one message.
type CancelResult struct {
	Ref MessageRef
	Seq uint64 // the message's sequence (0 when its ID is not remembered)
	// Cancelled is true when the message was removed.
	Cancelled bool
	// State is the message's state when it was not cancelled: in flight
	// (only ready and delayed messages can be cancelled), a settled
	// state, or unknown.
	State MessageState
	// Err is nil when Cancelled, else ErrMessageLeased (in flight) or
	// ErrMessageNotFound (settled or unknown).
	Err error
}

// CancelError is the error for a message that could not be cancelled in
// state s.
func CancelError(s MessageState) error {
	switch s {
	case MessageReady, MessageDelayed:
		return nil
	case MessageInFlight:
		return ErrMessageLeased
	}
	return ErrMessageNotFound
}

// MaxRedrive is the most messages one RedriveMessages call names (more is
// ErrBatchTooLarge): they go into one journal record.
const MaxRedrive = 10_000

// RedriveResult is the outcome of redriving one dead letter.
type RedriveResult struct {
	Ref MessageRef
	Seq uint64 // its sequence in the dead-letter queue (0 when its ID is not remembered)
	// Moved is true when the dead letter went back to its source queue.
	Moved bool
	// Queue is the queue it went back to (its source), when moved; when
	// not moved because of its source (ErrQueueNotFound, ErrQueueFull),
	// the source it would have gone to.
	Queue  string
	NewSeq uint64 // its sequence there, when moved
	// State is MessageRedriven when moved, else the message's state: in
	// flight, a settled state, or unknown; ready or delayed when it stayed
	// for its source's sake or is not a dead letter.
	State MessageState
	// Err is nil when Moved, else ErrMessageLeased (in flight),
	// ErrMessageNotFound (settled or unknown, or not a dead letter),
	// ErrQueueNotFound (its source is gone) or ErrQueueFull (its source
	// has no room).
	Err error
}
