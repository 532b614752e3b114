package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/chutemq/chute"
)

// queueFlags are the flags for every QueueConfig field, shared by queue
// create, queue update and subscription create.
//
// A flag changes its field only when it is given on the command line. So
// create starts from the zero config (the broker's defaults) and update
// starts from the queue's current config and changes only what the command
// line names.
//
// The engine uses a negative value to mean "off" for some fields and 0 to
// mean "the default". On the command line, 0 turns a setting off
// (--max-deliveries 0: no limit, --dedup-window 0: no de-dup, --jitter 0:
// no jitter). To get a default back, pass its value (see the help).
type queueFlags struct {
	fs *pflag.FlagSet // these flags only (the command's set holds them too)

	visibility    time.Duration
	maxDeliveries int
	backoff       chute.BackoffKind
	backoffDelay  time.Duration
	backoffMax    time.Duration
	jitter        float64
	dlq           string
	noDLQ         bool
	maxMessages   int64
	maxBytes      int64
	overflow      chute.Overflow
	ttl           time.Duration
	dlqExpired    bool
	dedupWindow   time.Duration
}

var (
	backoffKinds = []chute.BackoffKind{chute.BackoffExponential, chute.BackoffFixed, chute.BackoffNone}
	overflows    = []chute.Overflow{chute.OverflowReject, chute.OverflowDropOldest}
)

// register adds the queue config flags to cmdFlags.
func (q *queueFlags) register(cmdFlags *pflag.FlagSet) {
	fs := pflag.NewFlagSet("queue config", pflag.ContinueOnError)
	q.fs = fs
	defer cmdFlags.AddFlagSet(fs)
	def := chute.QueueConfig{}.WithDefaults("")
	fs.DurationVar(&q.visibility, "visibility", def.VisibilityTimeout, "lease a receive gets (visibility timeout)")
	fs.IntVar(&q.maxDeliveries, "max-deliveries", def.MaxDeliveries, "deliveries before a message is dead-lettered; 0 = no limit")
	fs.Var(&enumValue[chute.BackoffKind]{p: &q.backoff, all: backoffKinds}, "backoff", "retry delay after a nack")
	fs.DurationVar(&q.backoffDelay, "backoff-delay", def.Backoff.Delay, "first (exponential) or every (fixed) retry delay")
	fs.DurationVar(&q.backoffMax, "backoff-max", def.Backoff.Max, "cap of an exponential retry delay")
	fs.Float64Var(&q.jitter, "jitter", def.Backoff.Jitter, "spread each retry delay by ±jitter·delay (0..1); 0 = none")
	fs.StringVar(&q.dlq, "dlq", "", "dead-letter queue (default NAME.dlq, created when needed)")
	fs.BoolVar(&q.noDLQ, "no-dlq", false, "discard dead messages instead of keeping them in a dead-letter queue")
	fs.Int64Var(&q.maxMessages, "max-messages", 0, "depth limit in messages (ready, delayed and in flight); 0 = none")
	fs.Int64Var(&q.maxBytes, "max-bytes", 0, "depth limit in bytes; 0 = none")
	fs.Var(&enumValue[chute.Overflow]{p: &q.overflow, all: overflows}, "overflow", "at the depth limit: reject the publish, or move the oldest to the dead-letter queue")
	fs.DurationVar(&q.ttl, "ttl", 0, "default time to live of a message, from its publish; 0 = none")
	fs.BoolVar(&q.dlqExpired, "dlq-expired", false, "dead-letter expired messages instead of discarding them")
	fs.DurationVar(&q.dedupWindow, "dedup-window", def.DedupWindow, "how long a producer ID is remembered; 0 = no de-dup")
}

// changed reports whether the command line gives any queue config flag.
func (q *queueFlags) changed() bool {
	given := false
	q.fs.VisitAll(func(fl *pflag.Flag) { given = given || fl.Changed })
	return given
}

