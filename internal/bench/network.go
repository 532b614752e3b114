package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// ProducerPublish runs publishers goroutines that each publish size-byte
// messages one at a time through one shared client.Producer, waiting for
// each confirmation, for d: the same shape of load as Publish, with the
// producer batching what the goroutines have in flight.
func ProducerPublish(ctx context.Context, api chute.API, target string, publishers, size int, d time.Duration, opts client.ProducerOptions) (Result, error) {
	p := client.NewProducer(api, target, opts)
	defer p.Close(context.Background())
	body := make([]byte, size)
	var n atomic.Int64
	lat := newRecorder(publishers)
	err := run(ctx, publishers, d, func(ctx context.Context, w int) error {
		for ctx.Err() == nil {
			start := time.Now()
			f, err := p.Publish(ctx, chute.Message{Body: body})
			if err != nil {
				return err
			}
			if _, err := f.Wait(ctx); err != nil {
				return err
			}
			lat.add(w, time.Since(start))
			n.Add(1)
		}
		return nil
	})
	return Result{Name: fmt.Sprintf("producer %d×%dB", publishers, size), Messages: n.Load(), Elapsed: d, Latency: lat.summary()}, err
}

// Drain consumes a filled queue with consumers goroutines that receive up
// to batch messages and ack them together, until n messages are acked or
// ctx ends; it returns the rate.
func Drain(ctx context.Context, api chute.API, queue string, consumers, batch int, n int64) (Result, error) {
	var acked atomic.Int64
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := run(ctx, consumers, 24*time.Hour, func(ctx context.Context, _ int) error {
		receipts := make([]string, 0, batch)
		for ctx.Err() == nil {
			ds, err := api.Receive(ctx, queue, chute.ReceiveOptions{Max: batch, Wait: 100 * time.Millisecond})
			if err != nil {
				return err
			}
			receipts = receipts[:0]
			for _, d := range ds {
				receipts = append(receipts, d.Receipt)
			}
			if len(receipts) > 0 {
				if err := api.Ack(ctx, queue, receipts...); err != nil {
					return err
				}
			}
			if acked.Add(int64(len(ds))) >= n {
				cancel()
			}
		}
		return nil
	})
	return Result{Name: fmt.Sprintf("receive+ack %d consumers × batch %d", consumers, batch), Messages: acked.Load(), Elapsed: time.Since(start)}, err
}

// RunnerDrain consumes a filled queue with a client.Runner (no-op handler)
// until n messages are acked; it returns the rate.
func RunnerDrain(ctx context.Context, api chute.API, queue string, n int64, opts client.RunnerOptions) (Result, error) {
	var handled atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := client.NewRunner(api, queue, func(context.Context, chute.Delivery) error {
		if handled.Add(1) >= n {
			cancel()
		}
		return nil
	}, opts)
	start := time.Now()
	err := r.Run(ctx)
	return Result{Name: fmt.Sprintf("runner concurrency %d prefetch %d", opts.Concurrency, opts.Prefetch),
		Messages: r.Stats().Succeeded, Elapsed: time.Since(start)}, err
}
