package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
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
// Values follow chute.QueueConfig's one rule, on the command line as in
// the API: 0 means "the default" (--max-deliveries 0 is 10 deliveries,
// --dedup-window 0 is 2 minutes, --jitter 0 is 0.2), and "none" (or -1)
// means none (--max-deliveries none: no limit, --dedup-window none: no
// de-dup, --jitter none: no jitter, --ttl none, --max-messages none,
// --max-bytes none). Where the default is itself none (depth limits, TTL),
// 0 and none are the same. Sizes take units (64MiB, 1.5GB) and durations
// take days and weeks (7d, 2w). --visibility, --backoff-delay and
// --backoff-max have no "none": for retries without a delay use
// --backoff none. Any other negative value is a usage error.
type queueFlags struct {
	fs *pflag.FlagSet // these flags only (the command's set holds them too)

	visibility    time.Duration
	maxDeliveries int64
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
	maxDedupIDs   int64
	sessionWindow time.Duration
	settledWindow time.Duration
	maxSettled    int64
	compression   chute.Compression
	compressMin   int64
	more          moreQueueFlags // breaker, group, attributes (breakerflags.go)
}

var (
	backoffKinds = []chute.BackoffKind{chute.BackoffExponential, chute.BackoffFixed, chute.BackoffNone}
	overflows    = []chute.Overflow{chute.OverflowReject, chute.OverflowDropOldest}
	compressions = []chute.Compression{chute.CompressionNone, chute.CompressionZstd}
)

// ttlHelp is --ttl's help; it says what chute.QueueConfig.MessageTTL does.
const ttlHelp = "default time to live of a message, counted from its publish (such as 24h or 7d; 0 or none: none). " +
	"A message waiting when it passes is discarded (or dead-lettered with --dlq-expired); one leased then can still be acked, " +
	"and expires when its lease ends without an ack"

