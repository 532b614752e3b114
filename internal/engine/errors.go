package engine

import (
	"errors"

	"github.com/chutemq/chute"
)

// The engine's errors are the public sentinels of package chute, so that
// callers test with errors.Is(err, chute.ErrX) wherever the error arose.
var (
	ErrQueueNotFound   = chute.ErrQueueNotFound
	ErrTopicNotFound   = chute.ErrTopicNotFound
	ErrNotFound        = chute.ErrNotFound
	ErrExists          = chute.ErrExists
	ErrInvalidName     = chute.ErrInvalidName
	ErrInvalidConfig   = chute.ErrInvalidConfig
	ErrInvalidMessage  = chute.ErrInvalidMessage
	ErrQueueFull       = chute.ErrQueueFull
	ErrInvalidReceipt  = chute.ErrInvalidReceipt
	ErrStaleReceipt    = chute.ErrStaleReceipt
	ErrNotSubscription = chute.ErrNotSubscription
	ErrOutOfOrder      = chute.ErrOutOfOrder
)

// ErrCorruptRecord: a record could not be decoded or does not fit the
// engine's state; during recovery this means the journal is damaged.
var ErrCorruptRecord = errors.New("corrupt record")
