package broker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/chutemq/chute"

	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/vfs"
)

// SyncPolicy says when the journal syncs to disk.
type SyncPolicy uint8

const (
	// SyncAlways (the default) confirms a publish, ack or nack only after
	// its record is on disk: nothing confirmed is lost in a crash.
	SyncAlways SyncPolicy = iota
	// SyncInterval confirms once written and syncs every SyncInterval:
	// UNSAFE against power loss (a process crash loses nothing).
	SyncInterval
	// SyncNever leaves syncing to the operating system: UNSAFE against
	// power loss (a process crash loses nothing).
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("sync(%d)", uint8(p))
}

// ParseSyncPolicy is the inverse of SyncPolicy.String.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	for p := SyncAlways; p <= SyncNever; p++ {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: sync policy %q: want always, interval or never", chute.ErrInvalidConfig, s)
}

func (p SyncPolicy) journal() journal.SyncPolicy {
	switch p {
	case SyncInterval:
		return journal.SyncInterval
	case SyncNever:
		return journal.SyncNever
	}
	return journal.SyncAlways
}

// DefaultSyncDelay is Options.SyncDelay's default: at a steady 2,000
// messages/s it made a quarter to a third fewer syncs and cut the end-to-end p99 from
// 8–11 ms to 2–7 ms on the project's machine, the p50 unchanged
// (internal/journal/syncdelay.go).
const DefaultSyncDelay = 500 * time.Microsecond

