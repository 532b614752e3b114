package engine

import (
	"fmt"
	"time"
)

// Defaults applied by QueueConfig.WithDefaults and TopicConfig.WithDefaults.
// Records always carry the normalised configuration, so changing a default
// here never changes what an old journal replays to.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxDeliveries     = 10
	DefaultBackoffDelay      = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffJitter     = 0.2
	DefaultDedupWindow       = 2 * time.Minute
	DeadLetterSuffix         = ".dlq"

	MaxVisibilityTimeout = 12 * time.Hour
	MaxMaxDeliveries     = 10000
	MaxDedupWindow       = 24 * time.Hour
	MaxTTL               = 365 * 24 * time.Hour
	MaxNameLen           = 200
	MaxPriority          = 9
	MaxIDLen             = 256
	MaxKeyLen            = 256
)

// BackoffKind selects how the delay before a retry grows.
type BackoffKind uint8

const (
	// BackoffExponential waits Delay, 2·Delay, 4·Delay … up to Max.
	BackoffExponential BackoffKind = iota
	// BackoffFixed waits Delay before every retry.
	BackoffFixed
	// BackoffNone retries at once.
	BackoffNone
)

func (k BackoffKind) String() string {
	switch k {
	case BackoffExponential:
		return "exponential"
	case BackoffFixed:
		return "fixed"
	case BackoffNone:
		return "none"
	}
	return fmt.Sprintf("backoff(%d)", uint8(k))
}

// Backoff is a queue's retry delay policy, used when a consumer nacks a
// message without naming a delay.
type Backoff struct {
	Kind BackoffKind
	// Delay is the first (exponential) or every (fixed) delay; 0 means 1s.
	Delay time.Duration
	// Max caps an exponential delay; 0 means 5 minutes.
	Max time.Duration
	// Jitter spreads each delay by ±Jitter·delay (0..1) so that retries of
	// messages that failed together do not return together; 0 means 0.2,
	// a negative value means no jitter.
	Jitter float64
}

// Overflow is what a queue does when a publish would exceed its depth limit.
type Overflow uint8

const (
	// OverflowReject refuses the publish with ErrQueueFull (the default).
	OverflowReject Overflow = iota
	// OverflowDropOldest moves the oldest ready messages to the dead-letter
	// queue (reason "overflow") to make room.
	OverflowDropOldest
)

func (o Overflow) String() string {
	switch o {
	case OverflowReject:
		return "reject"
	case OverflowDropOldest:
		return "drop-oldest"
	}
	return fmt.Sprintf("overflow(%d)", uint8(o))
}

// QueueConfig is a queue's configuration. The zero value is a working queue:
// 30 s visibility, 10 deliveries, exponential back-off, dead letters to
// "<name>.dlq", no depth limit, no TTL, 2-minute de-dup window.
type QueueConfig struct {
	// VisibilityTimeout is the lease a receive gets unless it asks for
	// another; 0 means 30 s.
	VisibilityTimeout time.Duration
	// MaxDeliveries is how many times a message is delivered before it is
	// dead-lettered; 0 means 10, a negative value means no limit.
	MaxDeliveries int
	// Backoff is the delay before redelivery after a nack without a delay.
	Backoff Backoff
	// DeadLetterQueue receives messages that used their deliveries, expired
	// (if DeadLetterExpired) or overflowed; "" means "<name>.dlq". It is
	// created when needed.
	DeadLetterQueue string
	// NoDeadLetter discards such messages instead (counted, not kept).
	NoDeadLetter bool
	// MaxMessages and MaxBytes bound the queue's depth (every message in the
	// queue: ready, delayed and in flight); 0 means no limit.
	MaxMessages int64
	MaxBytes    int64
	// Overflow is what happens at the limit: reject (default) or drop-oldest.
	Overflow Overflow
	// MessageTTL is the default time to live of a message, counted from its
	// publish; 0 means none. A message's own TTL wins over it.
	MessageTTL time.Duration
	// DeadLetterExpired moves expired messages to the dead-letter queue
	// instead of discarding them.
	DeadLetterExpired bool
	// DedupWindow is how long a producer ID is remembered; 0 means 2 minutes,
	// a negative value turns de-duplication off.
	DedupWindow time.Duration
}

