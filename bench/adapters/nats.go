package adapters

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is NATS JetStream under comparison, through nats.go's jetstream
// package.
//
// Durability: each queue is a file-storage stream, but nats-server 2.9
// acks a publish once the message is written to its block file, before
// any fsync, and syncs from a timer every 2 minutes (2.10 added
// sync_interval, which can be set to always; 2.9 has no such option). An
// ack therefore survives a server crash but not a machine crash, unlike
// chute's, Redis's (appendfsync always) or RabbitMQ's (quorum queues)
// here; results say so.
//
// Client calls:
//   - a plain queue is a stream with WorkQueue retention (a message is
//     removed once acked) and one durable pull consumer "work" shared by
//     its Consumers; a topic with N subscriptions is a stream with Limits
//     retention and one durable pull consumer "sub<i>" per subscription.
//     Consumers ack explicitly, with MaxAckPending = prefetch.
//   - connections: the System's queues share one (stream management,
//     Publish, Len), its Producers another and its Consumers a third, as an
//     application shares its connection.
//   - Producer: JetStream PublishAsync, at most window unacked (a token per
//     publish), acks waited in order by one goroutine that calls done.
//   - Consumer: Consumer.Consume (the client's continuous pull, batches of
//     up to prefetch) into a channel that Receive drains. Ack calls Msg.Ack
//     per message without waiting for the server: the client buffers acks
//     and flushes them together. AckAll
//     would send one ack per batch, but it also acks every earlier
//     delivery, including those another Consumer of the same durable, or an
//     earlier unacked batch, still holds.
//   - Publish: PublishAsync and wait; Fill: a Producer with window 1024.
type NATS struct {
	// The connections shared by the System's queues, producers and
	// consumers.
	queues, producers, consumers *shared[*nats.Conn]
	// replicas of each stream (0: 1), for a cluster (NewNATSReplicated).
	replicas int
}

// NewNATSReplicated compares a NATS cluster, reached at url, with streams
// of the given number of replicas.
func NewNATSReplicated(url string, replicas int) *NATS {
	n := NewNATS(url)
	n.replicas = replicas
	return n
}

// NewNATS compares the NATS server at url (e.g. nats://127.0.0.1:4222).
// Use ForPeer for a server started by bench/peers: that System also
// implements Server.
func NewNATS(url string) *NATS {
	dial := func() (*nats.Conn, error) {
		nc, err := nats.Connect(url)
		if err != nil {
			return nil, fmt.Errorf("connect to nats: %w", err)
		}
		return nc, nil
	}
	closeConn := func(nc *nats.Conn) { nc.Close() }
	return &NATS{
		queues:    newShared(dial, closeConn),
		producers: newShared(dial, closeConn),
		consumers: newShared(dial, closeConn),
	}
}

// Name implements System.
func (n *NATS) Name() string { return "nats jetstream" }

// NewQueue implements System: a new stream BENCH<nanoseconds>, with a
// JetStream context that allows opts.InFlight async publishes pending;
// WorkQueue retention for a plain queue, Limits retention for a topic.
func (n *NATS) NewQueue(ctx context.Context, opts QueueOptions) (Queue, error) {
	nc, err := n.queues.acquire()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(opts.InFlight, 1)))
	if err != nil {
		n.queues.release()
		return nil, err
	}
	name := fmt.Sprintf("BENCH%d", time.Now().UnixNano())
	retention := jetstream.WorkQueuePolicy
	if opts.Subscriptions > 0 {
		retention = jetstream.LimitsPolicy
	}
	cfg := jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
		Retention: retention, Replicas: max(n.replicas, 1),
	}
	stream, err := js.CreateStream(ctx, cfg)
	// A cluster just started elects its JetStream meta leader first:
	// until then, and until every server joined it, a stream cannot be
	// placed. Ask again for at most 30 s.
	for deadline := time.Now().Add(30 * time.Second); err != nil && n.replicas > 1 && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		stream, err = js.CreateStream(ctx, cfg)
	}
	if err != nil {
		n.queues.release()
		return nil, fmt.Errorf("create stream: %w", err)
	}
	return &natsQueue{sys: n, js: js, stream: stream, name: name, subject: name + ".msgs", opts: opts}, nil
}

