package engine

import (
	"fmt"
	"maps"
	"slices"

	"github.com/chutemq/chute/internal/text"
)

// Queue, topic and subscription administration: each command validates,
// builds its record and applies it through the same function replay uses.

func (e *Engine) nameFree(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if e.queues[name] != nil || e.topics[name] != nil {
		return fmt.Errorf("%w: %s", ErrExists, text.Quote(name))
	}
	return nil
}

func (e *Engine) checkQueueConfig(name string, cfg QueueConfig) (QueueConfig, error) {
	cfg = cfg.WithDefaults(name)
	if err := cfg.Validate(name); err != nil {
		return cfg, err
	}
	if e.topics[cfg.DeadLetterQueue] != nil {
		return cfg, fmt.Errorf("%w: dead-letter queue %q is a topic", ErrInvalidConfig, cfg.DeadLetterQueue)
	}
	return cfg, nil
}

// CreateQueue creates a queue (and its dead-letter queue if missing).
func (e *Engine) CreateQueue(now int64, name string, cfg QueueConfig) (*Record, error) {
	e.advance(now)
	if err := e.nameFree(name); err != nil {
		return nil, err
	}
	cfg, err := e.checkQueueConfig(name, cfg)
	if err != nil {
		return nil, err
	}
	r := &Record{Type: RecCreateQueue, Time: e.now, Name: name, Queue: cfg}
	return r, e.applyCreateQueue(r)
}

func (e *Engine) applyCreateQueue(r *Record) error {
	if e.queues[r.Name] != nil || e.topics[r.Name] != nil {
		return ErrExists
	}
	e.newQueue(r.Name, r.Queue)
	return nil
}

// newQueue adds a queue with a normalised config, and its dead-letter queue.
func (e *Engine) newQueue(name string, cfg QueueConfig) *queue {
	q := newQueue(e.nextQID, name, cfg)
	e.nextQID++
	e.queues[name] = q
	e.byID[q.id] = q
	if cfg.DeadLetterQueue != "" {
		e.ensureDeadLetterQueue(cfg.DeadLetterQueue)
	}
	return q
}

// UpdateQueue replaces a queue's configuration. Messages already queued
// keep the expiry they were given; limits apply to later publishes.
func (e *Engine) UpdateQueue(now int64, name string, cfg QueueConfig) (*Record, error) {
	e.advance(now)
	if e.queues[name] == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	cfg, err := e.checkQueueConfig(name, cfg)
	if err != nil {
		return nil, err
	}
	if old := e.queues[name].cfg.Group; cfg.Group != old {
		return nil, fmt.Errorf("%w: the group of %s is %s: a queue's group is set at creation (tx.go)", ErrInvalidConfig, text.Quote(name), text.Quote(old))
	}
	r := &Record{Type: RecUpdateQueue, Time: e.now, Name: name, Queue: cfg}
	return r, e.applyUpdateQueue(r)
}

func (e *Engine) applyUpdateQueue(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	q.cfg = r.Queue
	e.breakerConfigChanged(q)
	if q.cfg.SessionWindow <= 0 {
		q.dedup.sess = sessions{} // turned off: forget them
	}
	if q.cfg.DeadLetterQueue != "" {
		e.ensureDeadLetterQueue(q.cfg.DeadLetterQueue)
	}
	return nil
}

