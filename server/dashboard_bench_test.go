package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// fixedQueues is an API whose Queues returns a fixed set of statistics
// that the benchmark changes between ticks, so that the hub's own cost is
// measured apart from the broker's.
type fixedQueues struct {
	chute.API
	qs []chute.QueueStats
}

func (f *fixedQueues) Queues(context.Context) ([]chute.QueueStats, error) { return f.qs, nil }
func (f *fixedQueues) Topics(context.Context) ([]chute.TopicStats, error) { return nil, nil }

// BenchmarkDashboardTick5000 measures one tick of the dashboard's hub
// over 5,000 queues with one feed open, a tenth of the queues changing
// each tick (a fifth of the rows change: depth, or rate): sampling,
// encoding and comparing every row, the delta encoded and written to the
// page. It reports the size of a snapshot too (SSE frame, bytes).
//
//	go test ./server/ -run '^$' -bench DashboardTick5000 -benchmem
func BenchmarkDashboardTick5000(b *testing.B) {
	const n = 5000
	f := &fixedQueues{API: chutetest.MustOpen(b, "", nil), qs: make([]chute.QueueStats, n)}
	for i := range f.qs {
		name := fmt.Sprintf("queue-%05d", i)
		f.qs[i] = chute.QueueStats{Name: name, Config: chute.QueueConfig{DeadLetterQueue: name + ".dlq"},
			Ready: int64(i), ReadyBytes: int64(i) * 300, Totals: chute.QueueTotals{Enqueued: int64(i) * 10}}
	}
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, addr := chutetest.Serve(b, f, server.Options{Clock: clock, Dashboard: &server.DashboardOptions{Assets: testAssets}})
	resp := openFeed(b, addr, nil)
	br := bufio.NewReader(resp.Body)
	snapBytes := 0
	for { // the first snapshot
		line, err := br.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		snapBytes += len(line)
		if line == "\n" {
			break
		}
	}
	go func() { // the page: reads every event, until Shutdown ends the feed
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, br)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		clock.advance(time.Second)
		for j := i % 10; j < n; j += 10 {
			q := &f.qs[j]
			q.Ready++
			q.Totals.Enqueued += 3
		}
		srv.TickDashboard()
	}
	b.StopTimer()
	b.ReportMetric(float64(snapBytes), "snapshot-bytes")
}

// manualClock is a clock whose timers never fire, so that the hub ticks
// only when the benchmark says (TickDashboard); Now moves by advance.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) NewTimer(time.Duration) chute.Timer { return idleTimer{} }

type idleTimer struct{}

func (idleTimer) C() <-chan time.Time { return nil }
func (idleTimer) Stop() bool          { return true }

// BenchmarkPublishAck measures what an open dashboard costs the message
// path's throughput: feedBenchWorkers goroutines publish, receive and ack
// batches of obsBatch messages through the Go client, round-robin over
// 1,000 queues on a real disk broker (an op is one message), with no dashboard (feed=off)
// and with one headless page reading /ui/api/feed while the hub samples
// every second on the real clock (feed=on). Run the modes interleaved so
// that the machine's noise falls on both (-count runs each sub-benchmark
// n times in a row, which is not interleaved):
//
//	go test -c -o /tmp/srv.test ./server && cd server
//	for i in $(seq 10); do for m in off on; do /tmp/srv.test -test.run '^$' -test.bench "PublishAck/feed=$m\$" -test.benchtime 200000x; done; done | tee /tmp/feed.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /feed /tmp/feed.txt
func BenchmarkPublishAck(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("feed=%s", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) { benchPublishAck(b, on) })
	}
}

func benchPublishAck(b *testing.B, feed bool) {
	ctx := context.Background()
	addr := obsServer(b, chute.QueueConfig{NoDeadLetter: true}, func(*broker.Broker) (opts server.Options) {
		if feed {
			opts.Dashboard = &server.DashboardOptions{}
		}
		return opts
	})
	if feed {
		events := readFeed(b, addr, nil)
		<-events // the snapshot: the page is open
		go func() {
			for range events {
			}
		}()
	}
	c, err := client.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	batch := make([]chute.Message, obsBatch)
	for i := range batch {
		batch[i] = chute.Message{Body: make([]byte, 256)}
	}
	rounds := int64((b.N + obsBatch - 1) / obsBatch)
	var next atomic.Int64
	b.SetParallelism(feedBenchWorkers / max(1, runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() { // the rounds are handed out below; pb only paces the workers
			for r := next.Add(1) - 1; r < rounds; r = next.Add(1) - 1 {
				if err := cycle(ctx, c, fmt.Sprintf("q%04d", r%obsQueues), batch); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
}

// feedBenchWorkers is the clients' concurrency in BenchmarkPublishAck.
const feedBenchWorkers = 8
