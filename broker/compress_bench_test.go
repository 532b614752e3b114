package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// BenchmarkCompression measures compression at rest (issue 11): for
// compressible (JSON-like) and random bodies of 1 and 4 KiB, with
// compression off and zstd, the publish rate (batches of 100, one
// publisher), the drain rate (receive 100 and ack them, one consumer) and
// the journal bytes each message's publish took; and, as the wall clock
// is a poor measure on a shared machine, the process's CPU time per
// message in each phase (all threads, Unix only). On the real disk with
// sync never, so that the figures are the broker's CPU and the bytes it
// writes, not the disk's fsync latency. Run with -count to interleave the
// cases:
//
//	go test ./broker -run '^$' -bench BenchmarkCompression -benchtime 20000x -count 3
func BenchmarkCompression(b *testing.B) {
	for _, size := range []int{1024, 4096} {
		for _, kind := range []string{"compressible", "random"} {
			bodies := make([][]byte, 64) // distinct bodies: no frame repeats the last
			for i := range bodies {
				if kind == "random" {
					bodies[i] = random(size, uint64(i))
				} else {
					bodies[i] = compressible(size + i)[i:]
				}
			}
			for _, z := range []chute.Compression{chute.CompressionNone, chute.CompressionZstd} {
				b.Run(fmt.Sprintf("size=%d/body=%s/compression=%s", size, kind, z), func(b *testing.B) {
					benchCompression(b, bodies, z)
				})
			}
		}
	}
}

func benchCompression(b *testing.B, bodies [][]byte, z chute.Compression) {
	ctx := context.Background()
	br, err := broker.Open(b.TempDir(), &broker.Options{Sync: broker.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	if err := br.CreateQueue(ctx, "q", chute.QueueConfig{Compression: z}); err != nil {
		b.Fatal(err)
	}
	const batch = 100
	msgs := make([]chute.Message, batch)
	b.SetBytes(int64(len(bodies[0])))
	b.ResetTimer()

	start, cpu, j0 := time.Now(), cpuTime(), br.JournalStats().Bytes
	for sent := 0; sent < b.N; sent += batch {
		n := min(batch, b.N-sent)
		for i := range n {
			msgs[i] = chute.Message{Body: bodies[(sent+i)%len(bodies)]}
		}
		if _, err := br.Publish(ctx, "q", msgs[:n]...); err != nil {
			b.Fatal(err)
		}
	}
	pub, pubCPU, journaled := time.Since(start), cpuTime()-cpu, br.JournalStats().Bytes-j0

	start, cpu = time.Now(), cpuTime()
	receipts := make([]string, 0, batch)
	for got := 0; got < b.N; {
		ds, err := br.Receive(ctx, "q", chute.ReceiveOptions{Max: batch, Wait: -1})
		if err != nil || len(ds) == 0 {
			b.Fatalf("receive after %d of %d: %v", got, b.N, err)
		}
		receipts = receipts[:0]
		for _, d := range ds {
			if len(d.Body) != len(bodies[0]) {
				b.Fatalf("body of %d bytes, want %d", len(d.Body), len(bodies[0]))
			}
			receipts = append(receipts, d.Receipt)
		}
		if err := br.Ack(ctx, "q", receipts...); err != nil {
			b.Fatal(err)
		}
		got += len(ds)
	}
	drain, drainCPU := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	b.ReportMetric(float64(b.N)/pub.Seconds(), "pub-msg/s")
	b.ReportMetric(float64(b.N)/drain.Seconds(), "drain-msg/s")
	b.ReportMetric(float64(journaled)/float64(b.N), "journal-B/msg")
	b.ReportMetric(float64(pubCPU.Nanoseconds())/float64(b.N), "pub-cpu-ns/msg")
	b.ReportMetric(float64(drainCPU.Nanoseconds())/float64(b.N), "drain-cpu-ns/msg")
}