// apply writes the flags given on the command line into cfg. Values that
// are out of range for a command line are usage errors; the broker checks
// the rest (exit status 5).
func (q *queueFlags) apply(cfg *chute.QueueConfig) error {
	set := q.fs.Changed
	if set("dlq") && q.noDLQ {
		return usageError{errors.New("--dlq and --no-dlq exclude each other")}
	}
	if set("visibility") {
		if q.visibility <= 0 {
			return usageError{fmt.Errorf("--visibility %v: must be positive", q.visibility)}
		}
		cfg.VisibilityTimeout = q.visibility
	}
	if set("max-deliveries") {
		cfg.MaxDeliveries = q.maxDeliveries
		if q.maxDeliveries <= 0 {
			cfg.MaxDeliveries = -1
		}
	}
	if set("backoff") {
		cfg.Backoff.Kind = q.backoff
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		p    *time.Duration
	}{{"backoff-delay", q.backoffDelay, &cfg.Backoff.Delay}, {"backoff-max", q.backoffMax, &cfg.Backoff.Max}} {
		if set(d.name) {
			if d.v <= 0 {
				return usageError{fmt.Errorf("--%s %v: must be positive (for no delay use --backoff none)", d.name, d.v)}
			}
			*d.p = d.v
		}
	}
	if set("jitter") {
		if q.jitter < 0 || q.jitter > 1 {
			return usageError{fmt.Errorf("--jitter %v: must be within 0..1", q.jitter)}
		}
		cfg.Backoff.Jitter = offIfZero(q.jitter)
	}
	if set("dlq") {
		cfg.DeadLetterQueue, cfg.NoDeadLetter = q.dlq, false
	}
	if set("no-dlq") {
		cfg.NoDeadLetter = q.noDLQ
		if q.noDLQ {
			cfg.DeadLetterQueue = ""
		}
	}
	if err := q.applyLimits(cfg); err != nil {
		return err
	}
	if set("dlq-expired") {
		cfg.DeadLetterExpired = q.dlqExpired
	}
	if set("dedup-window") {
		w, err := dedupWindow(q.dedupWindow)
		if err != nil {
			return err
		}
		cfg.DedupWindow = w
	}
	return nil
}

// applyLimits applies the depth limit, overflow and TTL flags.
func (q *queueFlags) applyLimits(cfg *chute.QueueConfig) error {
	set := q.fs.Changed
	if set("max-messages") {
		if q.maxMessages < 0 {
			return usageError{fmt.Errorf("--max-messages %d: must not be negative (0 = no limit)", q.maxMessages)}
		}
		cfg.MaxMessages = q.maxMessages
	}
	if set("max-bytes") {
		if q.maxBytes < 0 {
			return usageError{fmt.Errorf("--max-bytes %d: must not be negative (0 = no limit)", q.maxBytes)}
		}
		cfg.MaxBytes = q.maxBytes
	}
	if set("overflow") {
		cfg.Overflow = q.overflow
	}
	if set("ttl") {
		if q.ttl < 0 {
			return usageError{fmt.Errorf("--ttl %v: must not be negative (0 = none)", q.ttl)}
		}
		cfg.MessageTTL = q.ttl
	}
	return nil
}

// dedupWindow turns a --dedup-window value into a config value (0 = off,
// which the engine spells -1).
func dedupWindow(d time.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, usageError{fmt.Errorf("--dedup-window %v: must not be negative (0 = no de-dup)", d)}
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}

// fmtWindow prints a de-dup window for people ("off" when there is none).
func fmtWindow(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return d.String()
}

