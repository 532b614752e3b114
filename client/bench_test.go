package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/bench"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// BenchmarkNetwork runs the network loads against an in-process server (so
// one profile shows client and server); `chute bench network` is the
// figure of record, with the server in its own process.
func BenchmarkNetwork(b *testing.B) {
	br := chutetest.MustOpen(b, b.TempDir(), nil)
	c, err := client.Dial(chutetest.StartServer(b, br, server.Options{}))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.CreateQueue(ctx, "q", chute.QueueConfig{})
	b.Run("producer", func(b *testing.B) {
		for range b.N {
			r, err := bench.ProducerPublish(ctx, c, "q", 256, 256, 3*time.Second, client.ProducerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.Rate(), "msgs/s")
		}
	})
	b.Run("runner", func(b *testing.B) {
		for range b.N {
			c.PurgeQueue(ctx, "q")
			bench.Fill(ctx, c, "q", 200_000, 256, 500)
			r, err := bench.RunnerDrain(ctx, c, "q", 200_000, client.RunnerOptions{Concurrency: 8, Prefetch: 512})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.Rate(), "msgs/s")
		}
	})
}
