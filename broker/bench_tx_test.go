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

// txBenchReceive is how many inputs a transactional goroutine receives at
// a time.
const txBenchReceive = 16

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
	reportJournal(b, br, before)
}

// BenchmarkTx1Ack1Pub: confirmed transactions, each acking one delivery
// of "in" and publishing one 256-byte message to "out", from
// txBenchConcurrency goroutines. The inputs are published before the timer
// starts; each goroutine receives them txBenchReceive at a time (one
// receive per txBenchReceive transactions, counted in the time: a
// pipeline's work, which the publishes do not have), so that the leases
// held stay about what a pipeline holds.
func BenchmarkTx1Ack1Pub(b *testing.B) {
	br := benchBroker(b)
	ctx := context.Background()
	body := make([]byte, 256)
	// Enough for every goroutine to hold a partly used batch at the end.
	for left := b.N + txBenchConcurrency*txBenchReceive; left > 0; {
		n := min(left, 1000)
		msgs := make([]chute.Message, n)
		for i := range msgs {
			msgs[i] = chute.Message{Body: body}
		}
		if _, err := br.Publish(ctx, "in", msgs...); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	b.SetParallelism(txBenchConcurrency / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := br.JournalStats()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var held []chute.Delivery
		for pb.Next() {
			if len(held) == 0 {
				ds, err := br.Receive(ctx, "in", chute.ReceiveOptions{Max: txBenchReceive, Wait: -1})
				if err != nil || len(ds) == 0 {
					b.Errorf("receive: %d deliveries, %v", len(ds), err)
					return
				}
				held = ds
			}
			tx := chute.Tx{
				Ack:     []chute.TxAck{{Queue: "in", Receipts: []string{held[0].Receipt}}},
				Publish: []chute.TxPublish{{Target: "out", Messages: []chute.Message{{Body: body}}}},
			}
			held = held[1:]
			if _, err := br.Commit(ctx, tx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportJournal(b, br, before)
}

// reportJournal adds the records per fsync and the mean fsync time of the
// timed part.
func reportJournal(b *testing.B, br *broker.Broker, before broker.JournalStats) {
	st := br.JournalStats()
	syncs := max(st.Syncs-before.Syncs, 1)
	b.ReportMetric(float64(st.Records-before.Records)/float64(syncs), "records/sync")
	b.ReportMetric(float64((st.SyncTime-before.SyncTime).Microseconds())/float64(syncs), "µs/sync")
	b.ReportMetric(float64(st.Bytes-before.Bytes)/float64(syncs), "B/sync")
	b.ReportMetric(float64(st.FileReads-before.FileReads)/float64(b.N), "reads/op")
	b.ReportMetric(float64(st.Reclaimed-before.Reclaimed), "reclaimed")
}
