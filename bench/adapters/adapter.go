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

import "context"

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
