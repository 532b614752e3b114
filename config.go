package chute

import (
	"fmt"
	"math"
	"time"

	"github.com/chutemq/chute/internal/text"
)

// None: one rule for every numeric field of QueueConfig, TopicConfig and
// Backoff. 0 means "the default" (each field says
// which); a negative value — write None — means "none": no limit, no TTL,
// no jitter, no de-duplication. The effective configuration a queue reports
// (QueueStats.Config) has every default filled in, so a 0 never appears
// there in a field where 0 means "default", and "none" is always None (-1),
// in the API, the CLI's --json output and the Connect/JSON API alike.
const None = -1

// Defaults that QueueConfig.WithDefaults and TopicConfig.WithDefaults fill
// in. Records always carry the normalised configuration, so changing a
// default here never changes what an old journal replays to.
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxDeliveries     = 10
	DefaultBackoffDelay      = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffJitter     = 0.2
	DefaultDedupWindow       = 2 * time.Minute
	DefaultMaxDedupIDs       = 1_000_000
	// DefaultSessionWindow is how long a producer session is remembered
	// after its last publish. A producer retries a batch for well under a
	// minute (client.Producer: 20 attempts, at most 2 s apart), so an hour
	// is ample for retries; what it buys beyond that is that a producer
	// idle for less than an hour keeps its session (one idle for longer
	// is refused once with ErrOutOfOrder and starts a new one). A session
	// costs about 350 bytes, whatever it published: MaxSessions bounds
	// what producers that come and go can pile up (Kafka learnt that the
	// hard way: KIP-854, KIP-936).
	DefaultSessionWindow = time.Hour
	// DeadLetterSuffix names a queue's default dead-letter queue:
	// "jobs" dead-letters into "jobs.dlq".
	DeadLetterSuffix = ".dlq"
)

// Limits on configuration and message fields.
const (
	MaxVisibilityTimeout = 12 * time.Hour
	MaxMaxDeliveries     = 10000
	MaxDedupWindow       = 24 * time.Hour
	MaxSessionWindow     = 24 * time.Hour
	// MaxTTL bounds message TTLs, back-off delays and, measured from the
	// publish, delays.
	MaxTTL = 365 * 24 * time.Hour
	// MaxNameLen bounds queue, topic and subscription names. A default
	// dead-letter queue name (the queue's name and DeadLetterSuffix) may
	// be longer by the suffix.
	MaxNameLen  = 200
	MaxPriority = 9
	MaxIDLen    = 256
	MaxKeyLen   = 256
)

// BackoffKind selects how the delay before a retry grows.
type BackoffKind uint8

