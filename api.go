package chute

import (
	"context"
	"time"

	"github.com/chutemq/chute/internal/engine"
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
	// TTL discards (or dead-letters, per the queue) the message if it has not
	// been acked this long after publish; 0 means the queue's default.
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
	Reason     string // "max-deliveries", "expired" or "overflow"
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

// QueueConfig configures a queue; the zero value works (see the fields).
type QueueConfig = engine.QueueConfig

// TopicConfig configures a topic; the zero value works.
type TopicConfig = engine.TopicConfig

// Backoff is a queue's retry delay policy.
type Backoff = engine.Backoff

// BackoffKind selects exponential, fixed or no back-off.
type BackoffKind = engine.BackoffKind

// Overflow is a queue's policy at its depth limit.
type Overflow = engine.Overflow

const (
	BackoffExponential = engine.BackoffExponential
	BackoffFixed       = engine.BackoffFixed
	BackoffNone        = engine.BackoffNone
	OverflowReject     = engine.OverflowReject
	OverflowDropOldest = engine.OverflowDropOldest
)

// SubscriptionConfig configures a topic subscription.
type SubscriptionConfig struct {
	// Filter: the subscription gets a message only if its headers include
	// every pair (exact match). Empty gets everything.
	Filter map[string]string
	// Queue configures the subscription's queue.
	Queue QueueConfig
}

// QueueTotals are a queue's cumulative counters.
type QueueTotals = engine.Totals

// QueueStats is a snapshot of a queue.
type QueueStats struct {
	Name   string
	Config QueueConfig
	Topic  string            // set when the queue is a subscription
	Filter map[string]string // the subscription's filter

	Ready, ReadyBytes       int64
	Delayed, DelayedBytes   int64
	InFlight, InFlightBytes int64
	DeadLetters             int64 // dead letters held (in a dead-letter queue)
	OrderingKeys            int64
	DedupIDs                int64
	// OldestAge is how long the longest-waiting ready message has waited
	// since it was published.
	OldestAge time.Duration
	Totals    QueueTotals
}

// Depth is every message in the queue: ready, delayed and in flight.
func (s QueueStats) Depth() int64 { return s.Ready + s.Delayed + s.InFlight }

// TopicStats is a snapshot of a topic.
type TopicStats struct {
	Name          string
	Config        TopicConfig
	Subscriptions []string
	DedupIDs      int64
	Published     int64
	Unrouted      int64 // published messages that matched no subscription
}
