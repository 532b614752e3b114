package engine

import "errors"

// The engine's sentinel errors. The root package re-exports each of them
// under the same name, so callers test with errors.Is(err, chute.ErrX).
var (
	// ErrQueueNotFound: the named queue does not exist.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrTopicNotFound: the named topic does not exist.
	ErrTopicNotFound = errors.New("topic not found")
	// ErrNotFound: no queue or topic has this name (publish resolves both).
	ErrNotFound = errors.New("no queue or topic with this name")
	// ErrExists: a queue or topic with this name already exists (they share
	// one namespace, so that publish can address either by name).
	ErrExists = errors.New("name already in use")
	// ErrInvalidName: a queue, topic or subscription name is empty, too long
	// or uses characters outside [A-Za-z0-9._-].
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidConfig: a queue or topic configuration value is out of range.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrInvalidMessage: a message field is out of range (priority outside
	// 0–9, a negative TTL, an over-long producer ID or ordering key).
	ErrInvalidMessage = errors.New("invalid message")
	// ErrQueueFull: publishing would exceed a queue's maximum depth (messages
	// or bytes) and its overflow policy is reject. Nothing of the batch was
	// stored.
	ErrQueueFull = errors.New("queue full")
	// ErrInvalidReceipt: a receipt could not be parsed, or names another queue.
	ErrInvalidReceipt = errors.New("invalid receipt")
	// ErrStaleReceipt: the receipt's lease is over: the message was acked,
	// its lease expired (it may have been redelivered under a new receipt),
	// or it was dead-lettered, purged or deleted.
	ErrStaleReceipt = errors.New("stale receipt: the lease is no longer held")
	// ErrNotSubscription: the queue is not a subscription of that topic.
	ErrNotSubscription = errors.New("queue is not a subscription of this topic")
	// ErrCorruptRecord: a record could not be decoded or does not fit the
	// engine's state; during recovery this means the journal is damaged.
	ErrCorruptRecord = errors.New("corrupt record")
)