const (
	// BackoffExponential waits Delay, 2·Delay, 4·Delay … up to Max (the
	// default).
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

// ParseBackoffKind is the inverse of BackoffKind.String.
func ParseBackoffKind(s string) (BackoffKind, error) {
	for k := BackoffExponential; k <= BackoffNone; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: back-off %q: want exponential, fixed or none", ErrInvalidConfig, s)
}

// Backoff is a queue's retry delay policy, used when a consumer nacks a
// message without naming a delay. The zero value is exponential from 1 s
// to 5 minutes with ±20% jitter.
type Backoff struct {
	// Kind is exponential (default), fixed or none.
	Kind BackoffKind
	// Delay is the first (exponential) or every (fixed) delay; 0 means 1 s.
	Delay time.Duration
	// Max caps an exponential delay; 0 means 5 minutes.
	Max time.Duration
	// Jitter spreads each delay by ±Jitter·delay, a fraction in (0, 1], so
	// that retries of messages that failed together do not return
	// together; 0 means 0.2, None means no jitter.
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

// ParseOverflow is the inverse of Overflow.String.
func ParseOverflow(s string) (Overflow, error) {
	for o := OverflowReject; o <= OverflowDropOldest; o++ {
		if o.String() == s {
			return o, nil
		}
	}
	return 0, fmt.Errorf("%w: overflow %q: want reject or drop-oldest", ErrInvalidConfig, s)
}

// Compression is how a queue stores message bodies at rest (issue 11).
// The journal is the broker's disk use, and a backlog's bodies dominate
// it; compressing them trades CPU on publish and on every delivery for
// disk bytes, so it is chosen per queue: only the owner of a queue knows
// whether its bodies compress (JSON, logs) or not (images, ciphertext).
// The wire has its own compression (client.WithCompression); the two are
// independent.
type Compression uint8

const (
	// CompressionNone stores bodies as published (the default).
	CompressionNone Compression = iota
	// CompressionZstd stores each body of at least CompressMin bytes
	// zstd-compressed (the fastest level), when that makes it smaller by
	// at least a sixteenth; otherwise as published. Consumers always get
	// the body as published.
	CompressionZstd
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// ParseCompression is the inverse of Compression.String; "" is none.
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "", "none":
		return CompressionNone, nil
	case "zstd":
		return CompressionZstd, nil
	}
	return 0, fmt.Errorf("%w: compression %q: want none or zstd", ErrInvalidConfig, s)
}

// DefaultCompressMin is QueueConfig.CompressMin's default: below about
// half a kilobyte zstd's frame (about a dozen bytes) and the lack of
// repetition inside one small body leave little to save, and every
// compressed body costs a decompression on each delivery.
const DefaultCompressMin = 512

// MaxCompressMin bounds QueueConfig.CompressMin: the largest message a
// broker accepts (broker.Options.MaxMessageSize is at most 64 MiB).
const MaxCompressMin = 64 << 20

// QueueConfig is a queue's configuration. The zero value is a working
// queue: 30 s visibility, 10 deliveries, exponential back-off from 1 s to
// 5 minutes, dead letters to "<name>.dlq", no depth limit, no TTL, a
// 2-minute de-dup window for message IDs (at most 1,000,000 of them) and
// producer sessions remembered for an hour. In every numeric field 0 means the default and
// None (any negative value) means none.
type QueueConfig struct {
	// VisibilityTimeout is the lease a receive gets unless it asks for
	// another; 0 means 30 s. At most 12 h.
	VisibilityTimeout time.Duration
	// MaxDeliveries is how many times a message is delivered before it is
	// dead-lettered; 0 means 10, None means no limit. At most 10,000.
	MaxDeliveries int
	// Backoff is the delay before redelivery after a nack without a delay.
	Backoff Backoff
	// DeadLetterQueue receives messages that used their deliveries, expired
	// (if DeadLetterExpired) or overflowed; "" means "<name>.dlq". It is an
	// ordinary queue, created with this one if it does not exist (so that
	// its consumers can start first; the CLI's listings hide it while
	// nothing has died into it), or beforehand with a configuration of its
	// own. It cannot be deleted while a queue dead-letters into it.
	DeadLetterQueue string
	// NoDeadLetter discards such messages instead (counted, not kept).
	NoDeadLetter bool
	// MaxMessages and MaxBytes bound the queue's depth (every message in the
	// queue: ready, delayed and in flight; bytes are bodies, headers, ID
	// and key); 0 or None means no limit.
	MaxMessages int64
	MaxBytes    int64
	// Overflow is what happens at the limit: reject (default) or drop-oldest.
	Overflow Overflow
	// MessageTTL is the default time to live of a message, counted from its
	// publish; 0 or None means none. A message's own TTL wins over it.
	// A message that is waiting (ready or delayed) when its TTL passes is
	// discarded, or dead-lettered with DeadLetterExpired. A message that
	// is leased when its TTL passes is not taken from its consumer: it can
	// still be acked, but if its lease ends without an ack it expires then
	// instead of being delivered again.
	MessageTTL time.Duration
	// DeadLetterExpired moves expired messages to the dead-letter queue
	// instead of discarding them.
	DeadLetterExpired bool
	// DedupWindow is how long a message ID is remembered; 0 means 2
	// minutes, None turns de-duplication by message ID off. At most 24 h.
	DedupWindow time.Duration
	// MaxDedupIDs caps the message IDs remembered: beyond it the oldest
	// are forgotten before their window ends (counted in
	// QueueTotals.DedupForgotten), so that a flood of IDs cannot exhaust
	// memory (each costs about 100 bytes); 0 means 1,000,000, None means
	// no cap.
	MaxDedupIDs int64
	// SessionWindow is how long a producer session (Message.Session) is
	// remembered after its last publish; 0 means 1 hour, None turns
	// de-duplication by session off (session numbers are then ignored).
	// At most 24 h.
	SessionWindow time.Duration
	// Group is the queue's placement group: a transaction (Tx) may touch
	// only queues and topics of one group. "" means the queue is a group
	// of its own (a topic's subscriptions belong to the topic's group, and
	// a queue's dead-letter queue to the queue's). Set at creation; it
	// cannot change.
	Group string
	// Breaker is the queue's server-side circuit breaker (off by default).
	Breaker Breaker
	// Attributes are free-form labels (at most MaxAttributes, keys of at
	// most 64 bytes, values of at most 256). The broker reads the ones
	// starting with "alert." as per-queue alert rule overrides (see
	// docs/operations.md); the rest are the user's.
	Attributes map[string]string
	// SettledWindow is how long the queue remembers how a message left
	// (acked, expired, cancelled, purged, dead-lettered: GetMessage); 0
	// means the DedupWindow (2 minutes if de-duplication is off), None
	// turns the memory off. At most 24 h.
	SettledWindow time.Duration
	// MaxSettled caps the settled messages remembered (the oldest are
	// forgotten first, even inside the window); each costs about 82
	// bytes of memory, so the default, 10,000, bounds a queue's memory of
	// them at about 0.8 MB (the whole 2-minute default window up to 83
	// settlements a second; a busier queue remembers its latest 10,000).
	// 0 means 10,000, None means no cap.
	MaxSettled int64
	// Compression is how bodies are stored: CompressionNone (the default)
	// or CompressionZstd. A change applies to later publishes; messages
	// already stored stay as they are, and every stored form is read
	// back the same. Depth in bytes (MaxBytes, the stats' byte counts)
	// counts bodies as stored. A topic's message is stored once for all
	// its subscriptions: it is compressed if any subscription it is
	// published to asks for it (docs/format.md, Compression at rest).
	Compression Compression
	// CompressMin is the smallest body that is compressed, in bytes; 0
	// means 512, None means every body. Used only with CompressionZstd.
	// At most 64 MiB.
	CompressMin int64
}

// DefaultMaxSettled is QueueConfig.MaxSettled's default.
const DefaultMaxSettled = 10_000

// Limits on queue attributes.
const (
	MaxAttributes      = 32
	MaxAttributeKeyLen = 64
	MaxAttributeValLen = 256
)

// Defaults of the circuit breaker's fields.
const (
	DefaultBreakerThreshold     = 0.5
	DefaultBreakerWindow        = time.Minute
	DefaultBreakerMinDeliveries = 20
	DefaultBreakerCooldown      = 30 * time.Second
	DefaultBreakerProbes        = 3
)

// Breaker configures a queue's circuit breaker. When it is enabled and the
// share of failed deliveries (nacks and lease expiries) among the
// deliveries settled over the last Window reaches Threshold (with at least
// MinDeliveries settled), the breaker opens: the broker stops delivering
// the queue's messages (publishes are still accepted, and withheld
// messages do not use up their deliveries). After Cooldown it lets Probes
// deliveries through (half-open); if they all succeed it closes, if one
// fails it opens again. Numeric fields: 0 means the default.
type Breaker struct {
	// Enabled turns the breaker on.
	Enabled bool
	// Threshold is the failed share that opens it, in (0, 1]; 0 means 0.5.
	Threshold float64
	// Window is the sliding window of the failure share; 0 means 1 minute.
	Window time.Duration
	// MinDeliveries is how many settled deliveries the window needs before
	// the share counts; 0 means 20.
	MinDeliveries int
	// Cooldown is how long it stays open before probing; 0 means 30 s.
	Cooldown time.Duration
	// Probes is how many deliveries half-open lets through; 0 means 3.
	Probes int
}

// WithDefaults returns b with its defaults filled in (a disabled breaker
// keeps its zero values).
func (b Breaker) WithDefaults() Breaker {
	if !b.Enabled {
		return Breaker{}
	}
	if b.Threshold == 0 {
		b.Threshold = DefaultBreakerThreshold
	}
	b.Window = orDefault(b.Window, DefaultBreakerWindow)
	b.MinDeliveries = orDefault(b.MinDeliveries, DefaultBreakerMinDeliveries)
	b.Cooldown = orDefault(b.Cooldown, DefaultBreakerCooldown)
	b.Probes = orDefault(b.Probes, DefaultBreakerProbes)
	return b
}

// Validate reports an out-of-range field of a normalised breaker.
func (b Breaker) Validate() error {
	if !b.Enabled {
		return nil
	}
	switch {
	case math.IsNaN(b.Threshold) || b.Threshold <= 0 || b.Threshold > 1:
		return fmt.Errorf("%w: breaker threshold %v: want a fraction in (0, 1]", ErrInvalidConfig, b.Threshold)
	case b.Window < time.Second || b.Window > time.Hour:
		return fmt.Errorf("%w: breaker window %v outside 1s..1h", ErrInvalidConfig, b.Window)
	case b.MinDeliveries < 1 || b.MinDeliveries > 1_000_000:
		return fmt.Errorf("%w: breaker min deliveries %d outside 1..1000000", ErrInvalidConfig, b.MinDeliveries)
	case b.Cooldown < time.Millisecond || b.Cooldown > time.Hour:
		return fmt.Errorf("%w: breaker cooldown %v outside 1ms..1h", ErrInvalidConfig, b.Cooldown)
	case b.Probes < 1 || b.Probes > 1000:
		return fmt.Errorf("%w: breaker probes %d outside 1..1000", ErrInvalidConfig, b.Probes)
	}
	return nil
}

// ValidateAttributes checks queue attributes against the limits above.
func ValidateAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return fmt.Errorf("%w: %d attributes (at most %d)", ErrInvalidConfig, len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		if k == "" || len(k) > MaxAttributeKeyLen {
			return fmt.Errorf("%w: attribute key %s must be 1..%d bytes", ErrInvalidConfig, text.Quote(k), MaxAttributeKeyLen)
		}
		if len(v) > MaxAttributeValLen {
			return fmt.Errorf("%w: attribute %s: value longer than %d bytes", ErrInvalidConfig, text.Quote(k), MaxAttributeValLen)
		}
	}
	return nil
}