// DeleteQueue deletes a queue and every message in it (its dead-letter
// queue stays). A subscription's queue is unsubscribed first.
func (e *Engine) DeleteQueue(now int64, name string) (*Record, error) {
	e.advance(now)
	if e.queues[name] == nil {
		return nil, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	if users := e.deadLetterUsers(name); len(users) > 0 {
		// Deleting it would only bring it back, empty, with the next dead
		// letter: refuse, and say what to change first.
		return nil, fmt.Errorf("%w: %q is the dead-letter queue of %q: delete those queues or give them another dead-letter queue first",
			ErrInvalidConfig, name, users)
	}
	r := &Record{Type: RecDeleteQueue, Time: e.now, Name: name}
	return r, e.applyDeleteQueue(r)
}

func (e *Engine) applyDeleteQueue(r *Record) error {
	q := e.queues[r.Name]
	if q == nil {
		return ErrQueueNotFound
	}
	e.purge(q)
	if q.sub != nil {
		q.sub.topic.unsubscribe(q)
	}
	if q.timerIdx >= 0 {
		e.timers.remove(q.timerIdx)
	}
	delete(e.queues, q.name)
	delete(e.byID, q.id)
	return nil
}

// PurgeQueue removes every message from a queue, in flight ones included
// (their receipts go stale). It returns how many were removed.
func (e *Engine) PurgeQueue(now int64, name string) (*Record, int64, error) {
	e.advance(now)
	if e.queues[name] == nil {
		return nil, 0, fmt.Errorf("%w: %s", ErrQueueNotFound, text.Quote(name))
	}
	r := &Record{Type: RecPurgeQueue, Time: e.now, Name: name}
	n, err := e.applyPurge(r)
	return r, n, err
}

func (e *Engine) applyPurge(r *Record) (int64, error) {
	q := e.queues[r.Name]
	if q == nil {
		return 0, ErrQueueNotFound
	}
	return e.purge(q), nil
}

// purge empties q. It visits every message once, to release its storage
// reference: O(n) for n messages, which is the only operation that is.
func (e *Engine) purge(q *queue) int64 {
	n := q.n.depth()
	ps := q.newPurgeSet()
	drop := func(en *entry) bool {
		e.unref(en.ref, en.size)
		if ps != nil {
			ps.add(en.seq)
		}
		return true
	}
	for p := range q.ready {
		q.ready[p].each(func(en *entry) bool {
			if !q.isGone(en) {
				drop(en)
			}
			return true
		})
		for i := range q.retry[p] {
			if en := &q.retry[p][i]; !q.isGone(en) {
				drop(en)
			}
		}
		q.ready[p] = fifo{}
		q.retry[p] = nil
	}
	for _, k := range q.keys {
		k.waiting.each(func(en *entry) bool {
			if !q.isGone(en) {
				drop(en)
			}
			return true
		})
	}
	for i := range q.delayed {
		drop(&q.delayed[i].e)
	}
	for _, l := range q.leaseQ {
		drop(&l.e)
	}
	q.mask = 0
	q.delayed, q.leaseQ, q.expiry = nil, nil, nil
	q.leases = make(map[uint64]*lease)
	q.expIx, q.gone, q.keys, q.activeKey, q.lastErr, q.dead, q.returned = nil, nil, nil, nil, nil, nil, nil
	q.due = nil
	q.aside = nil
	q.n = counts{}
	e.settlePurged(q, ps, e.now)
	e.reschedule(q)
	return n
}

// CreateTopic creates a topic.
func (e *Engine) CreateTopic(now int64, name string, cfg TopicConfig) (*Record, error) {
	e.advance(now)
	if err := e.nameFree(name); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Record{Type: RecCreateTopic, Time: e.now, Name: name, Topic: cfg}
	return r, e.applyCreateTopic(r)
}

func (e *Engine) applyCreateTopic(r *Record) error {
	if e.queues[r.Name] != nil || e.topics[r.Name] != nil {
		return ErrExists
	}
	e.topics[r.Name] = &topic{name: r.Name, cfg: r.Topic}
	return nil
}

// UpdateTopic replaces a topic's configuration.
func (e *Engine) UpdateTopic(now int64, name string, cfg TopicConfig) (*Record, error) {
	e.advance(now)
	if e.topics[name] == nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, text.Quote(name))
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if old := e.topics[name].cfg.Group; cfg.Group != old {
		return nil, fmt.Errorf("%w: the group of %s is %s: a topic's group is set at creation (tx.go)", ErrInvalidConfig, text.Quote(name), text.Quote(old))
	}
	r := &Record{Type: RecTopicConfig, Time: e.now, Name: name, Topic: cfg}
	return r, e.applyTopicConfig(r)
}