// register adds the queue config flags to cmd, with completion of the
// enum flags.
func (q *queueFlags) register(cmd *cobra.Command) {
	fs := pflag.NewFlagSet("queue config", pflag.ContinueOnError)
	q.fs = fs
	def := chute.QueueConfig{}.WithDefaults("")
	flagVar(fs, newDurationValue(&q.visibility, def.VisibilityTimeout, false), "visibility", "DURATION",
		"lease a receive gets, the visibility timeout (0: the default)")
	flagVar(fs, newCountValue(&q.maxDeliveries, int64(def.MaxDeliveries)), "max-deliveries", "N|none",
		"deliveries before a message is dead-lettered (0: the default; none: no limit)")
	fs.Var(&enumValue[chute.BackoffKind]{p: &q.backoff, all: backoffKinds}, "backoff", "retry delay after a nack")
	flagVar(fs, newDurationValue(&q.backoffDelay, def.Backoff.Delay, false), "backoff-delay", "DURATION",
		"first (exponential) or every (fixed) retry delay (0: the default)")
	flagVar(fs, newDurationValue(&q.backoffMax, def.Backoff.Max, false), "backoff-max", "DURATION",
		"cap of an exponential retry delay (0: the default)")
	flagVar(fs, newJitterValue(&q.jitter, def.Backoff.Jitter), "jitter", "F|none",
		"spread each retry delay by ±F·delay, F a fraction up to 1 (0: the default; none: no jitter)")
	fs.StringVar(&q.dlq, "dlq", "", "dead-letter queue (default NAME.dlq; created with the queue if missing)")
	fs.BoolVar(&q.noDLQ, "no-dlq", false, "discard dead messages instead of keeping them in a dead-letter queue")
	flagVar(fs, newCountValue(&q.maxMessages, chute.None), "max-messages", "N|none",
		"depth limit in messages, ready, delayed and in flight (0 or none: no limit)")
	flagVar(fs, newSizeValue(&q.maxBytes, chute.None, true), "max-bytes", "SIZE|none",
		"depth limit in bytes, such as 64MiB or 1.5GB (0 or none: no limit)")
	fs.Var(&enumValue[chute.Overflow]{p: &q.overflow, all: overflows}, "overflow", "at the depth limit: reject the publish, or move the oldest to the dead-letter queue")
	flagVar(fs, newDurationValue(&q.ttl, chute.None, true), "ttl", "DURATION|none", ttlHelp)
	fs.BoolVar(&q.dlqExpired, "dlq-expired", false, "dead-letter expired messages instead of discarding them")
	flagVar(fs, newDurationValue(&q.dedupWindow, def.DedupWindow, true), "dedup-window", "DURATION|none",
		"how long a message ID is remembered (0: the default; none: no de-dup by message ID)")
	flagVar(fs, newCountValue(&q.maxDedupIDs, def.MaxDedupIDs), "max-dedup-ids", "N|none",
		"message IDs remembered at most; beyond it the oldest are forgotten early, counted (0: the default; none: no cap)")
	flagVar(fs, newDurationValue(&q.sessionWindow, def.SessionWindow, true), "session-window", "DURATION|none",
		"how long a producer session is remembered after its last publish (0: the default; none: sessions off)")
	flagVar(fs, newDurationValue(&q.settledWindow, 0, true), "settled-window", "DURATION|none",
		"how long msg get tells how a message left (acked, cancelled, ...) (0: the de-dup window; none: off)")
	flagVar(fs, newCountValue(&q.maxSettled, def.MaxSettled), "max-settled", "N|none",
		"settled messages remembered at most, about 82 bytes each; the oldest are forgotten first (0: the default; none: no cap)")
	fs.Var(&enumValue[chute.Compression]{p: &q.compression, all: compressions}, "compression",
		"how bodies are stored on disk: as published, or zstd-compressed (for later publishes; consumers get them as published)")
	flagVar(fs, newSizeValue(&q.compressMin, def.CompressMin, true), "compress-min", "SIZE|none",
		"smallest body --compression compresses, such as 512 or 4KiB (0: the default; none: every body)")
	q.more.register(fs)
	cmd.Flags().AddFlagSet(fs)
	cmd.RegisterFlagCompletionFunc("backoff", enumCompletion(backoffKinds))
	cmd.RegisterFlagCompletionFunc("overflow", enumCompletion(overflows))
	cmd.RegisterFlagCompletionFunc("compression", enumCompletion(compressions))
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
	durations := []struct {
		name string
		v    time.Duration
		p    *time.Duration
	}{
		{"visibility", q.visibility, &cfg.VisibilityTimeout},
		{"backoff-delay", q.backoffDelay, &cfg.Backoff.Delay},
		{"backoff-max", q.backoffMax, &cfg.Backoff.Max},
	}
	for _, d := range durations {
		if set(d.name) {
			if d.v < 0 {
				return usageError{fmt.Errorf("--%s %v: must not be negative (0: the default)", d.name, d.v)}
			}
			*d.p = d.v
		}
	}
	if set("max-deliveries") {
		if q.maxDeliveries > math.MaxInt32 {
			return usageError{fmt.Errorf("--max-deliveries %d: too large (none: no limit)", q.maxDeliveries)}
		}
		cfg.MaxDeliveries = int(q.maxDeliveries)
	}
	if set("backoff") {
		cfg.Backoff.Kind = q.backoff
	}
	if set("jitter") {
		cfg.Backoff.Jitter = q.jitter
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
	if set("max-messages") {
		cfg.MaxMessages = q.maxMessages
	}
	if set("max-bytes") {
		cfg.MaxBytes = q.maxBytes
	}
	if set("overflow") {
		cfg.Overflow = q.overflow
	}
	if set("dlq-expired") {
		cfg.DeadLetterExpired = q.dlqExpired
	}
	if set("max-dedup-ids") {
		cfg.MaxDedupIDs = q.maxDedupIDs
	}
	if set("max-settled") {
		cfg.MaxSettled = q.maxSettled
	}
	if set("compression") {
		cfg.Compression = q.compression
	}
	if set("compress-min") {
		cfg.CompressMin = q.compressMin
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		p    *time.Duration
	}{{"ttl", q.ttl, &cfg.MessageTTL}, {"dedup-window", q.dedupWindow, &cfg.DedupWindow}, {"session-window", q.sessionWindow, &cfg.SessionWindow},
		{"settled-window", q.settledWindow, &cfg.SettledWindow}} {
		if set(d.name) {
			v, err := noneOrPositive(d.name, d.v)
			if err != nil {
				return err
			}
			*d.p = v
		}
	}
	return q.more.apply(set, cfg)
}

// noneOrPositive checks a duration flag that takes none: None, 0 (the
// default) or a positive duration.
func noneOrPositive(name string, d time.Duration) (time.Duration, error) {
	if d < 0 && d != chute.None {
		return 0, usageError{fmt.Errorf("--%s %v: must not be negative (none: none; 0: the default)", name, d)}
	}
	return d, nil
}

// countValue is a pflag.Value for a count that also takes "none" or -1
// (stored as chute.None); another negative count is an error.
type countValue struct{ p *int64 }

func newCountValue(p *int64, def int64) *countValue {
	*p = def
	return &countValue{p: p}
}

func (v *countValue) Set(s string) error {
	if isNone(s) {
		*v.p = chute.None
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q: want a count (0: the default) or none", s)
	}
	*v.p = n
	return nil
}

func (v *countValue) String() string {
	if *v.p < 0 {
		return "none"
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *countValue) Type() string { return "count" }

// jitterValue is --jitter: a fraction in [0, 1] (0: the default) or "none"
// (stored as chute.None).
type jitterValue struct{ p *float64 }

func newJitterValue(p *float64, def float64) *jitterValue {
	*p = def
	return &jitterValue{p: p}
}

func (v *jitterValue) Set(s string) error {
	if isNone(s) {
		*v.p = chute.None
		return nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("%q: want a fraction from 0 to 1 (0: the default) or none", s)
	}
	*v.p = f
	return nil
}

func (v *jitterValue) String() string {
	if *v.p < 0 {
		return "none"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v *jitterValue) Type() string { return "fraction" }

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
	return fmt.Errorf("want one of %s", strings.Join(enumNames(v.all), ", "))
}

// Type names the choices in the help: --backoff exponential|fixed|none.
func (v *enumValue[T]) Type() string { return strings.Join(enumNames(v.all), "|") }

func enumNames[T fmt.Stringer](all []T) []string {
	names := make([]string, len(all))
	for i, x := range all {
		names[i] = x.String()
	}
	return names
}

// queueConfigJSON is a queue config as --json prints it (docs/cli.md,
// "queue config"): keys are the flags' names; counts and sizes are numbers
// and durations fmtDuration strings, with -1 and "none" for none. A
// reported config has every default filled in, so no 0 stands for one.
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
	MaxDedupIDs   int64   `json:"max_dedup_ids"`
	SessionWindow string  `json:"session_window"`
	SettledWindow string  `json:"settled_window"`
	MaxSettled    int64   `json:"max_settled"`
	Compression   string  `json:"compression"`
	CompressMin   int64   `json:"compress_min"`
	// breakerflags.go
	Breaker    *breakerJSON      `json:"breaker"` // null: off
	Group      string            `json:"group"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

func newQueueConfigJSON(cfg chute.QueueConfig) queueConfigJSON {
	return queueConfigJSON{
		Visibility: fmtDuration(cfg.VisibilityTimeout), MaxDeliveries: noneIfNegative(cfg.MaxDeliveries),
		Backoff: cfg.Backoff.Kind.String(), BackoffDelay: fmtDuration(cfg.Backoff.Delay), BackoffMax: fmtDuration(cfg.Backoff.Max),
		Jitter: noneIfNegative(cfg.Backoff.Jitter), DLQ: cfg.DeadLetterQueue, NoDLQ: cfg.NoDeadLetter,
		MaxMessages: noneIfNegative(cfg.MaxMessages), MaxBytes: noneIfNegative(cfg.MaxBytes), Overflow: cfg.Overflow.String(),
		TTL: fmtDuration(cfg.MessageTTL), DLQExpired: cfg.DeadLetterExpired, DedupWindow: fmtDuration(cfg.DedupWindow),
		MaxDedupIDs: noneIfNegative(cfg.MaxDedupIDs), SessionWindow: fmtDuration(cfg.SessionWindow),
		SettledWindow: fmtDuration(cfg.SettledWindow), MaxSettled: noneIfNegative(cfg.MaxSettled),
		Compression: cfg.Compression.String(), CompressMin: noneIfNegative(cfg.CompressMin),
		Breaker: newBreakerJSON(cfg.Breaker), Group: cfg.Group, Attributes: cfg.Attributes,
	}
}

// noneIfNegative writes every negative value as None (-1).
func noneIfNegative[T int | int64 | float64](v T) T {
	if v < 0 {
		return chute.None
	}
	return v
}

// queueConfigRows is a queue config for people: one [flag, value] row per
// field, named after the flag that changes it.
func queueConfigRows(cfg chute.QueueConfig) [][2]string {
	limit := func(n int64, f func(int64) string) string {
		if n <= 0 {
			return "no limit"
		}
		return f(n)
	}
	count := func(n int64) string { return strconv.FormatInt(n, 10) }
	size := func(n int64) string {
		if s := fmtSize(n); s != fmt.Sprintf("%d B", n) {
			return fmt.Sprintf("%s (%d bytes)", s, n)
		}
		return fmt.Sprintf("%d bytes", n)
	}
	dlq := cfg.DeadLetterQueue
	if cfg.NoDeadLetter {
		dlq = "none (--no-dlq: dead messages are discarded)"
	}
	jitter := "none"
	if cfg.Backoff.Jitter >= 0 {
		jitter = strconv.FormatFloat(cfg.Backoff.Jitter, 'g', -1, 64)
	}
	return append([][2]string{
		{"visibility", fmtDuration(cfg.VisibilityTimeout)},
		{"max-deliveries", limit(int64(cfg.MaxDeliveries), count)},
		{"backoff", cfg.Backoff.Kind.String()},
		{"backoff-delay", fmtDuration(cfg.Backoff.Delay)},
		{"backoff-max", fmtDuration(cfg.Backoff.Max)},
		{"jitter", jitter},
		{"dlq", dlq},
		{"dlq-expired", strconv.FormatBool(cfg.DeadLetterExpired)},
		{"max-messages", limit(cfg.MaxMessages, count)},
		{"max-bytes", limit(cfg.MaxBytes, size)},
		{"overflow", cfg.Overflow.String()},
		{"ttl", fmtDuration(cfg.MessageTTL)},
		{"dedup-window", fmtDuration(cfg.DedupWindow)},
		{"max-dedup-ids", limit(cfg.MaxDedupIDs, count)},
		{"session-window", fmtDuration(cfg.SessionWindow)},
		{"settled-window", fmtDuration(cfg.SettledWindow)},
		{"max-settled", limit(cfg.MaxSettled, count)},
		{"compression", cfg.Compression.String()},
		{"compress-min", compressMin(cfg.CompressMin, size)},
	}, moreConfigRows(cfg)...) // breakerflags.go
}

// compressMin is --compress-min for people: None compresses every body.
func compressMin(n int64, size func(int64) string) string {
	if n < 0 {
		return "none (every body)"
	}
	return size(n)
}