// WithDefaults returns cfg with every default filled in and every "none"
// written as None. name is the queue's own name (for the dead-letter
// queue's default name).
func (cfg QueueConfig) WithDefaults(name string) QueueConfig {
	cfg.VisibilityTimeout = orDefault(cfg.VisibilityTimeout, DefaultVisibilityTimeout)
	cfg.MaxDeliveries = orDefault(cfg.MaxDeliveries, DefaultMaxDeliveries)
	cfg.Backoff.Delay = orDefault(cfg.Backoff.Delay, DefaultBackoffDelay)
	cfg.Backoff.Max = orDefault(cfg.Backoff.Max, DefaultBackoffMax)
	if cfg.Backoff.Jitter == 0 {
		cfg.Backoff.Jitter = DefaultBackoffJitter
	}
	if cfg.Backoff.Jitter < 0 {
		cfg.Backoff.Jitter = None
	}
	if cfg.NoDeadLetter {
		cfg.DeadLetterQueue = ""
		cfg.DeadLetterExpired = false
	} else if cfg.DeadLetterQueue == "" {
		cfg.DeadLetterQueue = name + DeadLetterSuffix
	}
	cfg.MaxMessages = orDefault(cfg.MaxMessages, None)
	cfg.MaxBytes = orDefault(cfg.MaxBytes, None)
	cfg.MessageTTL = orDefault(cfg.MessageTTL, None)
	cfg.DedupWindow = orDefault(cfg.DedupWindow, DefaultDedupWindow)
	cfg.MaxDedupIDs = orDefault(cfg.MaxDedupIDs, DefaultMaxDedupIDs)
	cfg.SessionWindow = orDefault(cfg.SessionWindow, DefaultSessionWindow)
	cfg.Breaker = cfg.Breaker.WithDefaults()
	if cfg.SettledWindow == 0 {
		cfg.SettledWindow = cfg.DedupWindow
		if cfg.SettledWindow < 0 {
			cfg.SettledWindow = DefaultDedupWindow
		}
	}
	cfg.SettledWindow = orDefault(cfg.SettledWindow, DefaultDedupWindow)
	cfg.MaxSettled = orDefault(cfg.MaxSettled, DefaultMaxSettled)
	if len(cfg.Attributes) == 0 {
		cfg.Attributes = nil
	}
	cfg.CompressMin = orDefault(cfg.CompressMin, DefaultCompressMin)
	return cfg
}

