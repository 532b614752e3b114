package adapters

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// RabbitMQ is RabbitMQ under comparison, through amqp091-go.
//
// Durability: every queue is a quorum queue (x-queue-type=quorum), the
// durable, replicated queue type RabbitMQ recommends; on a single node a
// quorum queue appends each message to its Raft WAL and fsyncs it before
// the publisher confirm is sent, so a confirm means the message is on disk,
// as a chute confirm does. Messages are published persistent.
//
// Client calls:
//   - a plain queue is one quorum queue, published to through the default
//     exchange; a topic with N subscriptions is a durable fanout exchange
//     bound to N quorum queues, one per subscription.
//   - connections: the System's queues share one connection (declare,
//     Publish, Len, Delete: a channel each), its Producers another and its
//     Consumers a third (RabbitMQ advises publishing and consuming on
//     separate connections), each Producer or Consumer on a channel of its
//     own. RabbitMQ allows 2,047 channels per connection: a System serves
//     up to about 2,000 live queues, producers and consumers of each kind.
//   - Producer: a channel in confirm mode, at most
//     window publishes unconfirmed. Each basic.publish returns amqp091-go's
//     deferred confirmation, which the client resolves from the broker's
//     basic.ack/basic.nack, expanding multiple=true into every tag up to the
//     one acked; one goroutine waits for them in publish order and calls
//     done (a nack fails the publish with ErrNacked).
//   - Consumer: a channel with basic.qos(prefetch) and
//     basic.consume with manual acks; Receive drains what has arrived on
//     the delivery channel. Ack sends one basic.ack multiple=true for the
//     highest tag when the batch is exactly the tags after the last one
//     acked (the common case: in order, nothing held back), and one
//     basic.ack per tag otherwise, since multiple=true acks every earlier
//     tag too.
//   - Publish: basic.publish on the queue's shared confirm channel and
//     wait for its confirm; Fill: a Producer with window 1024.
//   - Len: the ready messages of the (first subscription's) queue, from a
//     passive queue.declare; RabbitMQ does not count unacked ones there.
type RabbitMQ struct {
	// The connections shared by the System's queues, producers and
	// consumers.
	queues, producers, consumers *shared[*amqp.Connection]
}

// NewRabbitMQ compares the RabbitMQ server at url
// (amqp://guest:guest@127.0.0.1:5672/). Use ForPeer for a server started
// by bench/peers: that System also implements Server.
func NewRabbitMQ(url string) *RabbitMQ {
	dial := func() (*amqp.Connection, error) {
		conn, err := amqp.Dial(url)
		if err != nil {
			return nil, fmt.Errorf("connect to rabbitmq: %w", err)
		}
		return conn, nil
	}
	closeConn := func(c *amqp.Connection) { c.Close() }
	return &RabbitMQ{
		queues:    newShared(dial, closeConn),
		producers: newShared(dial, closeConn),
		consumers: newShared(dial, closeConn),
	}
}

// Name implements System.
func (r *RabbitMQ) Name() string { return "rabbitmq quorum" }

// quorumArgs declares a quorum queue.
var quorumArgs = amqp.Table{"x-queue-type": "quorum"}

// NewQueue implements System: quorum queue bench-<nanoseconds>, or a
// fanout exchange of that name with quorum queues bench-<n>.sub<i>, on
// the System's queue connection.
func (r *RabbitMQ) NewQueue(ctx context.Context, opts QueueOptions) (Queue, error) {
	conn, err := r.queues.acquire()
	if err != nil {
		return nil, err
	}
	q := &rabbitQueue{sys: r, conn: conn, opts: opts}
	if err := q.declare(fmt.Sprintf("bench-%d", time.Now().UnixNano())); err != nil {
		if q.ch != nil {
			q.ch.Close()
		}
		r.queues.release()
		return nil, err
	}
	return q, nil
}

// rabbitQueue is one destination; ch, on the System's queue connection,
// serves Publish; Len and Delete open channels of their own.
type rabbitQueue struct {
	deleted  atomic.Bool // set by the first Delete; later ones do nothing
	sys      *RabbitMQ
	conn     *amqp.Connection
	ch       *amqp.Channel // in confirm mode
	opts     QueueOptions
	exchange string   // "" (default exchange) for a plain queue
	key      string   // routing key: the queue for a plain queue
	queues   []string // one per subscription (one for a plain queue)
}

