package client_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// producerLoads are the loads of issue 11's Producer measurements: one
// goroutine keeping 1,000 futures outstanding (a pipelining producer), many
// goroutines each waiting for its one message (request handlers), and a
// few of them.
var producerLoads = []struct {
	name              string
	goroutines, ahead int // ahead: futures each goroutine keeps outstanding
}{
	{"a-1x1000", 1, 1000},
	{"b-256x1", 256, 1},
	{"c-16x1", 16, 1},
}

// producerSettings are the defaults against hand-tuned batch sizes and
// windows (a user gained 25–45% by raising BatchSize by hand, issue 11).
var producerSettings = []struct {
	name string
	opts client.ProducerOptions
}{
	{"default", client.ProducerOptions{}},
	{"bs100", client.ProducerOptions{BatchSize: 100}},
	{"bs500", client.ProducerOptions{BatchSize: 500}},
	{"bs1000", client.ProducerOptions{BatchSize: 1000}},
	{"bs1000-if2", client.ProducerOptions{BatchSize: 1000, MaxInFlight: 2}},
	{"bs100-if5", client.ProducerOptions{BatchSize: 100, MaxInFlight: 5}},
}

// BenchmarkProducer publishes 256-byte messages through a Producer with
// each setting under each load: against an embedded broker in a temporary
// directory (sync always, the default), and against the `chute serve` at
// $CHUTE_BENCH_ADDR when that is set (start it by hand, so that the
// server's CPU is not the benchmark's). One op is one confirmed message;
// msgs/batch is the mean batch the producer sent (embedded only: over the
// network the producer's batches are not visible to a wrapper).
func BenchmarkProducer(b *testing.B) {
	ctx := context.Background()
	br := chutetest.MustOpen(b, b.TempDir(), nil)
	targets := []struct {
		name string
		api  chute.API
	}{{"embedded", br}}
	if addr := os.Getenv("CHUTE_BENCH_ADDR"); addr != "" {
		c, err := client.Dial(addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		targets = append(targets, struct {
			name string
			api  chute.API
		}{"network", c})
	}
	queues := 0
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			for _, load := range producerLoads {
				b.Run(load.name, func(b *testing.B) {
					for _, s := range producerSettings {
						b.Run(s.name, func(b *testing.B) {
							queues++
							q := fmt.Sprintf("bench-%d", queues)
							if err := tg.api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
								b.Fatal(err)
							}
							defer tg.api.DeleteQueue(ctx, q)
							api := tg.api
							var counted *countingAsync
							if ap, ok := api.(chute.AsyncPublisher); ok {
								counted = &countingAsync{API: api, ap: ap}
								api = counted
							}
							p := client.NewProducer(api, q, s.opts)
							defer p.Close(ctx)
							b.SetBytes(256)
							b.ResetTimer()
							benchPublish(ctx, b, p, load.goroutines, load.ahead)
							b.StopTimer()
							b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
							if counted != nil && counted.calls.Load() > 0 {
								b.ReportMetric(float64(b.N)/float64(counted.calls.Load()), "msgs/batch")
							}
						})
					}
				})
			}
		})
	}
}

// benchPublish publishes b.N messages through p from goroutines
// goroutines, each keeping up to ahead futures outstanding, and returns
// once every one is confirmed.
func benchPublish(ctx context.Context, b *testing.B, p *client.Producer, goroutines, ahead int) {
	body := make([]byte, 256)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			ring := make([]*client.Future, ahead) // the oldest outstanding is at i%ahead
			wait := func(f *client.Future) bool {
				if f == nil {
					return true
				}
				if _, err := f.Wait(ctx); err != nil {
					b.Error(err)
					return false
				}
				return true
			}
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if !wait(ring[i%ahead]) {
					return
				}
				f, err := p.Publish(ctx, chute.Message{Body: body})
				if err != nil {
					b.Error(err)
					return
				}
				ring[i%ahead] = f
			}
			for _, f := range ring {
				if !wait(f) {
					return
				}
			}
		})
	}
	wg.Wait()
}
