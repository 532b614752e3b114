package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSPublish runs the publish workload against a NATS JetStream server at
// url: a file-storage stream, and publishers that each keep one message in
// flight (async publish, waiting for its ack) — the same shape as chute's
// Publish. With window > 1 one connection keeps window publishes in flight
// instead (NATS's fastest way to publish with acks).
func NATSPublish(ctx context.Context, url string, publishers, window, size int, d time.Duration) (Result, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return Result{}, fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(window, publishers)))
	if err != nil {
		return Result{}, err
	}
	name := fmt.Sprintf("BENCH%d", time.Now().UnixNano())
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return Result{}, fmt.Errorf("create stream: %w", err)
	}
	defer js.DeleteStream(context.Background(), name)
	subject := name + ".msgs"
	body := make([]byte, size)
	var n atomic.Int64
	lat := newRecorder(max(publishers, 1))
	label := fmt.Sprintf("nats jetstream publish %d×%dB", publishers, size)
	if window > 1 {
		label = fmt.Sprintf("nats jetstream publish async window %d×%dB", window, size)
		publishers = 1
	}
	err = run(ctx, publishers, d, func(ctx context.Context, w int) error {
		if window > 1 {
			return natsWindow(ctx, js, subject, body, window, &n)
		}
		for ctx.Err() == nil {
			start := time.Now()
			f, err := js.PublishAsync(subject, body)
			if err != nil {
				return err
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return nil
			}
			lat.add(w, time.Since(start))
			n.Add(1)
		}
		return nil
	})
	info, ierr := stream.Info(context.Background())
	if ierr == nil && info.State.Msgs < uint64(n.Load()) {
		err = errors.Join(err, fmt.Errorf("stream holds %d messages, %d were acked", info.State.Msgs, n.Load()))
	}
	return Result{Name: label, Messages: n.Load(), Elapsed: d, Latency: lat.summary()}, err
}

// natsWindow keeps window async publishes in flight on one connection.
func natsWindow(ctx context.Context, js jetstream.JetStream, subject string, body []byte, window int, n *atomic.Int64) error {
	inflight := make(chan jetstream.PubAckFuture, window)
	done := make(chan error, 1)
	go func() {
		for f := range inflight {
			select {
			case <-f.Ok():
				n.Add(1)
			case err := <-f.Err():
				done <- err
				for range inflight {
				}
				return
			}
		}
		done <- nil
	}()
	var err error
	for ctx.Err() == nil {
		f, perr := js.PublishAsync(subject, body)
		if perr != nil {
			err = perr
			break
		}
		inflight <- f
	}
	close(inflight)
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}

// NATSFill publishes n messages of size bytes to a new file-storage stream
// (async, window in flight) and returns the stream's name, for backlog
// memory comparisons. The stream is left in place: delete it with
// NATSDeleteStream.
func NATSFill(ctx context.Context, url string, n, size, window int) (string, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return "", fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window))
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("BACKLOG%d", time.Now().UnixNano())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		return "", fmt.Errorf("create stream: %w", err)
	}
	body := make([]byte, size)
	for i := 0; i < n; i++ {
		if _, err := js.PublishAsync(name+".msgs", body); err != nil {
			return name, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return name, ctx.Err()
	}
	return name, nil
}

// NATSDeleteStream removes a stream made by NATSFill.
func NATSDeleteStream(ctx context.Context, url, name string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return js.DeleteStream(ctx, name)
}
