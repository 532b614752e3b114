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
	// ID is a producer-chosen ID: a second publish with the same ID within
	// the de-dup window is not stored again.
	ID string
	// Key is an ordering key: messages with the same key are delivered one
	// at a time, in order.
	Key string
}

// PublishResult answers one published message.
type PublishResult struct {
	Seq       uint64 // the message's sequence number
	Duplicate bool   // its ID was seen within the window; Seq is the first copy's
}

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
	// Deliveries counts deliveries including this one.
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