// Options configure a broker. The zero value works; every field says its
// default. Use nil for all defaults.
type Options struct {
	// Sync is the journal's sync policy; default SyncAlways.
	Sync SyncPolicy
	// SyncInterval is the longest time between syncs with SyncInterval;
	// default 100 ms.
	SyncInterval time.Duration
	// SyncDelay is the journal's commit delay with SyncAlways: when the
	// journal's writer, idle, is woken by an append less than SyncDelay
	// after its last sync ended, it waits until SyncDelay has passed
	// since then, so that the appends of that span share one fdatasync.
	// It never delays a writer busy with one batch after another, nor the
	// first append after a quiet spell, and changes nothing about what a
	// confirm means. Default DefaultSyncDelay; negative: none. Timed by
	// the system clock, not Clock (it paces I/O, not message time).
	SyncDelay time.Duration
	// SegmentSize is the size of journal segment files; default 64 MiB.
	// Smaller segments are reclaimed sooner; larger ones mean fewer files.
	SegmentSize int64

	// CheckpointBytes bounds the replay a restart costs: a checkpoint is
	// written once the journal has grown this much since the last one (and
	// at Open, when recovery replayed more). Checkpoints also let old
	// segments go. Default 32 MiB, or four segments
	// if that is less; smaller means
	// faster restarts and more checkpoint writes, each the size of the
	// index. Checkpoints never take more than half the time, whatever the
	// setting. Negative means only on Close and Broker.Checkpoint.
	CheckpointBytes int64

	// MemoryBudget is the memory for queued messages: the engine's index
	// (about 40 bytes per message) first, and the most recently written
	// bodies with the rest, so that consumers that keep up are served from
	// memory; other bodies are read back from their segment. A backlog
	// whose index outgrows the budget uses more (the index is never
	// evicted). Default 64 MiB; negative caches no bodies.
	//
	// The index lives on the Go heap, which the garbage collector lets grow
	// to about twice what is live: the budget counts the index twice, so
	// that bodies yield to the heap's headroom too, and a deep backlog
	// keeps no cached bodies (they would be the newest, read last).
	MemoryBudget int64

	// MemoryLimit, if set, is told the Go memory limit the budget implies
	// whenever it changes by an eighth of the budget: the heap may hold the
	// budget (or the index when it outgrows it) plus MemoryAllowance, less
	// the body cache (outside the heap), but never less than what is live
	// plus as much again of it besides the index; plus what the runtime
	// holds besides the heap (goroutine stacks above all). chute serve passes debug.SetMemoryLimit
	// (unless GOMEMLIMIT is set), so that a backlog's heap stays within the
	// budget instead of doubling past it, and freed pages go back to the
	// system as a backlog drains; nil leaves the runtime alone, since a
	// program that embeds the broker owns its garbage collector. Setting it
	// also makes the body cache yield to the heap (see MemoryBudget).
	MemoryLimit func(bytes int64)

	// MaxMessageSize bounds a message's body, headers, ID and key together;
	// default 1 MiB, at most 64 MiB.
	MaxMessageSize int
	// MaxBatch bounds the messages of one publish and the receipts of one
	// ack, nack or extend; default 1000.
	MaxBatch int
	// MaxHeaders bounds a message's header count; default 64. Header names
	// are at most 256 bytes and values at most 4096.
	MaxHeaders int

	// Logger receives the broker's log lines; default: discarded.
	Logger *slog.Logger
	// Clock is the time source; default the system clock. Tests inject a
	// fake one.
	Clock chute.Clock
	// OnSync, if set, is told the duration of every journal fdatasync (for a
	// latency histogram).
	OnSync func(time.Duration)

	// FS is the filesystem under the journal (for tests); default the OS.
	FS vfs.FS

	// MinFreeDisk is the free-space floor of the volume holding the data
	// directory, in bytes. Below it publishes are refused with
	// chute.ErrDiskFull; below half of it receives are refused too (a
	// delivery writes a record, and a receive-nack loop must not eat the
	// last space). Acks, nacks, extends, admin calls and checkpoints go on,
	// so that consumers can drain the backlog and checkpoints give whole
	// segments back; everything resumes by itself once free space is back
	// above the floor. Default: 5% of the volume, at most 256 MiB.
	// Negative: no floor (publishes are then refused only once the reserve
	// had to be given up, or a write found no space at all). See
	// docs/operations.md, "Disk full".
	MinFreeDisk int64
	// DiskReserve is the size of DIR/RESERVE, a file of really allocated
	// space that the broker deletes when the disk is full, so that acks and
	// a checkpoint find room (publishes are refused until it is made
	// again, when space is back). Default (0): twice what a checkpoint of
	// the current index takes, plus a settlement record for every queued
	// message, plus 1 MiB (diskspace.go has the formula), resized as the
	// index grows. Negative: none.
	DiskReserve int64
	// DiskCheckInterval is how often, at most, free space is measured
	// (statfs); between samples the broker counts what it appends.
	// Default 100 ms.
	DiskCheckInterval time.Duration

	// Salvage lets Open start on a journal whose only damage is in the
	// stored bodies of queued messages. Open then reads the body of every
	// queued message (time in proportion to the backlog, not the journal)
	// and dead-letters each one whose checksum fails, with reason
	// "damaged" and an empty body whose headers say where the damage was
	// (discarded if its queue has no dead-letter queue). Without it, Open
	// refuses such a journal with ErrJournalCorrupt and names the
	// messages. Damage in records Open must replay is not salvageable:
	// that is `chute journal repair`'s work. Default false.
	Salvage bool

	// lat is the broker's own latency statistics (stats.go), made fresh
	// by withDefaults, which Open calls once per broker.
	lat *brokerLatency
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 100 * time.Millisecond
	}
	if c.SyncDelay == 0 {
		c.SyncDelay = DefaultSyncDelay
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = 64 << 20
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.MaxHeaders <= 0 {
		c.MaxHeaders = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = chute.SystemClock()
	}
	if c.DiskCheckInterval <= 0 {
		c.DiskCheckInterval = 100 * time.Millisecond
	}
	c.lat = new(brokerLatency)
	return c
}

// Validate reports an option out of range.
func (o Options) Validate() error {
	switch {
	case o.Sync > SyncNever:
		return fmt.Errorf("%w: unknown sync policy %d", chute.ErrInvalidConfig, o.Sync)
	case o.MaxMessageSize > 64<<20:
		return fmt.Errorf("%w: max message size %d above 64 MiB", chute.ErrInvalidConfig, o.MaxMessageSize)
	case o.SegmentSize != 0 && (o.SegmentSize < 64<<10 || o.SegmentSize > 1<<30):
		return fmt.Errorf("%w: segment size %d outside 64 KiB..1 GiB", chute.ErrInvalidConfig, o.SegmentSize)
	}
	return nil
}
