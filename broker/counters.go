package broker

import (
	"errors"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// Publish outcomes the engine does not record, counted per queue or topic
// since Open (QueueStats.Deduplicated, RejectedFull, RejectedInvalid).
// They are counted once per publish call under the broker's lock, which
// the publish holds anyway, and only for targets that exist, so that a
// client naming random targets cannot grow the map.
type pubCounters struct {
	qid                  uint32 // the queue's engine ID (0: a topic): a new queue of the same name starts again
	dedup, full, invalid int64
}

// countPublishLocked counts a prepared publish's duplicates, or its refusal.
func (b *Broker) countPublishLocked(target string, n int, res []engine.PubResult, err error) {
	var c pubCounters
	switch {
	case errors.Is(err, chute.ErrQueueFull):
		c.full = int64(n)
	case errors.Is(err, chute.ErrInvalidMessage), errors.Is(err, chute.ErrMessageTooLarge):
		c.invalid = int64(n)
	case err == nil:
		for _, r := range res {
			if r.Duplicate {
				c.dedup++
			}
		}
	}
	if c == (pubCounters{}) || !b.eng.Exists(target) {
		return
	}
	if b.pubCount == nil {
		b.pubCount = make(map[string]*pubCounters)
	}
	qid, _ := b.eng.QueueID(target)
	p := b.pubCount[target]
	if p == nil || p.qid != qid {
		p = &pubCounters{qid: qid}
		b.pubCount[target] = p
	}
	p.dedup += c.dedup
	p.full += c.full
	p.invalid += c.invalid
}

// countRejected counts a publish refused before it took the lock.
func (b *Broker) countRejected(target string, n int, err error) {
	b.mu.Lock()
	b.countPublishLocked(target, n, nil, err)
	b.mu.Unlock()
}

// addPublishCountersLocked fills the publish counters of a queue's stats.
func (b *Broker) addPublishCountersLocked(s *chute.QueueStats) {
	if p := b.pubCount[s.Name]; p != nil {
		if qid, _ := b.eng.QueueID(s.Name); qid == p.qid {
			p.fill(s)
		}
	}
}

// publishCountersLocked copies the counters of the current queues
// and topics, for Stats to fill in after it lets go of the lock.
func (b *Broker) publishCountersLocked() map[string]pubCounters {
	out := make(map[string]pubCounters, len(b.pubCount))
	for name, p := range b.pubCount {
		if qid, _ := b.eng.QueueID(name); qid == p.qid {
			out[name] = *p
		}
	}
	return out
}

// fill sets a queue's publish counters from c (zero: none counted).
func (c pubCounters) fill(s *chute.QueueStats) {
	s.Deduplicated, s.RejectedFull, s.RejectedInvalid = c.dedup, c.full, c.invalid
}

// addTopicCountersLocked fills the publish counters of a topic's stats.
func (b *Broker) addTopicCountersLocked(s *chute.TopicStats) {
	if p := b.pubCount[s.Name]; p != nil {
		s.Deduplicated, s.RejectedFull, s.RejectedInvalid = p.dedup, p.full, p.invalid
	}
}

// prunePublishCountersLocked forgets the counters of deleted targets.
func (b *Broker) prunePublishCountersLocked() {
	for name := range b.pubCount {
		if !b.eng.Exists(name) {
			delete(b.pubCount, name)
		}
	}
}
