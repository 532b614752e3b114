package broker

import (
	"context"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
)

// mutate runs one admin command under the lock, journals its record and
// waits for it to be durable.
func (b *Broker) mutate(ctx context.Context, cmd func(now int64) (*engine.Record, error)) error {
	return b.mutateMany(ctx, func(now int64) ([]*engine.Record, error) {
		r, err := cmd(now)
		return []*engine.Record{r}, err
	})
}

// mutateMany is mutate for a command that makes several records (nil ones
// are skipped): it journals them in order and waits until all are durable.
func (b *Broker) mutateMany(ctx context.Context, cmd func(now int64) ([]*engine.Record, error)) error {
	b.mu.Lock()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return err
	}
	recs, err := cmd(b.nowLocked())
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var batches []*journal.Batch
	for _, r := range recs {
		if r == nil && len(batches) > 0 {
			continue
		}
		batch, err := b.commitLocked(r)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		batches = append(batches, batch)
	}
	b.mu.Unlock()
	for _, batch := range batches {
		if err := wait(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// CreateQueue creates a queue, and its dead-letter queue if that does not
// exist yet.
func (b *Broker) CreateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	return b.mutateConfig(ctx, cfg.Breaker.Enabled, func(now int64) (*engine.Record, error) { return b.eng.CreateQueue(now, name, cfg) })
}

// UpdateQueue replaces a queue's configuration (zero fields take their
// defaults, as at creation). Messages already queued keep their expiry.
func (b *Broker) UpdateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	return b.mutateConfig(ctx, true, func(now int64) (*engine.Record, error) { return b.eng.UpdateQueue(now, name, cfg) })
}

// DeleteQueue deletes a queue and its messages (its dead-letter queue
// stays).
func (b *Broker) DeleteQueue(ctx context.Context, name string) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.DeleteQueue(now, name) })
}

// PurgeQueue removes every message of a queue, in flight ones included.
func (b *Broker) PurgeQueue(ctx context.Context, name string) (int64, error) {
	var n int64
	err := b.mutate(ctx, func(now int64) (r *engine.Record, err error) {
		r, n, err = b.eng.PurgeQueue(now, name)
		return r, err
	})
	return n, err
}

// CreateTopic creates a topic.
func (b *Broker) CreateTopic(ctx context.Context, name string, cfg chute.TopicConfig) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.CreateTopic(now, name, cfg) })
}

// UpdateTopic replaces a topic's configuration.
func (b *Broker) UpdateTopic(ctx context.Context, name string, cfg chute.TopicConfig) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.UpdateTopic(now, name, cfg) })
}

// DeleteTopic deletes a topic; its subscriptions' queues stay as queues.
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.DeleteTopic(now, name) })
}

// Subscribe creates queue name as a subscription of topic.
func (b *Broker) Subscribe(ctx context.Context, topic, name string, sub chute.SubscriptionConfig) error {
	return b.mutateConfig(ctx, sub.Queue.Breaker.Enabled, func(now int64) (*engine.Record, error) {
		return b.eng.Subscribe(now, topic, name, sub.Queue, sub.Filter)
	})
}

// Unsubscribe deletes a subscription and its queue.
func (b *Broker) Unsubscribe(ctx context.Context, topic, name string) error {
	return b.mutate(ctx, func(now int64) (*engine.Record, error) { return b.eng.Unsubscribe(now, topic, name) })
}

// Redrive moves up to max (all if max ≤ 0) ready dead letters back to the
// queues they died in, as new messages there; it returns how many moved.
// A dead letter whose source queue is gone or full stays.
func (b *Broker) Redrive(ctx context.Context, deadLetterQueue string, max int64) (int64, error) {
	var n int64
	err := b.mutate(ctx, func(now int64) (r *engine.Record, err error) {
		r, n, err = b.eng.Redrive(now, deadLetterQueue, max)
		return r, err
	})
	return n, err
}

