// Package adapters connects the comparison workloads to each broker under
// test: one file per system (chute.go, nats.go; issue 11 adds Redis and
// RabbitMQ), each implementing System and Queue.
//
// The workloads (package workload) see only these interfaces, so a figure
// for one system and the ratio against chute come from the same code
// driving the same shape of load. An adapter uses the system's own client
// and its ordinary durable setup; whatever makes one system's figure not
// comparable to another's (NATS acking before it syncs, for instance)
// belongs in the adapter's doc comment and in docs/benchmarks.md.
package adapters

import (
	"context"
	"time"
)

// System is one broker under comparison, as the command line named it.
type System interface {
	// Name labels result lines: "chute embedded", "nats jetstream".
	Name() string
	// NewQueue creates a fresh, empty, durable destination for one run.
	// The caller deletes it with Queue.Delete.
	NewQueue(ctx context.Context, opts QueueOptions) (Queue, error)
}

// QueueOptions describe the load a queue is created for, for clients that
// must size themselves up front.
type QueueOptions struct {
	// Subscriptions > 0 makes a topic with that many subscriptions (fan-out:
	// each subscription receives every message); 0 a plain queue.
	Subscriptions int
	// InFlight is the most publishes the run keeps unconfirmed at once
	// (publishers, or the window of an async run); 0 means 1.
	InFlight int
}

// Queue is a destination for one run.
type Queue interface {
	Publisher
	// Fill stores n messages of size bytes the fastest way the system
	// offers, returning once all are confirmed (setup for memory
	// measurements, not a measured rate).
	Fill(ctx context.Context, n, size int) error
	// Len returns how many messages the queue holds, to check that every
	// confirmed publish was stored.
	Len(ctx context.Context) (int64, error)
	// Delete removes the queue, what it holds, and the resources NewQueue
	// took (connections, directories).
	Delete(ctx context.Context) error
}

// Publisher publishes one message at a time.
type Publisher interface {
	// Publish stores body and returns once the system has confirmed it
	// (durably per the system's configuration), or ctx ends.
	Publish(ctx context.Context, body []byte) error
}

// AsyncPublisher is implemented by queues whose client can keep many
// publishes in flight on one connection (NATS's fastest way to publish
// with acks). Workloads test for it with a type assertion.
type AsyncPublisher interface {
	// PublishAsync sends body and returns a Confirm to wait on; confirms
	// are waited in the order of the publishes.
	PublishAsync(ctx context.Context, body []byte) (Confirm, error)
}

// Confirm waits for one asynchronous publish to be confirmed.
type Confirm interface {
	Wait(ctx context.Context) error
}

// SyncCounter is implemented by queues that can see their journal (chute
// embedded), so that results show how many records each fsync carried.
type SyncCounter interface {
	// Syncs returns the journal's fsyncs and records written so far.
	Syncs() (syncs, records int64)
}

// ---- Issue 11: the comparison's shared shapes (contract; see
// docs/benchmarks.md "The comparison"). Every system implements Streams;
// the optional interfaces below it are tested with type assertions and a
// workload a system lacks is reported as "n/a" with the reason.

// Streams is a Queue (or a topic with subscriptions) driven the way the
// issue's comparison drives it: one Producer keeping up to a window of
// publishes unconfirmed, Consumers with a prefetch, acks in batches.
type Streams interface {
	Queue
	// NewProducer returns a producer on the queue (or topic) keeping at most
	// window publishes unconfirmed, through the system's usual client in its
	// usual asynchronous way (chute: client.Producer with its defaults).
	NewProducer(ctx context.Context, window int) (Producer, error)
	// NewConsumer returns a consumer of subscription sub (0 ≤ sub <
	// QueueOptions.Subscriptions; 0 for a plain queue) holding at most
	// prefetch unacked messages.
	NewConsumer(ctx context.Context, sub, prefetch int) (Consumer, error)
}

// Producer publishes asynchronously. Publish blocks while window publishes
// are unconfirmed; done is called exactly once per message, from any
// goroutine, when the system confirmed it (err nil) or failed it.
// Messages of one producer are confirmed in publish order or not, as the
// system does; done calls may come concurrently.
type Producer interface {
	Publish(ctx context.Context, body []byte, done func(error)) error
	// Flush waits until every publish so far is confirmed or failed.
	Flush(ctx context.Context) error
	Close() error
}

// Consumer receives and acks. Receive returns what has arrived (at least
// one message), waiting at most wait for the first; none and no error when
// wait passes. Ack acknowledges messages this consumer received (the
// system's batched ack where it has one).
type Consumer interface {
	Receive(ctx context.Context, wait time.Duration) ([]Message, error)
	Ack(ctx context.Context, msgs []Message) error
	Close() error
}

// Message is one received message; Handle is the adapter's own (receipt,
// delivery tag, stream ID).
type Message struct {
	Body   []byte
	Handle any
}

// DelayPublisher is implemented by systems with per-message delays and
// priorities (chute): the delayed-burst and priority workloads need it.
type DelayPublisher interface {
	// PublishMany publishes msgs as one confirmed batch.
	PublishMany(ctx context.Context, msgs []DelayedMessage) error
}

// DelayedMessage is a body with a delay before it may be delivered and a
// priority (0–9, higher first).
type DelayedMessage struct {
	Body     []byte
	Delay    time.Duration
	Priority int
}

// Server is implemented by Systems running as a separate process: the
// memory and disk workloads read them.
type Server interface {
	// PID is the server's process id (RSS from /proc/PID).
	PID() int
	// DataDir is where the server keeps its data (disk-usage figures).
	DataDir() string
	// Durability says whether the server fsyncs before it confirms, in a
	// few words for the results table ("fsync before confirm",
	// "no fsync before ack (sync_interval 2m)").
	Durability() string
}