// declare creates the queue or the exchange and its queues.
func (q *rabbitQueue) declare(name string) error {
	ch, err := q.conn.Channel()
	if err != nil {
		return err
	}
	q.ch = ch
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	if q.opts.Subscriptions == 0 {
		if _, err := ch.QueueDeclare(name, true, false, false, false, quorumArgs); err != nil {
			return fmt.Errorf("declare queue %s: %w", name, err)
		}
		q.key, q.queues = name, []string{name}
		return nil
	}
	if err := ch.ExchangeDeclare(name, "fanout", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", name, err)
	}
	q.exchange = name
	for i := range q.opts.Subscriptions {
		qn := fmt.Sprintf("%s.sub%d", name, i)
		if _, err := ch.QueueDeclare(qn, true, false, false, false, quorumArgs); err != nil {
			return fmt.Errorf("declare queue %s: %w", qn, err)
		}
		if err := ch.QueueBind(qn, "", name, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", qn, err)
		}
		q.queues = append(q.queues, qn)
	}
	return nil
}

// publishing wraps body as a persistent message.
func publishing(body []byte) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}
}

// Publish implements Publisher: basic.publish on the shared confirm
// channel, waiting for its confirm.
func (q *rabbitQueue) Publish(ctx context.Context, body []byte) error {
	dc, err := q.ch.PublishWithDeferredConfirmWithContext(ctx, q.exchange, q.key, false, false, publishing(body))
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNacked
	}
	return nil
}

// Fill implements Queue: a Producer with 1,024 publishes in flight.
func (q *rabbitQueue) Fill(ctx context.Context, n, size int) error {
	p, err := q.NewProducer(ctx, 1024)
	if err != nil {
		return err
	}
	return fillWith(ctx, p, n, size)
}

// Len implements Queue: ready messages of the first queue, by a passive
// declare on a channel of its own (a failed passive declare closes the
// channel).
func (q *rabbitQueue) Len(ctx context.Context) (int64, error) {
	ch, err := q.conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	info, err := ch.QueueDeclarePassive(q.queues[0], true, false, false, false, quorumArgs)
	if err != nil {
		return 0, err
	}
	return int64(info.Messages), nil
}

// Delete implements Queue: deletes the queues and the exchange, closes
// the queue's channel and gives back the shared connection.
func (q *rabbitQueue) Delete(ctx context.Context) error {
	if !q.deleted.CompareAndSwap(false, true) {
		return nil
	}
	defer q.sys.queues.release()
	q.ch.Close()
	ch, err := q.conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	for _, qn := range q.queues {
		if _, err := ch.QueueDelete(qn, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", qn, err)
		}
	}
	if q.exchange != "" {
		if err := ch.ExchangeDelete(q.exchange, false, false); err != nil {
			return fmt.Errorf("delete exchange %s: %w", q.exchange, err)
		}
	}
	return nil
}

// NewProducer implements Streams: a confirm-mode channel on the System's
// producer connection, at most window unconfirmed.
func (q *rabbitQueue) NewProducer(_ context.Context, window int) (Producer, error) {
	conn, err := q.sys.producers.acquire()
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		if err = ch.Confirm(false); err != nil {
			ch.Close()
		}
	}
	if err != nil {
		q.sys.producers.release()
		return nil, fmt.Errorf("confirm channel: %w", err)
	}
	return &rabbitProducer{conn: q.sys.producers, ch: ch, exchange: q.exchange, key: q.key, w: newWindow(window)}, nil
}

// rabbitProducer implements Producer. Publish, Flush and Close are called
// from one goroutine at a time (the Producer contract); done calls come
// from the window's goroutine.
type rabbitProducer struct {
	conn     *shared[*amqp.Connection] // released by Close
	ch       *amqp.Channel
	exchange string
	key      string
	w        *window
	closed   bool // set by Close; guarded by the single-caller contract
}

