package server_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// BenchmarkDelayBurstServer is issue 11's delayed-delivery workload through
// the server and the Go client: 10,000 messages with delays spread
// uniformly over 0–2 s, published in batches of 100 (unary Publish), and
// one consumer that takes up to 1,000 at a time and acks each batch from
// another goroutine — "unary": Receive(Max 1000) calls in a loop; "stream":
// a client.Consumer (a Consume stream, prefetch 1,000). Lateness = the
// time the consumer got a message − (its publish time + delay), on this
// machine's one clock: "stamp" takes the broker's publish stamp, "sent"
// the producer's send time. Target: p99 < 5 ms. With
// CHUTE_DELAY_ADDR=host:port it measures a running `chute serve` (a
// separate process, as users run it); otherwise a server in this process
// over an embedded broker (sync always, in a temporary directory; TMPDIR
// picks its disk). Real clock: it measures, it asserts nothing.
//
//	go test ./server/ -run '^$' -bench DelayBurstServer -benchtime 3x
//	chute serve --data /tmp/d --listen 127.0.0.1:7499 &
//	CHUTE_DELAY_ADDR=127.0.0.1:7499 go test ./server/ -run '^$' -bench DelayBurstServer -benchtime 3x
func BenchmarkDelayBurstServer(b *testing.B) {
	var slow atomic.Int64 // fdatasyncs over 5 ms (in this process only)
	addr := os.Getenv("CHUTE_DELAY_ADDR")
	if addr == "" {
		br := chutetest.MustOpen(b, b.TempDir(), &broker.Options{OnSync: func(d time.Duration) {
			if d > 5*time.Millisecond {
				slow.Add(1)
			}
		}})
		addr = chutetest.StartServer(b, br, server.Options{})
	}
	c, err := client.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, stream := range []bool{false, true} {
		name := "unary"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			for i := range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				queue := fmt.Sprintf("delayed-%d-%d", time.Now().UnixNano(), i)
				var p chutetest.Puller
				if stream {
					cons := client.NewConsumer(c, queue, client.ConsumerOptions{Prefetch: 1000, Lease: chutetest.BurstLease})
					defer cons.Close()
					p = consumerPuller{cons}
				}
				slow.Store(0)
				res, err := chutetest.RunDelayBurst(ctx, c, queue, 10000, 2*time.Second, uint64(i), p)
				if derr := c.DeleteQueue(ctx, queue); err == nil {
					err = derr
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				res.Report(b)
				b.ReportMetric(float64(slow.Load()), "slow-syncs")
			}
		})
	}
}

// consumerPuller pulls from a client.Consumer's stream.
type consumerPuller struct{ c *client.Consumer }

func (p consumerPuller) Pull(ctx context.Context) ([]chute.Delivery, error) {
	return p.c.ReceiveWait(ctx, 1000, 5*time.Second)
}

func (p consumerPuller) Ack(ctx context.Context, receipts ...string) error {
	return p.c.Ack(ctx, receipts...)
}