// orDefault maps 0 to def and every negative value to None.
func orDefault[T int | int64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return None
	}
	return v
}

// Validate reports the first out-of-range field of a normalised config
// (one that went through WithDefaults).
func (cfg QueueConfig) Validate(name string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	j := cfg.Backoff.Jitter
	switch {
	case cfg.VisibilityTimeout < time.Millisecond || cfg.VisibilityTimeout > MaxVisibilityTimeout:
		return bad("visibility timeout %v outside 1ms..%v", cfg.VisibilityTimeout, MaxVisibilityTimeout)
	case cfg.MaxDeliveries > MaxMaxDeliveries:
		return bad("max deliveries %d above %d", cfg.MaxDeliveries, MaxMaxDeliveries)
	case cfg.Backoff.Kind > BackoffNone:
		return bad("unknown back-off kind %d", cfg.Backoff.Kind)
	case cfg.Backoff.Delay < 0 || cfg.Backoff.Max < 0 || cfg.Backoff.Delay > MaxTTL || cfg.Backoff.Max > MaxTTL:
		return bad("back-off delay %v / max %v out of range", cfg.Backoff.Delay, cfg.Backoff.Max)
	case math.IsNaN(j) || math.IsInf(j, 0) || j > 1:
		return bad("back-off jitter %v: want a fraction in (0, 1], or None", j)
	case cfg.Overflow > OverflowDropOldest:
		return bad("unknown overflow policy %d", cfg.Overflow)
	case cfg.MessageTTL > MaxTTL:
		return bad("message TTL %v above %v", cfg.MessageTTL, MaxTTL)
	case cfg.DedupWindow > MaxDedupWindow:
		return bad("de-dup window %v above %v", cfg.DedupWindow, MaxDedupWindow)
	case cfg.SessionWindow > MaxSessionWindow:
		return bad("session window %v above %v", cfg.SessionWindow, MaxSessionWindow)
	case cfg.SettledWindow > MaxDedupWindow:
		return bad("settled window %v above %v", cfg.SettledWindow, MaxDedupWindow)
	case cfg.DeadLetterQueue == name:
		return bad("a queue cannot be its own dead-letter queue")
	case cfg.Compression > CompressionZstd:
		return bad("unknown compression %d", cfg.Compression)
	case cfg.CompressMin > MaxCompressMin:
		return bad("compress min %d above %d", cfg.CompressMin, MaxCompressMin)
	}
	if cfg.Group != "" {
		if err := ValidateName(cfg.Group); err != nil {
			return fmt.Errorf("group: %w", err)
		}
	}
	if err := cfg.Breaker.Validate(); err != nil {
		return err
	}
	if err := ValidateAttributes(cfg.Attributes); err != nil {
		return err
	}
	// The default dead-letter queue of a name of MaxNameLen bytes is
	// longer than MaxNameLen: it is allowed, so that every valid name can
	// have its default dead-letter queue.
	if dlq := cfg.DeadLetterQueue; dlq != "" && dlq != name+DeadLetterSuffix {
		if err := ValidateName(dlq); err != nil {
			return fmt.Errorf("dead-letter queue: %w", err)
		}
	}
	return nil
}

