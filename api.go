package chute

import (
	"context"
	"time"
)

// API is what an application uses: the embedded *Broker and the network
// *client.Client both satisfy it, so the same code (and the same tests) run
// in-process or against a server.
type API interface {
	// Publish stores messages on a queue, or on every matching subscription
	// of a topic, as one atomic batch, and returns once they are durable.
	Publish(ctx context.Context, target string, msgs ...Message) ([]PublishResult, error)
	// Receive leases up to opts.Max ready messages, waiting until at least
	// one is ready, opts.Wait passes (then it returns none), or ctx ends.
	Receive(ctx context.Context, queue string, opts ReceiveOptions) ([]Delivery, error)
	// Ack settles deliveries: the messages are done. An error is a
	// *ReceiptErrors listing the receipts that failed; the others succeeded.
	Ack(ctx context.Context, queue string, receipts ...string) error
	// Nack returns deliveries for redelivery (after a delay or the queue's
	// back-off), or to the dead-letter queue when their deliveries are used.
	Nack(ctx context.Context, queue string, nacks ...Nack) error
	// Extend moves the deadline of leases to lease from now (0: the queue's
	// visibility timeout).
	Extend(ctx context.Context, queue string, lease time.Duration, receipts ...string) error
	// Peek returns up to max ready messages in delivery order without
	// leasing them (receipts are empty).
	Peek(ctx context.Context, queue string, max int) ([]Delivery, error)
	// Commit applies a transaction atomically (see Tx): its publishes,
	// acks and nacks all take effect, in one journal record, or none do.
	// Stale receipts fail it with a *StaleReceiptsError listing them, and
	// names of more than one placement group with ErrCrossGroup. A retry
	// with the ID of a committed transaction returns its original result.
	Commit(ctx context.Context, tx Tx) (TxResult, error)

	CreateQueue(ctx context.Context, name string, cfg QueueConfig) error
	UpdateQueue(ctx context.Context, name string, cfg QueueConfig) error
	DeleteQueue(ctx context.Context, name string) error
	// PurgeQueue removes every message of a queue and returns how many.
	PurgeQueue(ctx context.Context, name string) (int64, error)
	QueueStats(ctx context.Context, name string) (QueueStats, error)
	Queues(ctx context.Context) ([]QueueStats, error)

	CreateTopic(ctx context.Context, name string, cfg TopicConfig) error
	DeleteTopic(ctx context.Context, name string) error
	Topics(ctx context.Context) ([]TopicStats, error)
	// Subscribe creates queue name as a subscription of topic.
	Subscribe(ctx context.Context, topic, name string, sub SubscriptionConfig) error
	// Unsubscribe deletes the subscription and its queue.
	Unsubscribe(ctx context.Context, topic, name string) error

	// Redrive moves up to max (all if max ≤ 0) dead letters of a
	// dead-letter queue back to the queues they died in.
	Redrive(ctx context.Context, deadLetterQueue string, max int64) (int64, error)

	// PauseQueue stops deliveries of a queue, any queue, until
	// ResumeQueue: receivers get nothing from it (they wait), publishes
	// are still accepted, leases already held continue and can be acked,
	// and withheld messages do not use up their deliveries. The pause is
	// a record: it survives a restart. Pausing a paused queue does
	// nothing.
	PauseQueue(ctx context.Context, name string) error
	// ResumeQueue clears a pause, and also closes the queue's circuit
	// breaker if it is open or half-open (QueueConfig.Breaker): the
	// operator's word that the downstream is back. Resuming a running
	// queue does nothing.
	ResumeQueue(ctx context.Context, name string) error

	// GetMessage looks up one message of a queue by sequence or message ID
	// without taking a delivery: queued (ready, delayed, in flight) or,
	// for QueueConfig.SettledWindow after it left, how it left. A message
	// the queue does not know (or no longer remembers) is
	// ErrMessageNotFound.
	GetMessage(ctx context.Context, queue string, ref MessageRef) (MessageInfo, error)
	// CancelMessages removes ready and delayed messages from a queue, in
	// one journal record; they are settled as cancelled. Each ref gets a
	// result: in flight ones fail with ErrMessageLeased, settled or
	// unknown ones with ErrMessageNotFound. The error is for the call as a
	// whole (queue not found, invalid ref).
	CancelMessages(ctx context.Context, queue string, refs ...MessageRef) ([]CancelResult, error)
	// RedriveMessages moves chosen dead letters of a dead-letter queue
	// back to their source queues (DeadLetterInfo.Source), in one journal
	// record; they are settled as redriven there. A dead letter is named
	// by its sequence in the dead-letter queue, or by its message ID while
	// its source queue remembers the ID. Only ready and delayed
	// dead letters move, in the order named. Each ref gets a result: in
	// flight ones fail with ErrMessageLeased; settled, unknown ones and
	// messages that are not dead letters with ErrMessageNotFound; one
	// whose source queue is gone with ErrQueueNotFound, or has no room
	// with ErrQueueFull (those stay). The error is for the call as a whole
	// (queue not found, invalid ref, more than MaxRedrive refs).
	RedriveMessages(ctx context.Context, deadLetterQueue string, refs ...MessageRef) ([]RedriveResult, error)

	// CreateSchedule creates a periodic schedule (ScheduleConfig;
	// docs/schedules.md): ErrExists if the name is in use (delete it to
	// replace it), ErrInvalidConfig for a bad spec or message.
	CreateSchedule(ctx context.Context, name string, cfg ScheduleConfig) error
	// DeleteSchedule deletes a schedule; the messages it published stay.
	DeleteSchedule(ctx context.Context, name string) error
	// PauseSchedule stops a schedule from firing until ResumeSchedule;
	// on resume, the slots that fell during the pause follow its missed
	// policy. Unknown names are ErrScheduleNotFound.
	PauseSchedule(ctx context.Context, name string) error
	ResumeSchedule(ctx context.Context, name string) error
	// Schedules returns every schedule, sorted by name, with its last and
	// next slots.
	Schedules(ctx context.Context) ([]ScheduleInfo, error)

	Close() error
}