// natsQueue is one stream; js (on the System's queue connection) serves
// Publish, Len and Delete.
type natsQueue struct {
	deleted atomic.Bool // set by the first Delete; later ones do nothing
	sys     *NATS
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	subject string
	opts    QueueOptions
}

// Publish implements Publisher: an async publish, waiting for its ack (so
// that many publishers share the connection as they would share a chute
// client).
func (q *natsQueue) Publish(ctx context.Context, body []byte) error {
	f, err := q.js.PublishAsync(q.subject, body)
	if err != nil {
		return err
	}
	return natsConfirm{f}.Wait(ctx)
}

// PublishAsync implements AsyncPublisher.
func (q *natsQueue) PublishAsync(_ context.Context, body []byte) (Confirm, error) {
	f, err := q.js.PublishAsync(q.subject, body)
	if err != nil {
		return nil, err
	}
	return natsConfirm{f}, nil
}

// natsConfirm implements Confirm with the client's future for one async
// publish.
type natsConfirm struct{ f jetstream.PubAckFuture }

// Wait implements Confirm: until the stream's ack or error, or ctx ends.
func (c natsConfirm) Wait(ctx context.Context) error {
	select {
	case <-c.f.Ok():
		return nil
	case err := <-c.f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fill implements Queue: a Producer with 1,024 publishes in flight, then
// waits for all acks.
func (q *natsQueue) Fill(ctx context.Context, n, size int) error {
	p, err := q.NewProducer(ctx, 1024)
	if err != nil {
		return err
	}
	return fillWith(ctx, p, n, size)
}

// fillWith publishes n bodies of size bytes through p, waits until all are
// confirmed, closes p and returns the first failure.
func fillWith(ctx context.Context, p Producer, n, size int) (err error) {
	defer func() {
		if cerr := p.Close(); err == nil {
			err = cerr
		}
	}()
	body := make([]byte, size)
	failed := make(chan error, 1)
	done := func(err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	for range n {
		if err := p.Publish(ctx, body, done); err != nil {
			return err
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-failed:
		return fmt.Errorf("fill: %w", err)
	default:
		return nil
	}
}

// Len implements Queue: the messages the stream holds (for a plain queue,
// those not yet acked).
func (q *natsQueue) Len(ctx context.Context) (int64, error) {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// Delete implements Queue: deletes the stream (and its consumers) and
// gives back the shared connection.
func (q *natsQueue) Delete(ctx context.Context) error {
	if !q.deleted.CompareAndSwap(false, true) {
		return nil
	}
	defer q.sys.queues.release()
	q.js.CleanupPublisher()
	return q.js.DeleteStream(ctx, q.name)
}

// NewProducer implements Streams: PublishAsync on the System's producer
// connection, at most window unacked.
func (q *natsQueue) NewProducer(ctx context.Context, window int) (Producer, error) {
	window = max(window, 1)
	nc, err := q.sys.producers.acquire()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		q.sys.producers.release()
		return nil, err
	}
	return &natsProducer{conn: q.sys.producers, js: js, subject: q.subject, w: newWindow(window)}, nil
}

// natsProducer implements Producer. Publish and Flush are called from one
// goroutine at a time (the Producer contract); done calls come from the
// window's goroutine.
type natsProducer struct {
	conn    *shared[*nats.Conn] // released by Close
	js      jetstream.JetStream
	subject string
	w       *window
	closed  bool // set by Close; guarded by the single-caller contract
}

// Publish implements Producer.
func (p *natsProducer) Publish(ctx context.Context, body []byte, done func(error)) error {
	if p.closed {
		return ErrProducerClosed
	}
	if err := p.w.acquire(ctx); err != nil {
		return err
	}
	f, err := p.js.PublishAsync(p.subject, body)
	if err != nil {
		p.w.release()
		return err
	}
	p.w.push(confirmation{done: done, wait: func(stop <-chan struct{}) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return err
		case <-stop:
			return ErrProducerClosed
		}
	}})
	return nil
}

// Flush implements Producer.
func (p *natsProducer) Flush(ctx context.Context) error { return p.w.flush(ctx) }

// Close implements Producer: publishes still unacked fail with
// ErrProducerClosed; the shared connection is given back.
func (p *natsProducer) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.w.close()
	p.js.CleanupPublisher()
	p.conn.release()
	return nil
}

// NewConsumer implements Streams: the durable pull consumer of sub
// ("work" for a plain queue, "sub<i>" for a topic), created or updated with
// MaxAckPending prefetch, consumed continuously on the System's consumer
// connection.
func (q *natsQueue) NewConsumer(ctx context.Context, sub, prefetch int) (Consumer, error) {
	prefetch = max(prefetch, 1)
	durable := "work"
	if q.opts.Subscriptions > 0 {
		if sub < 0 || sub >= q.opts.Subscriptions {
			return nil, fmt.Errorf("subscription %d of %d", sub, q.opts.Subscriptions)
		}
		durable = fmt.Sprintf("sub%d", sub)
	}
	nc, err := q.sys.consumers.acquire()
	if err != nil {
		return nil, err
	}
	c := &natsConsumer{conn: q.sys.consumers, nc: nc, msgs: make(chan jetstream.Msg, prefetch), quit: make(chan struct{}), prefetch: prefetch}
	if err := c.start(ctx, q.name, durable); err != nil {
		q.sys.consumers.release()
		return nil, err
	}
	return c, nil
}

// natsConsumer implements Consumer: the client's Consume callback puts
// each message on msgs, which Receive drains. msgs holds prefetch, as many
// as the server sends unacked (MaxAckPending), so the callback never
// blocks for long.
type natsConsumer struct {
	conn     *shared[*nats.Conn] // released by Close
	nc       *nats.Conn
	cc       jetstream.ConsumeContext
	msgs     chan jetstream.Msg
	quit     chan struct{} // closed by Close: a callback blocked on msgs returns
	prefetch int
}

// start creates or updates the durable and starts consuming it.
func (c *natsConsumer) start(ctx context.Context, stream, durable string) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, MaxAckPending: c.prefetch,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", durable, err)
	}
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case c.msgs <- m:
		case <-c.quit:
		}
	}, jetstream.PullMaxMessages(c.prefetch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", durable, err)
	}
	return nil
}

// Receive implements Consumer.
func (c *natsConsumer) Receive(ctx context.Context, wait time.Duration) ([]Message, error) {
	ms, err := receive(ctx, c.msgs, wait, c.prefetch, ErrConsumerClosed)
	if len(ms) == 0 {
		return nil, err
	}
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = Message{Body: m.Data(), Handle: m}
	}
	return out, nil
}

// Ack implements Consumer: Msg.Ack for each, not waiting for the server.
func (c *natsConsumer) Ack(_ context.Context, msgs []Message) error {
	var first error
	for _, m := range msgs {
		jm, ok := m.Handle.(jetstream.Msg)
		if !ok {
			return fmt.Errorf("ack: %T is not a nats message", m.Handle)
		}
		if err := jm.Ack(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close implements Consumer: stops consuming, waits for the client to
// stop, and gives back the shared connection. Unacked messages are redelivered to
// another consumer after the ack wait.
func (c *natsConsumer) Close() error {
	close(c.quit)
	c.cc.Stop()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-c.cc.Closed():
	case <-t.C:
	}
	c.conn.release()
	return nil
}
