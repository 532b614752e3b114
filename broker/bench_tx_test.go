package broker_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// txBenchConcurrency is the committers (and publishers) of the two
// benchmarks below: the same group commit does the batching for both.
const txBenchConcurrency = 64

// benchBroker opens a broker on the real disk (sync always) with queues in
// and out of one group.
func benchBroker(b *testing.B) *broker.Broker {
	br, err := broker.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	for _, q := range []string{"in", "out"} {
		if err := br.CreateQueue(context.Background(), q, chute.QueueConfig{Group: "g", VisibilityTimeout: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
	return br
}

// BenchmarkPublishSameBatching: confirmed publishes of one 256-byte
// message each from txBenchConcurrency goroutines: the baseline of
// BenchmarkTx1Ack1Pub (compare them with benchstat, same run).
func BenchmarkPublishSameBatching(b *testing.B) {
	br := benchBroker(b)
	ctx := context.Background()
	body := make([]byte, 256)
	b.SetParallelism(txBenchConcurrency / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := br.JournalStats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Publish(ctx, "out", chute.Message{Body: body}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := br.JournalStats()
	b.ReportMetric(float64(st.Records-before.Records)/float64(max(st.Syncs-before.Syncs, 1)), "records/sync")
}

// BenchmarkTx1Ack1Pub: confirmed transactions, each acking one delivery
// of "in" and publishing one 256-byte message to "out", from
// txBenchConcurrency goroutines. The deliveries are received before the
// timer starts, so the two benchmarks differ only in what one commit does.
func BenchmarkTx1Ack1Pub(b *testing.B) {
	br := benchBroker(b)
	ctx := context.Background()
	body := make([]byte, 256)
	receipts := make(chan string, b.N)
	for left := b.N; left > 0; {
		n := min(left, 1000)
		msgs := make([]chute.Message, n)
		for i := range msgs {
			msgs[i] = chute.Message{Body: body}
		}
		if _, err := br.Publish(ctx, "in", msgs...); err != nil {
			b.Fatal(err)
		}
		ds, err := br.Receive(ctx, "in", chute.ReceiveOptions{Max: n, Wait: -1})
		if err != nil || len(ds) != n {
			b.Fatalf("receive %d: %d, %v", n, len(ds), err)
		}
		for _, d := range ds {
			receipts <- d.Receipt
		}
		left -= n
	}
	b.SetParallelism(txBenchConcurrency / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := br.JournalStats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tx := chute.Tx{
				Ack:     []chute.TxAck{{Queue: "in", Receipts: []string{<-receipts}}},
				Publish: []chute.TxPublish{{Target: "out", Messages: []chute.Message{{Body: body}}}},
			}
			if _, err := br.Commit(ctx, tx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := br.JournalStats()
	b.ReportMetric(float64(st.Records-before.Records)/float64(max(st.Syncs-before.Syncs, 1)), "records/sync")
}