// Message is one message to publish.
type Message struct {
	Body    []byte
	Headers map[string]string
	// Priority is 0 (default, lowest) to 9 (highest).
	Priority int
	// Delay holds the message back for this long; DeliverAt, if later,
	// wins.
	Delay     time.Duration
	DeliverAt time.Time
	// TTL is how long after its publish the message may still be
	// delivered; 0 means the queue's MessageTTL (see QueueConfig.MessageTTL
	// for what happens at expiry, and to a message leased at that moment).
	TTL time.Duration
	// ID is a message ID, chosen by the application as a business key
	// ("order-1234 paid"): a second publish with the same message ID within
	// the de-dup window (QueueConfig.DedupWindow) is not stored again.
	// Every message ID is remembered for the whole window, so the cost
	// grows with the messages published; to make retries safe, use a
	// producer session instead (Session, SessionSeq; client.Producer does
	// by default).
	ID string
	// Key is an ordering key: messages with the same key are delivered one
	// at a time, in order.
	Key string
	// Session and SessionSeq number the message in a producer session
	// (idempotent publishing, as with Kafka's idempotent producer): a
	// producer picks a session ID (1..MaxSessionLen bytes, say 16 random
	// bytes) and numbers its messages 1, 2, 3, … in publish order. Per
	// queue or topic and session the broker remembers only the highest
	// number stored and the results of the last SessionInFlight batches,
	// so a retried batch is answered with its first answer (Duplicate set)
	// instead of being stored twice, at a cost that does not grow with
	// the messages. The messages of one publish name the same session with
	// consecutive numbers. A batch must start at most one past the highest
	// number stored (at 1 for a session the broker does not know, or has
	// forgotten after QueueConfig.SessionWindow): one that leaves a gap is
	// refused with ErrOutOfOrder (an earlier batch is missing: resend from
	// it); messages at or below the highest number are duplicates. Empty:
	// no session.
	Session    string
	SessionSeq uint64
}

// PublishResult answers one published message.
type PublishResult struct {
	// Seq is the message's sequence number; for a duplicate, the first
	// copy's (0 for a session duplicate older than the results the broker
	// keeps: it was stored, under a sequence no longer remembered).
	Seq uint64
	// Duplicate: the message was stored before (its message ID was seen
	// within the de-dup window, or its session number was already
	// stored), and is not stored again.
	Duplicate bool
}