func (e *Engine) applyTopicConfig(r *Record) error {
	t := e.topics[r.Name]
	if t == nil {
		return ErrTopicNotFound
	}
	t.cfg = r.Topic
	if t.cfg.SessionWindow <= 0 {
		t.dedup.sess = sessions{} // turned off: forget them
	}
	return nil
}

// DeleteTopic deletes a topic. Its subscriptions' queues stay, as plain
// queues, with everything in them.
func (e *Engine) DeleteTopic(now int64, name string) (*Record, error) {
	e.advance(now)
	if e.topics[name] == nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, text.Quote(name))
	}
	r := &Record{Type: RecDeleteTopic, Time: e.now, Name: name}
	return r, e.applyDeleteTopic(r)
}

func (e *Engine) applyDeleteTopic(r *Record) error {
	t := e.topics[r.Name]
	if t == nil {
		return ErrTopicNotFound
	}
	for _, q := range t.subs {
		q.sub = nil
	}
	delete(e.topics, r.Name)
	return nil
}

// Subscribe creates queue sub as a subscription of topic: it receives every
// message published to the topic whose headers include every filter pair.
func (e *Engine) Subscribe(now int64, topicName, sub string, cfg QueueConfig, filter map[string]string) (*Record, error) {
	e.advance(now)
	if e.topics[topicName] == nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, text.Quote(topicName))
	}
	if err := e.nameFree(sub); err != nil {
		return nil, err
	}
	cfg, err := e.checkQueueConfig(sub, cfg)
	if err != nil {
		return nil, err
	}
	for k := range filter {
		if k == "" {
			return nil, fmt.Errorf("%w: empty header name in filter", ErrInvalidConfig)
		}
	}
	r := &Record{Type: RecSubscribe, Time: e.now, Name: topicName, Sub: sub, Queue: cfg, Filter: maps.Clone(filter)}
	return r, e.applySubscribe(r)
}

func (e *Engine) applySubscribe(r *Record) error {
	t := e.topics[r.Name]
	if t == nil {
		return ErrTopicNotFound
	}
	if e.queues[r.Sub] != nil || e.topics[r.Sub] != nil {
		return ErrExists
	}
	q := e.newQueue(r.Sub, r.Queue)
	q.sub = &subscription{topic: t, filter: r.Filter}
	t.subs = append(t.subs, q)
	return nil
}

// Unsubscribe deletes a subscription and its queue.
func (e *Engine) Unsubscribe(now int64, topicName, sub string) (*Record, error) {
	e.advance(now)
	if e.topics[topicName] == nil {
		return nil, fmt.Errorf("%w: %s", ErrTopicNotFound, text.Quote(topicName))
	}
	q := e.queues[sub]
	if q == nil || q.sub == nil || q.sub.topic.name != topicName {
		return nil, fmt.Errorf("%w: %s", ErrNotSubscription, text.Quote(sub))
	}
	r := &Record{Type: RecUnsubscribe, Time: e.now, Name: topicName, Sub: sub}
	return r, e.applyUnsubscribe(r)
}

func (e *Engine) applyUnsubscribe(r *Record) error {
	q := e.queues[r.Sub]
	if q == nil || q.sub == nil || q.sub.topic.name != r.Name {
		return ErrNotSubscription
	}
	return e.applyDeleteQueue(&Record{Name: r.Sub})
}

// deadLetterUsers lists the other queues whose dead-letter queue is name.
// It walks every queue: admin calls only, never a message path.
func (e *Engine) deadLetterUsers(name string) []string {
	var out []string
	for _, q := range e.queues {
		if q.name != name && q.cfg.DeadLetterQueue == name {
			out = append(out, q.name)
		}
	}
	slices.Sort(out)
	return out
}
