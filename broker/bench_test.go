package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
)

// BenchmarkPublishConfirmed: confirmed publishes of 256-byte messages with
// sync always, from 1, 16 and 256 concurrent publishers, on the real disk.
func BenchmarkPublishConfirmed(b *testing.B) {
	for _, pubs := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("publishers=%d", pubs), func(b *testing.B) {
			br, err := broker.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			ctx := context.Background()
			if err := br.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 256)
			b.SetParallelism((pubs + 1) / 2)
			b.SetBytes(256)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := br.Publish(ctx, "q", chute.Message{Body: body}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := br.JournalStats()
			b.ReportMetric(float64(st.Records)/float64(st.Syncs), "records/sync")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