// QueueStats returns a snapshot of one queue.
func (b *Broker) QueueStats(ctx context.Context, name string) (chute.QueueStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(); err != nil {
		return chute.QueueStats{}, err
	}
	now := b.nowLocked()
	b.eng.Advance(now)
	b.afterChangeLocked()
	s, err := b.eng.QueueStats(name)
	if err != nil {
		return chute.QueueStats{}, err
	}
	qs := queueStats(s, now)
	b.addPublishCountersLocked(&qs)
	return qs, nil
}

// Queues returns a snapshot of every queue, sorted by name.
func (b *Broker) Queues(ctx context.Context) ([]chute.QueueStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(); err != nil {
		return nil, err
	}
	now := b.nowLocked()
	b.eng.Advance(now)
	b.afterChangeLocked()
	all := b.eng.Queues()
	out := make([]chute.QueueStats, len(all))
	for i, s := range all {
		out[i] = queueStats(s, now)
		b.addPublishCountersLocked(&out[i])
	}
	b.prunePublishCountersLocked()
	return out, nil
}

func queueStats(s engine.QueueStats, now int64) chute.QueueStats {
	out := s.Public(now)
	out.Latency = queueLatency(s.Latency)
	return out
}

// Topics returns a snapshot of every topic, sorted by name.
func (b *Broker) Topics(ctx context.Context) ([]chute.TopicStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.checkLocked(); err != nil {
		return nil, err
	}
	all := b.eng.Topics()
	out := make([]chute.TopicStats, len(all))
	for i, t := range all {
		out[i] = topicStats(t)
		b.addTopicCountersLocked(&out[i])
	}
	return out, nil
}

func topicStats(t engine.TopicStats) chute.TopicStats {
	return chute.TopicStats{Name: t.Name, Config: t.Config, Subscriptions: t.Subscriptions,
		DedupIDs: t.DedupIDs, Sessions: t.Sessions, DedupBytes: t.DedupBytes, DedupForgotten: t.Totals.DedupForgotten,
		Published: t.Totals.Published, Unrouted: t.Totals.Unrouted}
}

// JournalStats is a snapshot of the journal's counters since Open.
type JournalStats struct {
	Records, Bytes int64         // records and bytes appended
	Writes, Syncs  int64         // write calls and syncs (group commit: many records each)
	SyncDelays     int64         // times the writer waited out SyncDelay before a sync (a commit delay)
	SyncTime       time.Duration // total time spent syncing
	ZerosAhead     int64         // bytes of zeros written ahead of the last record (journal.Options.FillAhead)
	CacheHits      int64         // message bodies read from the in-memory cache
	FileReads      int64         // message bodies read back from segment files
	CacheBytes     int64         // bytes held by the read cache
	Segments       int           // segment files in use
	Reclaimed      int64         // segment files deleted since Open (nothing live left in them)
	Freeing        int           // of those, files still being given back to the volume, a slice at a time
	SegmentSize    int64         // the size of one segment file
	Policy         SyncPolicy
}

// JournalStats returns the journal's counters.
func (b *Broker) JournalStats() JournalStats {
	s := b.jrn.Stats()
	return JournalStats{Records: s.Records, Bytes: s.Bytes, Writes: s.Writes, Syncs: s.Syncs, SyncDelays: s.Delayed,
		SyncTime: s.SyncTime, ZerosAhead: s.Filled, CacheHits: s.CacheHits, FileReads: s.FileReads, CacheBytes: s.CacheBytes,
		Segments: s.Segments, Reclaimed: s.Released, Freeing: s.Reclaiming, SegmentSize: s.SegmentSize, Policy: b.opts.Sync}
}

// SyncJournal writes and syncs everything journaled so far, whatever the
// sync policy.
func (b *Broker) SyncJournal(ctx context.Context) error { return b.jrn.Sync(ctx) }

// Healthy reports whether the broker can take calls: nil, or ErrClosed, or
// the journal error that made it fail closed.
func (b *Broker) Healthy() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.checkLocked()
}