// TopicConfig is a topic's configuration; the zero value works (a 2-minute
// de-dup window for message IDs, at most 1,000,000 of them, and producer
// sessions remembered for an hour).
type TopicConfig struct {
	// DedupWindow: as for queues; 0 means 2 minutes, None turns it off.
	DedupWindow time.Duration
	// MaxDedupIDs: as for queues; 0 means 1,000,000, None means no cap.
	MaxDedupIDs int64
	// SessionWindow: as for queues; 0 means 1 hour, None turns it off.
	SessionWindow time.Duration
	// Group is the topic's placement group (see QueueConfig.Group): its
	// subscriptions belong to it. "" means the topic is a group of its
	// own. Set at creation; it cannot change.
	Group string
}

// WithDefaults returns cfg with its defaults filled in.
func (cfg TopicConfig) WithDefaults() TopicConfig {
	cfg.DedupWindow = orDefault(cfg.DedupWindow, DefaultDedupWindow)
	cfg.MaxDedupIDs = orDefault(cfg.MaxDedupIDs, DefaultMaxDedupIDs)
	cfg.SessionWindow = orDefault(cfg.SessionWindow, DefaultSessionWindow)
	return cfg
}

// Validate reports an out-of-range field of a normalised topic config.
func (cfg TopicConfig) Validate() error {
	if cfg.DedupWindow > MaxDedupWindow {
		return fmt.Errorf("%w: de-dup window %v above %v", ErrInvalidConfig, cfg.DedupWindow, MaxDedupWindow)
	}
	if cfg.SessionWindow > MaxSessionWindow {
		return fmt.Errorf("%w: session window %v above %v", ErrInvalidConfig, cfg.SessionWindow, MaxSessionWindow)
	}
	if cfg.Group != "" {
		if err := ValidateName(cfg.Group); err != nil {
			return fmt.Errorf("group: %w", err)
		}
	}
	return nil
}

// SubscriptionConfig configures a topic subscription.
type SubscriptionConfig struct {
	// Filter: the subscription gets a message only if its headers include
	// every pair (exact match). Empty gets everything.
	Filter map[string]string
	// Queue configures the subscription's queue.
	Queue QueueConfig
}

// ValidateName checks a queue, topic or subscription name: 1–200 bytes of
// [A-Za-z0-9._-], not starting with '.' or '-'. The error quotes at most
// the first 64 bytes of a bad name.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s must be 1..%d bytes (it is %d)", ErrInvalidName, text.Quote(name), MaxNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%w: %s: use letters, digits, '_', and '.' or '-' after the first byte", ErrInvalidName, text.Quote(name))
		}
	}
	return nil
}
