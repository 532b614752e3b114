// Package broker is chute's embeddable, durable message broker: queues with
// competing consumers, topics with filtered fan-out, delayed and priority
// delivery, leases, retries with back-off, dead-letter queues,
// de-duplication and ordering keys, kept in a journal on local disk.
//
// # Guarantees
//
// With the default sync policy (SyncAlways) a Publish, Ack or Nack returns
// only after its record is on disk: nothing confirmed is lost by a crash,
// and nothing acked comes back. Delivery is at-least-once: a message whose
// lease ends without an ack (the consumer crashed, or was too slow) is
// delivered again. Producer sessions and message IDs (de-duplication) and
// idempotent consumers give effectively-once processing.
//
// # The data path
//
//	Publish ─► validate ─► engine prepares a record ─► journal append ─► engine applies ─► wait for the group sync
//	Receive ◄─ engine: ready set by (priority, sequence) ◄─ delay timers ◄─ lease expiry
//	Ack/Nack ─► engine applies ─► journal append ─► wait for the group sync
//
// The engine (internal/engine) is a deterministic state machine changed
// only by records; the journal (internal/journal) stores them with group
// commit; Open replays it. See docs/ for the design and the on-disk format.
//
// # Embedding
//
//	b, err := broker.Open("data", nil) // "" for an in-memory broker
//	defer b.Close()
//	b.CreateQueue(ctx, "jobs", chute.QueueConfig{})
//	b.Publish(ctx, "jobs", chute.Message{Body: []byte("hello")})
//	ds, err := b.Receive(ctx, "jobs", chute.ReceiveOptions{Max: 10})
//	b.Ack(ctx, "jobs", ds[0].Receipt)
//
// *Broker and the network client (package client) both implement
// chute.API; the types it speaks of are package chute's.
package broker
