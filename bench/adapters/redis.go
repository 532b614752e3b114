package adapters

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is Redis Streams under comparison, through go-redis v9.
//
// Durability: with the server bench/peers starts (appendonly yes,
// appendfsync always) Redis writes and fsyncs the AOF once per event-loop
// turn, before it sends the replies of the commands that turn ran: a reply
// to XADD means the entry is on disk, as a chute confirm does.
//
// Client calls:
//   - a queue is a stream with consumer groups created up front (XGROUP
//     CREATE … 0 MKSTREAM): "work" for a plain queue, "sub<i>" for each
//     subscription of a topic (fan-out: every group reads every entry).
//   - Producer: XADD pipelined. Publishes go onto a channel; four sender
//     goroutines (fewer for a smaller window) each take what is queued, up
//     to the window, and send it as one go-redis pipeline on a connection
//     of their own, calling done from each reply. While one pipeline waits
//     for its fsync the next one fills, so the server fsyncs large batches
//     and each message still waits for its own reply. (One goroutine per
//     publish costs a connection and a round trip each; a single pipeline
//     at a time leaves the connection idle during every fsync.) Measured
//     2026-11-30 on the 2-core machine, 20,000 × 256 B, window 1,000,
//     medians of 5 interleaved runs under load: 1 sender 19.5k/s, 2 27.0k/s,
//     4 35.0k/s, 8 34.3k/s, 16 34.4k/s.
//   - Consumer: XREADGROUP GROUP g c COUNT (prefetch − unacked) BLOCK wait
//     STREAMS key >. Redis does not bound what a consumer holds: the
//     adapter does, by asking only for what the prefetch has room for.
//   - Ack: one pipeline of XACK with every id, plus XDEL of the same ids for
//     a plain queue (a queue forgets what was acked, as chute does; Redis
//     7.0 has no XACKDEL). A topic's entries stay until Delete: deleting
//     an entry needs every group to have acked it.
//   - Len: XLEN, the entries the stream holds (for a plain queue: unread
//     plus delivered-but-unacked; for a topic: all published).
//   - Publish: one XADD (one pooled connection per concurrent publisher);
//     Fill: a Producer with window 1024.
//   - connections: one go-redis client (a pool of up to redisPoolSize
//     connections, opened as needed) shared by the System's queues.
type Redis struct {
	client *shared[*redis.Client]
}

// redisPoolSize caps the shared client's pool: enough for the many-
// publishers workload's 256 concurrent XADDs, or the many-queues
// workload's pipelines in flight (at most one per unconfirmed message) and
// its consumers' reads; a command waits for a free connection up to
// go-redis's pool timeout (4 s). Connections open only when needed.
const redisPoolSize = 2048

// NewRedis compares the Redis server at addr (host:port). Use ForPeer for
// a server started by bench/peers: that System also implements Server.
func NewRedis(addr string) *Redis {
	return &Redis{client: newShared(func() (*redis.Client, error) {
		return redis.NewClient(&redis.Options{
			Addr:            addr,
			PoolSize:        redisPoolSize,
			DisableIdentity: true, // CLIENT SETINFO is Redis 7.2+
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled, // a cluster-upgrade feature
			},
		}), nil
	}, func(c *redis.Client) { c.Close() })}
}

// Name implements System.
func (r *Redis) Name() string { return "redis streams" }

// NewQueue implements System: a stream bench:<nanoseconds> with its
// consumer groups, on the System's shared client.
func (r *Redis) NewQueue(ctx context.Context, opts QueueOptions) (Queue, error) {
	rdb, err := r.client.acquire()
	if err != nil {
		return nil, err
	}
	q := &redisQueue{sys: r, rdb: rdb, key: fmt.Sprintf("bench:%d", time.Now().UnixNano()), opts: opts}
	for _, g := range q.groups() {
		if err := rdb.XGroupCreateMkStream(ctx, q.key, g, "0").Err(); err != nil {
			r.client.release()
			return nil, fmt.Errorf("create group %s: %w", g, err)
		}
	}
	return q, nil
}

// redisQueue is one stream and the client its producers and consumers use
// (they must be closed before Delete).
type redisQueue struct {
	deleted atomic.Bool // set by the first Delete; later ones do nothing
	sys     *Redis
	rdb     *redis.Client
	key     string
	opts    QueueOptions
}

// groups returns the queue's consumer group names: one per subscription.
func (q *redisQueue) groups() []string {
	if q.opts.Subscriptions == 0 {
		return []string{"work"}
	}
	gs := make([]string, q.opts.Subscriptions)
	for i := range gs {
		gs[i] = fmt.Sprintf("sub%d", i)
	}
	return gs
}

// redisField is the stream entry field that holds the body.
const redisField = "b"

// Publish implements Publisher: one XADD.
func (q *redisQueue) Publish(ctx context.Context, body []byte) error {
	return q.rdb.XAdd(ctx, &redis.XAddArgs{Stream: q.key, Values: []any{redisField, body}}).Err()
}

// Fill implements Queue: a Producer with 1,024 publishes in flight.
func (q *redisQueue) Fill(ctx context.Context, n, size int) error {
	p, err := q.NewProducer(ctx, 1024)
	if err != nil {
		return err
	}
	return fillWith(ctx, p, n, size)
}

// Len implements Queue: XLEN.
func (q *redisQueue) Len(ctx context.Context) (int64, error) {
	return q.rdb.XLen(ctx, q.key).Result()
}

