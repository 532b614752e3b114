package adapters

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// Chute is chute under comparison, through its public packages only.
//
// Embedded (NewChuteEmbedded) each queue is a fresh broker with its own
// journal in a directory under dir, as `chute bench` runs it, so that no
// run inherits another's journal or cache. Through an API (NewChuteAPI:
// a *client.Client dialled to a `chute serve`) each queue is a new queue
// on that server, deleted afterwards.
type Chute struct {
	name string
	dir  string         // embedded: the parent of each queue's journal
	opts broker.Options // embedded: options of each queue's broker
	api  chute.API      // through an API: the server
	seq  atomic.Int64   // numbers queues
}

// NewChuteEmbedded compares chute embedded in this process, with journals
// under dir (which the caller creates and removes). opts may be nil.
func NewChuteEmbedded(dir string, opts *broker.Options) *Chute {
	c := &Chute{name: "chute embedded", dir: dir}
	if opts != nil {
		c.opts = *opts
	}
	return c
}

// NewChuteAPI compares chute through api, usually a *client.Client; name
// labels its results ("chute network").
func NewChuteAPI(name string, api chute.API) *Chute {
	return &Chute{name: name, api: api}
}

// Name implements System.
func (c *Chute) Name() string { return c.name }

// NewQueue implements System. The queue has the default configuration, as
// in `chute bench`.
func (c *Chute) NewQueue(ctx context.Context, _ QueueOptions) (Queue, error) {
	n := c.seq.Add(1)
	if c.api != nil {
		name := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n)
		if err := c.api.CreateQueue(ctx, name, chute.QueueConfig{}); err != nil {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		return &chuteQueue{api: c.api, name: name, del: func(ctx context.Context) error {
			if err := c.api.DeleteQueue(ctx, name); err != nil {
				return err
			}
			// The dead-letter queue the default configuration made.
			return c.api.DeleteQueue(ctx, name+chute.DeadLetterSuffix)
		}}, nil
	}
	dir := filepath.Join(c.dir, fmt.Sprintf("queue-%d", n))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	opts := c.opts
	b, err := broker.Open(dir, &opts)
	if err != nil {
		return nil, fmt.Errorf("open broker: %w", err)
	}
	q := &embeddedQueue{chuteQueue{api: b, name: "bench", del: func(context.Context) error {
		err := b.Close()
		if rerr := os.RemoveAll(dir); err == nil {
			err = rerr
		}
		return err
	}}, b}
	if err := b.CreateQueue(ctx, q.name, chute.QueueConfig{}); err != nil {
		q.del(ctx)
		return nil, fmt.Errorf("create queue: %w", err)
	}
	return q, nil
}

// chuteQueue is one queue through the chute.API.
type chuteQueue struct {
	api  chute.API
	name string
	del  func(context.Context) error
}

// fillBatch is how many messages one publish of Fill carries.
const fillBatch = 100

// Publish implements Publisher: one message per publish, confirmed when
// durable per the broker's sync policy.
func (q *chuteQueue) Publish(ctx context.Context, body []byte) error {
	_, err := q.api.Publish(ctx, q.name, chute.Message{Body: body})
	return err
}

// Fill implements Queue, with publishes of fillBatch messages.
func (q *chuteQueue) Fill(ctx context.Context, n, size int) error {
	body := make([]byte, size)
	msgs := make([]chute.Message, fillBatch)
	for i := range msgs {
		msgs[i] = chute.Message{Body: body}
	}
	for done := 0; done < n; done += fillBatch {
		if _, err := q.api.Publish(ctx, q.name, msgs[:min(fillBatch, n-done)]...); err != nil {
			return err
		}
	}
	return nil
}

// Len implements Queue.
func (q *chuteQueue) Len(ctx context.Context) (int64, error) {
	s, err := q.api.QueueStats(ctx, q.name)
	return s.Depth(), err
}

// Delete implements Queue.
func (q *chuteQueue) Delete(ctx context.Context) error { return q.del(ctx) }

// embeddedQueue is a queue of its own embedded broker, whose journal
// counters it can read.
type embeddedQueue struct {
	chuteQueue
	b *broker.Broker
}

// Syncs implements SyncCounter.
func (q *embeddedQueue) Syncs() (syncs, records int64) {
	s := q.b.JournalStats()
	return s.Syncs, s.Records
}
