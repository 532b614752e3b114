package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/journal"
)

// Publish stores msgs on target (a queue, or a topic's matching
// subscriptions) as one atomic batch and returns once the batch is durable
// per the sync policy. A message stored before — its message ID published
// within the de-dup window, or its number in its producer session
// (Message.Session) already stored — is not stored again: its result has
// Duplicate set and the first copy's Seq (and the call still waits for
// that copy to be durable). A session batch that leaves a gap in its
// session is refused with ErrOutOfOrder.
//
// If ctx ends first the outcome is unknown: the messages may or may not
// be stored. Retrying with the same message IDs, or the same session
// numbers, is safe.
func (b *Broker) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	p, err := b.PublishAsync(ctx, target, msgs...)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// pendingPublish is a publish that has been applied and journaled but
// perhaps not yet made durable.
type pendingPublish struct {
	results []chute.PublishResult
	batch   *journal.Batch
	// For the confirm latency (stats.go): the broker's statistics (nil:
	// nothing to observe) and when the publish was received.
	lat   *brokerLatency
	clock chute.Clock
	start time.Time
}

// Wait waits until the publish is durable (per the sync policy) and returns
// its results. Until it returns nil the publish is not confirmed.
func (p *pendingPublish) Wait(ctx context.Context) ([]chute.PublishResult, error) {
	if err := wait(ctx, p.batch); err != nil {
		return nil, err
	}
	if p.lat != nil {
		p.lat.observeConfirm(p.clock.Now().Sub(p.start)) // once per batch, not per message
		p.lat = nil
	}
	return p.results, nil
}

// PublishAsync is Publish without the wait for durability: it validates,
// journals and applies the batch, then returns. Batches published by one
// goroutine are stored in call order, so a producer can keep many in
// flight (each confirmed by its Wait) without reordering them; the server
// uses it to pipeline a PublishStream. Consumers may receive the messages
// before Wait returns (and after a crash that lost them, the producer,
// unconfirmed, publishes again).
func (b *Broker) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	received := b.opts.Clock.Now() // confirm latency starts here (stats.go)
	// A full disk refuses this first (diskspace.go).
	if err := b.checkSpace(spacePublish); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		// Nothing to store, but a target that does not exist is still an
		// error (a request with neither target nor messages is a mistake).
		if err := chute.ValidateName(target); err != nil {
			return nil, err
		}
		b.mu.Lock()
		ok := b.eng.Exists(target)
		b.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("%w: %s", chute.ErrNotFound, target)
		}
		return &pendingPublish{}, nil
	}
	if len(msgs) > b.opts.MaxBatch {
		return nil, fmt.Errorf("%w: %d messages, at most %d", chute.ErrBatchTooLarge, len(msgs), b.opts.MaxBatch)
	}
	sess, err := engine.SessionOf(msgs)
	if err != nil {
		b.countRejected(target, len(msgs), err)
		return nil, err
	}
	pms := make([]engine.PubMsg, len(msgs))
	for i := range msgs {
		if err := b.checkMessage(&msgs[i]); err != nil {
			b.countRejected(target, len(msgs), err)
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
		m := &msgs[i]
		pms[i] = engine.PubMsg{Prio: uint8(m.Priority), ID: m.ID, Key: m.Key, Headers: m.Headers, Body: m.Body}
	}

	b.mu.Lock()
	if err := b.checkLocked(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	// Bodies of a queue that stores them compressed are compressed with
	// b.mu released (compress.go); their buffer is released once the
	// record is encoded, after appendPublishLocked.
	z, err := b.compressLocked(target, pms)
	defer b.zc.Release(z)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	now := b.nowLocked()
	for i := range msgs {
		stampTimes(&pms[i], &msgs[i], now)
	}
	rec, res, err := b.eng.PreparePublish(now, target, sess, pms)
	b.countPublishLocked(target, len(pms), res, err)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	batch, err := b.appendPublishLocked(rec)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]chute.PublishResult, len(res))
	for i, r := range res {
		out[i] = chute.PublishResult{Seq: r.Seq, Duplicate: r.Duplicate}
	}
	return &pendingPublish{results: out, batch: batch, lat: b.opts.lat, clock: b.opts.Clock, start: received}, nil
}

// appendPublishLocked journals a prepared publish and applies it at the
// position the journal gave it (the blobs' location). A nil record (all
// duplicates) waits for the newest pending batch, which holds or follows
// the first copies.
func (b *Broker) appendPublishLocked(rec *engine.Record) (*journal.Batch, error) {
	defer b.afterChangeLocked()
	if rec == nil {
		return b.jrn.Barrier(), nil
	}
	b.encBuf = rec.Encode(b.encBuf[:0])
	pos, batch, err := b.jrn.Append(b.encBuf)
	if err != nil {
		return nil, err
	}
	if err := b.eng.Apply(rec, pos); err != nil {
		// PreparePublish checked everything Apply checks: this is a bug.
		panic(fmt.Sprintf("chute: apply of a prepared publish failed: %v", err))
	}
	return batch, nil
}

// checkMessage enforces the broker's size limits, before any lock.
func (b *Broker) checkMessage(m *chute.Message) error {
	return engine.CheckMessage(m, b.opts.MaxHeaders, b.opts.MaxMessageSize)
}

// stampTimes turns a message's relative times into absolute ones at now.
func stampTimes(pm *engine.PubMsg, m *chute.Message, now int64) {
	if m.Delay > 0 {
		pm.DeliverAt = now + int64(m.Delay)
	}
	if !m.DeliverAt.IsZero() && m.DeliverAt.Unix() >= 0 && m.DeliverAt.UnixNano() > pm.DeliverAt {
		pm.DeliverAt = m.DeliverAt.UnixNano()
	}
	if m.TTL > 0 {
		pm.ExpireAt = now + int64(m.TTL)
	}
}