// Delete implements Queue: DEL the stream (its groups go with it) and
// give back the shared client.
func (q *redisQueue) Delete(ctx context.Context) error {
	if !q.deleted.CompareAndSwap(false, true) {
		return nil
	}
	defer q.sys.client.release()
	return q.rdb.Del(ctx, q.key).Err()
}

// redisSenders is how many pipelines a Producer keeps in flight at once.
const redisSenders = 4

// NewProducer implements Streams: pipelined XADDs, at most window unreplied.
func (q *redisQueue) NewProducer(_ context.Context, window int) (Producer, error) {
	window = max(window, 1)
	p := &redisProducer{
		rdb: q.rdb, key: q.key, sem: make(sem, window),
		reqs: make(chan redisPub, window),
	}
	for range min(redisSenders, window) {
		p.senders.Add(1)
		go p.send()
	}
	return p, nil
}

// redisProducer implements Producer. Publish, Flush and Close are called
// from one goroutine at a time (the Producer contract); the senders are
// owned by the producer and stopped by Close.
type redisProducer struct {
	rdb     *redis.Client
	key     string
	sem     sem
	reqs    chan redisPub // publishes not yet sent; closed by Close
	senders sync.WaitGroup
	closed  bool // set by Close; guarded by the single-caller contract
}

// redisPub is one publish waiting to be sent.
type redisPub struct {
	body []byte // a copy: the caller may reuse its buffer
	done func(error)
}

// Publish implements Producer.
func (p *redisProducer) Publish(ctx context.Context, body []byte, done func(error)) error {
	if p.closed {
		return ErrProducerClosed
	}
	if err := p.sem.acquire(ctx); err != nil {
		return err
	}
	p.reqs <- redisPub{body: append([]byte(nil), body...), done: done}
	return nil
}

// send takes what is queued, up to the window, sends it as one pipeline
// and completes each publish from its reply, until reqs is closed.
func (p *redisProducer) send() {
	defer p.senders.Done()
	batch := make([]redisPub, 0, cap(p.reqs))
	for first := range p.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-p.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		pipe := p.rdb.Pipeline()
		for _, r := range batch {
			pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: p.key, Values: []any{redisField, r.body}})
		}
		cmds, _ := pipe.Exec(context.Background()) // each command carries its own error
		for i, r := range batch {
			if r.done != nil {
				r.done(cmds[i].Err())
			}
			p.sem.release()
		}
	}
}

// Flush implements Producer.
func (p *redisProducer) Flush(ctx context.Context) error { return p.sem.flush(ctx) }

// Close implements Producer: publishes already queued are still sent and
// completed; then the senders exit.
func (p *redisProducer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.reqs)
	p.senders.Wait()
	return nil
}

// consumerSeq names Redis consumers uniquely within a process.
var consumerSeq atomic.Int64

// NewConsumer implements Streams: a consumer of group sub ("work" for a
// plain queue).
func (q *redisQueue) NewConsumer(_ context.Context, sub, prefetch int) (Consumer, error) {
	groups := q.groups()
	if sub < 0 || sub >= len(groups) {
		return nil, fmt.Errorf("subscription %d of %d", sub, len(groups))
	}
	return &redisConsumer{
		rdb: q.rdb, key: q.key, group: groups[sub],
		name:     fmt.Sprintf("c%d", consumerSeq.Add(1)),
		prefetch: int64(max(prefetch, 1)), del: q.opts.Subscriptions == 0,
	}, nil
}

// redisConsumer implements Consumer.
type redisConsumer struct {
	rdb      *redis.Client
	key      string
	group    string
	name     string
	prefetch int64
	del      bool         // XDEL acked entries (plain queue)
	held     atomic.Int64 // received and not yet acked
}

// Receive implements Consumer: XREADGROUP for up to the room left in the
// prefetch, blocking at most wait (rounded up to Redis's millisecond).
func (c *redisConsumer) Receive(ctx context.Context, wait time.Duration) ([]Message, error) {
	room := c.prefetch - c.held.Load()
	if room <= 0 {
		// Everything the prefetch allows is held: nothing can arrive until
		// an Ack, as with a broker that stops delivering.
		return waitEmpty(ctx, wait)
	}
	block := time.Duration(-1) // no BLOCK: return at once
	if wait > 0 {
		block = max(wait.Round(time.Millisecond), time.Millisecond)
	}
	res, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.group, Consumer: c.name, Streams: []string{c.key, ">"},
		Count: room, Block: block,
	}).Result()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, s := range res {
		for _, m := range s.Messages {
			b, _ := m.Values[redisField].(string)
			out = append(out, Message{Body: []byte(b), Handle: m.ID})
		}
	}
	c.held.Add(int64(len(out)))
	return out, nil
}

// waitEmpty returns no messages once wait has passed or ctx ended.
func waitEmpty(ctx context.Context, wait time.Duration) ([]Message, error) {
	if wait <= 0 {
		return nil, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Ack implements Consumer: one pipeline of XACK (and XDEL for a plain
// queue) with every id.
func (c *redisConsumer) Ack(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		id, ok := m.Handle.(string)
		if !ok {
			return fmt.Errorf("ack: %T is not a redis stream id", m.Handle)
		}
		ids[i] = id
	}
	pipe := c.rdb.Pipeline()
	pipe.XAck(ctx, c.key, c.group, ids...)
	if c.del {
		pipe.XDel(ctx, c.key, ids...)
	}
	_, err := pipe.Exec(ctx)
	c.held.Add(-int64(len(msgs)))
	return err
}

// Close implements Consumer. Entries it received and did not ack stay
// pending in the group (Redis has no redelivery without XCLAIM).
func (c *redisConsumer) Close() error { return nil }
