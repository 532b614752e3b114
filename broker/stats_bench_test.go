package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// BenchmarkStats1000Queues measures Stats (what a scrape and each alert
// evaluation take, partly under the broker lock) over 1,000 queues with
// breakers.
func BenchmarkStats1000Queues(b *testing.B) {
	opts, _ := chutetest.MemOptions(nil)
	br := chutetest.MustOpen(b, "data", opts)
	for i := range 1000 {
		if err := br.CreateQueue(context.Background(), fmt.Sprintf("q%04d", i), chute.QueueConfig{Breaker: chute.Breaker{Enabled: true}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		_ = br.Stats()
	}
}
