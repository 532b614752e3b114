package broker

import (
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/hist"
)

// Statistics (issue 9) are pulled, never pushed: the broker counts into
// plain fields and histograms (internal/hist) under locks it already holds,
// and Stats copies them for whoever asks — the metrics package on a
// Prometheus scrape, the alert evaluator, the admin API. Nothing here runs
// on a message path except the observations themselves:
//
//   - queue wait, processing and completion are observed by the engine's
//     Receive and Ack commands (internal/engine/latency.go), under b.mu,
//     which the broker holds for the whole batch anyway;
//   - confirm latency (publish received → confirmed durable) is observed
//     once per publish batch, when its Wait returns, into brokerLatency
//     under its own small mutex (b.mu is not held while waiting for a sync,
//     and must not be taken again just to count).
//
// The histograms live in memory and begin again at every Open: they are
// statistics, not state, and no record or checkpoint holds them.

// brokerLatency is the broker-wide latency that the engine cannot see.
// It hangs off Options (withDefaults makes one per Open).
type brokerLatency struct {
	confirm hist.Locked
}

func (l *brokerLatency) observeConfirm(d time.Duration) { l.confirm.Observe(d) }

func (l *brokerLatency) snapshot() hist.Snapshot { return l.confirm.Snapshot() }

// Latency is a set of latency histograms, for one queue or for all
// queues together. A message's due time is when it was published, or its
// deliver-at time if it was delayed.
type Latency struct {
	Wait       hist.Snapshot // due time → first delivery
	Processing hist.Snapshot // delivery → ack
	Completion hist.Snapshot // due time → ack
}

func latencyOf(s engine.LatencySnapshot) Latency {
	return Latency{Wait: s.Wait, Processing: s.Processing, Completion: s.Completion}
}

// Stats is a snapshot of everything the broker counts, taken at one
// moment (the queues under one hold of the broker's lock; journal,
// checkpoint and disk figures just after).
type Stats struct {
	Time time.Time // when it was taken, on the broker's clock

	// Queues is every queue, sorted by name, with its latency histograms.
	Queues []QueueStats
	// Topics is every topic, sorted by name.
	Topics []chute.TopicStats
	// Latency is every queue's latencies together (deleted queues'
	// included), and Confirm is producer confirm latency: from a publish
	// reaching the broker to its being durable per the sync policy.
	Latency Latency
	Confirm hist.Snapshot

	Journal    JournalStats
	Checkpoint CheckpointStats
	Recovery   RecoveryStats
	Disk       DiskStats
	Memory     MemoryStats
	// Healthy is nil, or why the broker cannot take calls (ErrClosed, or
	// the journal error that made it fail closed).
	Healthy error
	// BreakerTransitions counts the circuit-breaker transitions since
	// Open, by the state entered (index: chute.BreakerState), a resume by
	// hand included (breaker.go).
	BreakerTransitions [3]int64
	// Schedules is what the periodic schedules did since Open (schedule.go).
	Schedules ScheduleStats
}

// QueueStats is one queue in Stats: its public statistics (whose
// Latency holds summaries of Histograms) and its full histograms.
type QueueStats struct {
	chute.QueueStats
	// DeadLetterQueue is true when another queue names this one as its
	// dead-letter queue.
	DeadLetterQueue bool
	Histograms      Latency
}

// MemoryStats is the memory budget's use (Options.MemoryBudget).
type MemoryStats struct {
	Budget     int64 // Options.MemoryBudget (negative: no cache)
	CacheLimit int64 // the part of it the body cache may use now
	CacheBytes int64 // bodies held by the cache now
}

// Stats returns a snapshot of the broker's statistics. It holds the
// broker's lock while it copies the queues' figures (about a microsecond
// a queue), never while it formats anything. After Close it still
// answers, with the figures as they were and Healthy set.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	healthy := b.checkLocked()
	now := b.nowLocked()
	if healthy == nil {
		b.eng.Advance(now)
		b.afterChangeLocked()
	}
	qs := b.eng.Queues()
	ts := b.eng.Topics()
	all := b.eng.AllLatency()
	cacheLimit := b.cacheLimit
	transitions := b.brk.Transitions
	counts := b.publishCountersLocked()
	b.mu.Unlock()

	s := Stats{
		Time:    time.Unix(0, now),
		Queues:  make([]QueueStats, len(qs)),
		Topics:  make([]chute.TopicStats, len(ts)),
		Latency: latencyOf(all), Confirm: b.opts.lat.snapshot(),
		Journal: b.JournalStats(), Checkpoint: b.CheckpointStats(),
		Recovery: b.RecoveryStats(), Disk: b.DiskStats(), Healthy: healthy,
		BreakerTransitions: transitions,
		Schedules:          b.ScheduleStats(),
	}
	for i, q := range qs {
		s.Queues[i] = QueueStats{QueueStats: queueStats(q, now), DeadLetterQueue: q.IsDeadLetterQueue,
			Histograms: latencyOf(q.Latency)}
		counts[q.Name].fill(&s.Queues[i].QueueStats)
	}
	for i, t := range ts {
		s.Topics[i] = topicStats(t)
		if c, ok := counts[t.Name]; ok {
			s.Topics[i].Deduplicated, s.Topics[i].RejectedFull, s.Topics[i].RejectedInvalid = c.dedup, c.full, c.invalid
		}
	}
	s.Memory = MemoryStats{Budget: b.opts.MemoryBudget, CacheLimit: cacheLimit, CacheBytes: s.Journal.CacheBytes}
	return s
}

// queueLatency summarises a queue's histograms for chute.QueueStats.
func queueLatency(s engine.LatencySnapshot) chute.QueueLatency {
	return chute.QueueLatency{Wait: summary(s.Wait), Processing: summary(s.Processing), Completion: summary(s.Completion)}
}

func summary(s hist.Snapshot) chute.LatencySummary {
	return chute.LatencySummary{Count: s.Count, Avg: s.Avg(), P50: s.Quantile(0.5), P99: s.Quantile(0.99)}
}
