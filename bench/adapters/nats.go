package adapters

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is NATS JetStream under comparison, at a server the caller started.
// Each queue is a file-storage stream with default settings, on its own
// connection. Note that nats-server's default sync_interval is 2 minutes:
// with it a JetStream ack does not mean the message is on disk (configure
// the server with sync_interval: always to compare durable acks).
type NATS struct {
	url string
}

// NewNATS compares the NATS server at url (e.g. nats://127.0.0.1:4222).
func NewNATS(url string) *NATS { return &NATS{url: url} }

// Name implements System.
func (n *NATS) Name() string { return "nats jetstream" }

// NewQueue implements System: a new stream BENCH<nanoseconds> on a new
// connection that allows opts.InFlight async publishes pending.
func (n *NATS) NewQueue(ctx context.Context, opts QueueOptions) (Queue, error) {
	nc, err := nats.Connect(n.url)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(opts.InFlight, 1)))
	if err != nil {
		nc.Close()
		return nil, err
	}
	name := fmt.Sprintf("BENCH%d", time.Now().UnixNano())
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("create stream: %w", err)
	}
	return &natsQueue{nc: nc, js: js, stream: stream, name: name, subject: name + ".msgs"}, nil
}

type natsQueue struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	subject string
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

type natsConfirm struct{ f jetstream.PubAckFuture }

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

// Fill implements Queue: async publishes, as many in flight as the queue
// was created for (QueueOptions.InFlight), then waits for all acks.
func (q *natsQueue) Fill(ctx context.Context, n, size int) error {
	body := make([]byte, size)
	for range n {
		if _, err := q.js.PublishAsync(q.subject, body); err != nil {
			return err
		}
	}
	select {
	case <-q.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Len implements Queue.
func (q *natsQueue) Len(ctx context.Context) (int64, error) {
	info, err := q.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// Delete implements Queue: deletes the stream and closes the connection.
func (q *natsQueue) Delete(ctx context.Context) error {
	defer q.nc.Close()
	return q.js.DeleteStream(ctx, q.name)
}