// WithDefaults returns cfg with every zero field replaced by its default.
// name is the queue's own name (for the dead-letter queue's default name).
func (cfg QueueConfig) WithDefaults(name string) QueueConfig {
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if cfg.MaxDeliveries == 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	if cfg.MaxDeliveries < 0 {
		cfg.MaxDeliveries = -1
	}
	if cfg.Backoff.Delay == 0 {
		cfg.Backoff.Delay = DefaultBackoffDelay
	}
	if cfg.Backoff.Max == 0 {
		cfg.Backoff.Max = DefaultBackoffMax
	}
	if cfg.Backoff.Jitter == 0 {
		cfg.Backoff.Jitter = DefaultBackoffJitter
	}
	if cfg.Backoff.Jitter < 0 {
		cfg.Backoff.Jitter = -1
	}
	if cfg.NoDeadLetter {
		cfg.DeadLetterQueue = ""
		cfg.DeadLetterExpired = false
	} else if cfg.DeadLetterQueue == "" {
		cfg.DeadLetterQueue = name + DeadLetterSuffix
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.DedupWindow < 0 {
		cfg.DedupWindow = -1
	}
	return cfg
}

// Validate reports the first out-of-range field of a normalised config.
func (cfg QueueConfig) Validate(name string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case cfg.VisibilityTimeout < time.Millisecond || cfg.VisibilityTimeout > MaxVisibilityTimeout:
		return bad("visibility timeout %v outside 1ms..%v", cfg.VisibilityTimeout, MaxVisibilityTimeout)
	case cfg.MaxDeliveries > MaxMaxDeliveries:
		return bad("max deliveries %d above %d", cfg.MaxDeliveries, MaxMaxDeliveries)
	case cfg.Backoff.Kind > BackoffNone:
		return bad("unknown back-off kind %d", cfg.Backoff.Kind)
	case cfg.Backoff.Delay < 0 || cfg.Backoff.Max < 0 || cfg.Backoff.Delay > MaxTTL || cfg.Backoff.Max > MaxTTL:
		return bad("back-off delay %v / max %v out of range", cfg.Backoff.Delay, cfg.Backoff.Max)
	case cfg.Backoff.Jitter > 1:
		return bad("back-off jitter %v above 1", cfg.Backoff.Jitter)
	case cfg.MaxMessages < 0 || cfg.MaxBytes < 0:
		return bad("negative depth limit")
	case cfg.Overflow > OverflowDropOldest:
		return bad("unknown overflow policy %d", cfg.Overflow)
	case cfg.MessageTTL < 0 || cfg.MessageTTL > MaxTTL:
		return bad("message TTL %v out of range", cfg.MessageTTL)
	case cfg.DedupWindow > MaxDedupWindow:
		return bad("de-dup window %v above %v", cfg.DedupWindow, MaxDedupWindow)
	case cfg.DeadLetterQueue == name:
		return bad("a queue cannot be its own dead-letter queue")
	}
	if cfg.DeadLetterQueue != "" {
		if err := ValidateName(cfg.DeadLetterQueue); err != nil {
			return fmt.Errorf("dead-letter queue: %w", err)
		}
	}
	return nil
}

// TopicConfig is a topic's configuration; the zero value works.
type TopicConfig struct {
	// DedupWindow: as for queues; 0 means 2 minutes, negative turns it off.
	DedupWindow time.Duration
}

// WithDefaults returns cfg with its zero fields defaulted.
func (cfg TopicConfig) WithDefaults() TopicConfig {
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.DedupWindow < 0 {
		cfg.DedupWindow = -1
	}
	return cfg
}

// Validate reports an out-of-range field of a normalised topic config.
func (cfg TopicConfig) Validate() error {
	if cfg.DedupWindow > MaxDedupWindow {
		return fmt.Errorf("%w: de-dup window %v above %v", ErrInvalidConfig, cfg.DedupWindow, MaxDedupWindow)
	}
	return nil
}

// ValidateName checks a queue, topic or subscription name: 1–200 bytes of
// [A-Za-z0-9._-], not starting with '.' or '-'.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q must be 1..%d bytes", ErrInvalidName, name, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%w: %q: use letters, digits, '_', and '.' or '-' after the first byte", ErrInvalidName, name)
		}
	}
	return nil
}