// Publish implements Producer.
func (p *rabbitProducer) Publish(ctx context.Context, body []byte, done func(error)) error {
	if p.closed {
		return ErrProducerClosed
	}
	if err := p.w.acquire(ctx); err != nil {
		return err
	}
	dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, p.exchange, p.key, false, false, publishing(body))
	if err != nil {
		p.w.release()
		return err
	}
	p.w.push(confirmation{done: done, wait: func(stop <-chan struct{}) error {
		select {
		case <-dc.Done():
			if !dc.Acked() {
				return ErrNacked
			}
			return nil
		case <-stop:
			return ErrProducerClosed
		}
	}})
	return nil
}

// Flush implements Producer.
func (p *rabbitProducer) Flush(ctx context.Context) error { return p.w.flush(ctx) }

// Close implements Producer: publishes still unconfirmed fail with
// ErrProducerClosed; the channel is closed and the shared connection given
// back.
func (p *rabbitProducer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.w.close()
	err := p.ch.Close()
	p.conn.release()
	return err
}

// NewConsumer implements Streams: basic.consume of sub's queue with
// basic.qos(prefetch), on a channel of the System's consumer connection.
func (q *rabbitQueue) NewConsumer(_ context.Context, sub, prefetch int) (Consumer, error) {
	if sub < 0 || sub >= len(q.queues) {
		return nil, fmt.Errorf("subscription %d of %d", sub, len(q.queues))
	}
	prefetch = max(prefetch, 1)
	conn, err := q.sys.consumers.acquire()
	if err != nil {
		return nil, err
	}
	c := &rabbitConsumer{conn: q.sys.consumers, prefetch: prefetch, above: map[uint64]bool{}}
	if err := c.start(conn, q.queues[sub]); err != nil {
		if c.ch != nil {
			c.ch.Close()
		}
		q.sys.consumers.release()
		return nil, err
	}
	return c, nil
}

// rabbitConsumer implements Consumer.
type rabbitConsumer struct {
	conn       *shared[*amqp.Connection] // released by Close
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
	prefetch   int

	mu sync.Mutex // guards the ack state below
	// ackedTo is the highest tag such that it and every tag below it are
	// acked; above holds acked tags beyond it.
	ackedTo uint64
	above   map[uint64]bool
}

// start opens a channel on conn and starts consuming queue.
func (c *rabbitConsumer) start(conn *amqp.Connection, queue string) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	c.ch = ch
	if err := ch.Qos(c.prefetch, 0, false); err != nil {
		return fmt.Errorf("qos: %w", err)
	}
	c.deliveries, err = ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}
	return nil
}

// Receive implements Consumer.
func (c *rabbitConsumer) Receive(ctx context.Context, wait time.Duration) ([]Message, error) {
	ds, err := receive(ctx, c.deliveries, wait, c.prefetch, ErrConsumerClosed)
	if len(ds) == 0 {
		return nil, err
	}
	out := make([]Message, len(ds))
	for i, d := range ds {
		out[i] = Message{Body: d.Body, Handle: d.DeliveryTag}
	}
	return out, nil
}

// Ack implements Consumer: one multiple ack when msgs are exactly the tags
// following the last acked, else one ack per tag.
func (c *rabbitConsumer) Ack(_ context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	tags := make([]uint64, len(msgs))
	for i, m := range msgs {
		t, ok := m.Handle.(uint64)
		if !ok {
			return fmt.Errorf("ack: %T is not a delivery tag", m.Handle)
		}
		tags[i] = t
	}
	slices.Sort(tags)
	c.mu.Lock()
	defer c.mu.Unlock()
	last := tags[len(tags)-1]
	if len(c.above) == 0 && follows(tags, c.ackedTo) {
		if err := c.ch.Ack(last, true); err != nil {
			return err
		}
		c.ackedTo = last
		return nil
	}
	for _, t := range tags {
		if err := c.ch.Ack(t, false); err != nil {
			return err
		}
		c.above[t] = true
	}
	for c.above[c.ackedTo+1] {
		delete(c.above, c.ackedTo+1)
		c.ackedTo++
	}
	return nil
}

// follows reports whether sorted tags are exactly from+1, from+2, ….
func follows(tags []uint64, from uint64) bool {
	for i, t := range tags {
		if t != from+1+uint64(i) {
			return false
		}
	}
	return true
}

// Close implements Consumer: closes the channel (RabbitMQ requeues what
// was delivered and not acked) and gives back the shared connection.
func (c *rabbitConsumer) Close() error {
	err := c.ch.Close()
	c.conn.release()
	return err
}