// Producer sessions (see Message.Session).
const (
	// MaxSessionLen bounds a session ID.
	MaxSessionLen = 64
	// SessionInFlight is how many of a session's latest batches the
	// broker remembers the results of: a producer that keeps at most this
	// many batches unconfirmed always gets a retried batch answered with
	// its original sequence numbers.
	SessionInFlight = 5
	// MaxSessions bounds the sessions remembered per queue or topic: beyond
	// it the least recently used one is forgotten early (counted in
	// QueueTotals.DedupForgotten), and its producer's next batch, refused
	// with ErrOutOfOrder, starts a new session.
	MaxSessions = 100_000
)

// ReceiveOptions tune a receive.
type ReceiveOptions struct {
	// Max is the most messages to return; 0 means 1.
	Max int
	// Lease is how long the messages are leased; 0 means the queue's
	// visibility timeout.
	Lease time.Duration
	// Wait bounds how long to wait for a message; 0 waits until ctx ends,
	// a negative value does not wait.
	Wait time.Duration
}

// Delivery is a received (leased) message.
type Delivery struct {
	Queue    string
	Seq      uint64
	Receipt  string // names this lease for Ack, Nack and Extend
	Body     []byte
	Headers  map[string]string
	Priority int
	ID       string
	Key      string
	// Published is when the message was published.
	Published time.Time
	// Deliveries counts deliveries including this one — those that count
	// towards MaxDeliveries: a delivery handed back unstarted
	// (Nack.Unstarted) or returned by a graceful shutdown does not.
	Deliveries int
	// LeaseDeadline is when the lease ends unless extended.
	LeaseDeadline time.Time
	// LastError is the error text of the last nack, if any.
	LastError string
	// DeadLetter is set for a message in a dead-letter queue. The same facts
	// are in Headers under the "chute-dead-" names, for clients that only
	// see headers.
	DeadLetter *DeadLetterInfo
}

// DeadLetterInfo says where and why a dead letter died.
type DeadLetterInfo struct {
	Source     string
	Reason     string // "max-deliveries", "expired", "overflow" or "damaged" (see chute serve --salvage)
	Deliveries int
	LastError  string
	Died       time.Time
	SourceSeq  uint64
}

// Header names of dead-letter facts on a delivered dead letter.
const (
	HeaderDeadSource     = "chute-dead-source"
	HeaderDeadReason     = "chute-dead-reason"
	HeaderDeadDeliveries = "chute-dead-deliveries"
	HeaderDeadError      = "chute-dead-error"
	HeaderDeadAt         = "chute-dead-at"
	HeaderDeadSeq        = "chute-dead-seq"
)

// Nack is one negative acknowledgement.
type Nack struct {
	Receipt string
	// Delay before redelivery: 0 uses the queue's back-off, a negative
	// value redelivers at once.
	Delay time.Duration
	// Error is kept as the message's last error (and shown on its dead
	// letter).
	Error string
	// Unstarted hands back a delivery the consumer never began to process
	// (prefetched, then returned on shutdown or while its circuit breaker
	// is open): it is ready again at once (Delay and Error are ignored),
	// and this delivery does not count towards MaxDeliveries (it is
	// counted in QueueTotals.Returned instead).
	Unstarted bool
}

// Optional capabilities. An API may also implement these (the embedded
// broker does; the network client does not); callers test for them with a
// type assertion, as with io.WriterTo, and fall back to the API.

// AsyncPublisher separates storing a publish from waiting for it to be
// durable, so that a producer can keep many publishes in flight in order.
type AsyncPublisher interface {
	// PublishAsync validates and stores msgs, in call order, and returns
	// before they are durable; Pending.Wait confirms them.
	PublishAsync(ctx context.Context, target string, msgs ...Message) (Pending, error)
}

// Pending is a publish that is stored but perhaps not yet durable.
type Pending interface {
	// Wait returns the results once the publish is durable (per the sync
	// policy). Until it returns nil the publish is not confirmed.
	Wait(ctx context.Context) ([]PublishResult, error)
}

// AsyncReceiver separates taking deliveries from waiting for their
// delivery records to be written, so that a server can receive the next
// batch while one is being written.
type AsyncReceiver interface {
	// ReceiveAsync is Receive whose deliveries may be handed out only once
	// wait returns nil.
	ReceiveAsync(ctx context.Context, queue string, opts ReceiveOptions) (ds []Delivery, wait func(context.Context) error, err error)
}

// HealthReporter says whether an API can take calls.
type HealthReporter interface {
	// Healthy returns nil, ErrClosed, or the error that made the broker
	// fail closed (a journal write or sync error).
	Healthy() error
}
