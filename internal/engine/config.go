package engine

import "github.com/chutemq/chute"

// The configuration types are the public ones (package chute defines them,
// with their defaults, limits and validation); the engine names them
// without the prefix.
type (
	QueueConfig = chute.QueueConfig
	TopicConfig = chute.TopicConfig
	Backoff     = chute.Backoff
	BackoffKind = chute.BackoffKind
	Overflow    = chute.Overflow
	// Totals are a queue's cumulative counters.
	Totals      = chute.QueueTotals
	DeadReasons = chute.DeadReasons
)

const (
	BackoffExponential = chute.BackoffExponential
	BackoffFixed       = chute.BackoffFixed
	BackoffNone        = chute.BackoffNone
	OverflowReject     = chute.OverflowReject
	OverflowDropOldest = chute.OverflowDropOldest

	DefaultDedupWindow   = chute.DefaultDedupWindow
	DefaultSessionWindow = chute.DefaultSessionWindow
	None                 = chute.None
	SessionInFlight      = chute.SessionInFlight // batches per session whose results are remembered
	MaxSessions          = chute.MaxSessions
	MaxSessionLen        = chute.MaxSessionLen
	DeadLetterSuffix     = chute.DeadLetterSuffix
	MaxTTL               = chute.MaxTTL
	MaxVisibilityTimeout = chute.MaxVisibilityTimeout
	MaxNameLen           = chute.MaxNameLen
	MaxPriority          = chute.MaxPriority
	MaxIDLen             = chute.MaxIDLen
	MaxKeyLen            = chute.MaxKeyLen
)

// ValidateName checks a queue, topic or subscription name.
func ValidateName(name string) error { return chute.ValidateName(name) }
