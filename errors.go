package chute

import (
	"errors"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
)

// Errors returned by the broker (and, over the network, by the client,
// which maps status codes back to these values). Test with errors.Is.
var (
	// ErrQueueNotFound: the named queue does not exist.
	ErrQueueNotFound = engine.ErrQueueNotFound
	// ErrTopicNotFound: the named topic does not exist.
	ErrTopicNotFound = engine.ErrTopicNotFound
	// ErrNotFound: a publish named neither a queue nor a topic.
	ErrNotFound = engine.ErrNotFound
	// ErrExists: a queue or topic of that name exists (one namespace).
	ErrExists = engine.ErrExists
	// ErrInvalidName: a name is empty, longer than 200 bytes, or not made
	// of [A-Za-z0-9._-] (not starting with '.' or '-').
	ErrInvalidName = engine.ErrInvalidName
	// ErrInvalidConfig: a queue or topic setting is out of range.
	ErrInvalidConfig = engine.ErrInvalidConfig
	// ErrInvalidMessage: a message field is out of range: priority outside
	// 0–9, a negative delay or TTL, an over-long ID, key or header, too
	// many headers.
	ErrInvalidMessage = engine.ErrInvalidMessage
	// ErrQueueFull: a publish would exceed a queue's depth limit (and its
	// overflow policy is reject, or nothing could be dropped). Nothing of
	// the batch was stored.
	ErrQueueFull = engine.ErrQueueFull
	// ErrStaleReceipt: the lease of that receipt is over (acked, expired and
	// perhaps redelivered, dead-lettered, purged).
	ErrStaleReceipt = engine.ErrStaleReceipt
	// ErrInvalidReceipt: a receipt is malformed or belongs to another queue.
	ErrInvalidReceipt = engine.ErrInvalidReceipt
	// ErrNotSubscription: the queue is not a subscription of that topic.
	ErrNotSubscription = engine.ErrNotSubscription
	// ErrMessageTooLarge: a message (body, headers, ID and key) is larger
	// than Options.MaxMessageSize.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrBatchTooLarge: a call names more messages or receipts than
	// Options.MaxBatch.
	ErrBatchTooLarge = errors.New("batch too large")
	// ErrClosed: the broker is closed (or closing).
	ErrClosed = errors.New("broker closed")
	// ErrJournalCorrupt: Open found damage in the journal that is not a
	// torn tail; errors.As with *CorruptionError gives file and offset.
	ErrJournalCorrupt = errors.New("journal corrupt")
)

// CorruptionError names the file, offset and reason of journal damage.
type CorruptionError = journal.CorruptionError
