// Package engine is chute's state machine: every queue, topic, subscription,
// ready set, delay, lease, ordering key, de-dup window and dead letter.
//
// It is deterministic and pure. State changes only by applying records
// (record.go), time is a value carried by each record or passed to Advance,
// and there are no goroutines, files, locks or clocks here. The broker
// serialises calls, journals the records the commands return, and replays
// them with Apply on start; the same records in the same order always give
// the same state, which is what makes recovery (and later replication) work.
//
// Costs: publish, receive, ack, nack and extend are O(log n) in the number
// of messages of the queue (O(1) for the common publish and receive);
// nothing walks a queue, except purge and delete, which visit each message
// once to release it.
//
// Memory: a ready message costs one 32-byte, pointer-free entry (fifo.go).
// Body, headers, message ID and ordering key are the message's blob, which
// the storage layer keeps (the journal) and the engine only locates. Extra
// tables are paid only by messages that need them: a TTL (expiry heap),
// an ordering key (key line), a delay (delay heap), a lease (lease map and
// heap), a nack error text, a dead letter's cause, a delivery handed back
// uncounted, a message ID (de-dup), and, for Lookup, being out of publish
// order (delayed, retried or waiting for its key: lookup.go). Producer
// sessions (de-dup without an entry per message) cost a fixed amount per
// producer (dedup.go); how messages left is remembered per queue up to a
// cap (settled.go).
package engine