// offIfZero maps a command-line 0 ("off") to the engine's -1.
func offIfZero(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

// enumValue is a flag that takes one of a fixed set of names (the values'
// String forms); any other value is a flag error, so a usage error.
type enumValue[T fmt.Stringer] struct {
	p   *T
	all []T
}

func (v *enumValue[T]) String() string {
	if v.p == nil {
		return ""
	}
	return (*v.p).String()
}

func (v *enumValue[T]) Set(s string) error {
	for _, x := range v.all {
		if x.String() == s {
			*v.p = x
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(v.names(), ", "))
}

// Type names the choices in the help: --backoff exponential|fixed|none.
func (v *enumValue[T]) Type() string { return strings.Join(v.names(), "|") }

func (v *enumValue[T]) names() []string {
	names := make([]string, len(v.all))
	for i, x := range v.all {
		names[i] = x.String()
	}
	return names
}

// queueConfigJSON is a queue config as --json prints it: keys and values
// as the flags above take them (durations as "30s", 0 = off).
type queueConfigJSON struct {
	Visibility    string  `json:"visibility"`
	MaxDeliveries int     `json:"max_deliveries"`
	Backoff       string  `json:"backoff"`
	BackoffDelay  string  `json:"backoff_delay"`
	BackoffMax    string  `json:"backoff_max"`
	Jitter        float64 `json:"jitter"`
	DLQ           string  `json:"dlq"`
	NoDLQ         bool    `json:"no_dlq"`
	MaxMessages   int64   `json:"max_messages"`
	MaxBytes      int64   `json:"max_bytes"`
	Overflow      string  `json:"overflow"`
	TTL           string  `json:"ttl"`
	DLQExpired    bool    `json:"dlq_expired"`
	DedupWindow   string  `json:"dedup_window"`
}

func newQueueConfigJSON(cfg chute.QueueConfig) queueConfigJSON {
	return queueConfigJSON{
		Visibility: cfg.VisibilityTimeout.String(), MaxDeliveries: max(cfg.MaxDeliveries, 0),
		Backoff: cfg.Backoff.Kind.String(), BackoffDelay: cfg.Backoff.Delay.String(), BackoffMax: cfg.Backoff.Max.String(),
		Jitter: max(cfg.Backoff.Jitter, 0), DLQ: cfg.DeadLetterQueue, NoDLQ: cfg.NoDeadLetter,
		MaxMessages: max(cfg.MaxMessages, 0), MaxBytes: max(cfg.MaxBytes, 0), Overflow: cfg.Overflow.String(),
		TTL: max(cfg.MessageTTL, 0).String(), DLQExpired: cfg.DeadLetterExpired, DedupWindow: max(cfg.DedupWindow, 0).String(),
	}
}

// queueConfigRows is a queue config for people: one [flag, value] row per
// field, named after the flag that changes it.
func queueConfigRows(cfg chute.QueueConfig) [][2]string {
	orNone := func(n int64, none string) string {
		if n <= 0 {
			return none
		}
		return fmt.Sprint(n)
	}
	dlq := cfg.DeadLetterQueue
	if cfg.NoDeadLetter {
		dlq = "none (--no-dlq: dead messages are discarded)"
	}
	ttl := "none"
	if cfg.MessageTTL > 0 {
		ttl = cfg.MessageTTL.String()
	}
	return [][2]string{
		{"visibility", cfg.VisibilityTimeout.String()},
		{"max-deliveries", orNone(int64(cfg.MaxDeliveries), "no limit")},
		{"backoff", cfg.Backoff.Kind.String()},
		{"backoff-delay", cfg.Backoff.Delay.String()},
		{"backoff-max", cfg.Backoff.Max.String()},
		{"jitter", fmt.Sprint(max(cfg.Backoff.Jitter, 0))},
		{"dlq", dlq},
		{"dlq-expired", fmt.Sprint(cfg.DeadLetterExpired)},
		{"max-messages", orNone(cfg.MaxMessages, "no limit")},
		{"max-bytes", orNone(cfg.MaxBytes, "no limit")},
		{"overflow", cfg.Overflow.String()},
		{"ttl", ttl},
		{"dedup-window", fmtWindow(cfg.DedupWindow)},
	}
}
