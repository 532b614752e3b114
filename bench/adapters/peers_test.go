package adapters_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/peers"
	"github.com/chutemq/chute/bench/peers/peerstest"
)

// TestPeers drives each peer's adapter through the comparison's shapes:
// a queue produced with a window and consumed with a prefetch, a topic
// fanned out to three subscriptions, and a smoke figure.
func TestPeers(t *testing.T) {
	for _, kind := range peers.Kinds {
		t.Run(kind, func(t *testing.T) {
			p := peerstest.Start(t, kind)
			sys, err := adapters.ForPeer(p)
			if err != nil {
				t.Fatal(err)
			}
			srv, ok := sys.(adapters.Server)
			if !ok || srv.PID() != p.PID || srv.DataDir() != p.DataDir || srv.Durability() == "" {
				t.Fatalf("Server: %v %+v", ok, srv)
			}
			t.Logf("%s: %s", sys.Name(), srv.Durability())
			t.Run("publish", func(t *testing.T) { testPublishFill(t, sys) })
			t.Run("queue", func(t *testing.T) { testQueue(t, sys) })
			t.Run("fanout", func(t *testing.T) { testFanout(t, sys) })
			t.Run("many", func(t *testing.T) { testMany(t, sys) })
			t.Run("smoke", func(t *testing.T) { smokeRate(t, sys) })
		})
	}
}

// newStreams creates a queue for t and deletes it at the end.
func newStreams(t *testing.T, ctx context.Context, sys adapters.System, opts adapters.QueueOptions) adapters.Streams {
	t.Helper()
	q, err := sys.NewQueue(ctx, opts)
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	t.Cleanup(func() {
		if err := q.Delete(context.Background()); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	s, ok := q.(adapters.Streams)
	if !ok {
		t.Fatalf("%s queue does not implement Streams", sys.Name())
	}
	return s
}

// produce publishes n bodies "m<i>" through a producer with window and
// checks that every one was confirmed exactly once.
func produce(t *testing.T, ctx context.Context, s adapters.Streams, n, window int) {
	t.Helper()
	pr, err := s.NewProducer(ctx, window)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	var mu sync.Mutex
	confirmed, failed := 0, []error(nil)
	for i := range n {
		err := pr.Publish(ctx, fmt.Appendf(nil, "m%d", i), func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if confirmed++; err != nil {
				failed = append(failed, err)
			}
		})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pr.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if err := pr.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if confirmed != n || len(failed) > 0 {
		t.Fatalf("%d of %d done, failures: %v", confirmed, n, failed)
	}
}

// consume receives n messages through a consumer of sub with prefetch,
// acking each batch in two halves, the second half first on every other
// batch (so acks arrive out of order too), and returns how often each body
// arrived.
func consume(t *testing.T, ctx context.Context, s adapters.Streams, sub, n, prefetch int) map[string]int {
	t.Helper()
	c, err := s.NewConsumer(ctx, sub, prefetch)
	if err != nil {
		t.Fatalf("new consumer %d: %v", sub, err)
	}
	defer c.Close()
	seen := map[string]int{}
	got := 0
	for batch := 0; got < n; batch++ {
		if ctx.Err() != nil {
			t.Fatalf("sub %d: %d of %d received: %v", sub, got, n, ctx.Err())
		}
		ms, err := c.Receive(ctx, time.Second)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if len(ms) > prefetch {
			t.Fatalf("received %d with prefetch %d", len(ms), prefetch)
		}
		for _, m := range ms {
			seen[string(m.Body)]++
		}
		got += len(ms)
		half := len(ms) / 2
		first, second := ms[:half], ms[half:]
		if batch%2 == 1 {
			first, second = second, first
		}
		if err := c.Ack(ctx, first); err != nil {
			t.Fatalf("ack: %v", err)
		}
		if err := c.Ack(ctx, second); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	// Nothing more: Receive waits and returns none.
	if ms, err := c.Receive(ctx, 50*time.Millisecond); err != nil || len(ms) != 0 {
		t.Fatalf("after all %d: %d more, %v", n, len(ms), err)
	}
	return seen
}

// checkAll fails t unless seen holds each of the n bodies exactly once.
func checkAll(t *testing.T, seen map[string]int, n int, what string) {
	t.Helper()
	if len(seen) != n {
		t.Errorf("%s: %d distinct bodies, want %d", what, len(seen), n)
	}
	for i := range n {
		if k := seen[fmt.Sprintf("m%d", i)]; k != 1 {
			t.Errorf("%s: m%d received %d times", what, i, k)
			return
		}
	}
}

// eventuallyLen polls q.Len every 10 ms, for at most 10 s, until it is
// want.
func eventuallyLen(t *testing.T, ctx context.Context, q adapters.Queue, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := q.Len(ctx)
		if err != nil {
			t.Fatalf("len: %v", err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("len %d, want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testPublishFill: 8 concurrent publishers × 10 single publishes, then
// Fill 300; the queue holds all 380.
func testPublishFill(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newStreams(t, ctx, sys, adapters.QueueOptions{InFlight: 8})
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if err := s.Publish(ctx, []byte("x")); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}
	eventuallyLen(t, ctx, s, 80)
	if err := s.Fill(ctx, 300, 64); err != nil {
		t.Fatalf("fill: %v", err)
	}
	eventuallyLen(t, ctx, s, 380)
}

// testQueue: 1,000 produced with window 100, consumed with prefetch 100
// and acked; the queue holds them until acked and then none.
func testQueue(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 1000
	s := newStreams(t, ctx, sys, adapters.QueueOptions{InFlight: 100})
	produce(t, ctx, s, n, 100)
	eventuallyLen(t, ctx, s, n)
	checkAll(t, consume(t, ctx, s, 0, n, 100), n, "queue")
	eventuallyLen(t, ctx, s, 0)
}

// testFanout: a topic with three subscriptions delivers each of 1,000
// messages to each, 3,000 in all.
func testFanout(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, subs = 1000, 3
	s := newStreams(t, ctx, sys, adapters.QueueOptions{Subscriptions: subs, InFlight: 100})
	produce(t, ctx, s, n, 100)
	total := 0
	for sub := range subs {
		seen := consume(t, ctx, s, sub, n, 100)
		checkAll(t, seen, n, fmt.Sprintf("subscription %d", sub))
		for _, k := range seen {
			total += k
		}
	}
	if total != subs*n {
		t.Errorf("delivered %d, want %d", total, subs*n)
	}
}

// testMany: 20 queues at once, each with its own producer and consumer
// on the System's shared connections, each delivering its 50 messages;
// then everything is closed and deleted, and a queue made afterwards
// (on connections opened anew) still works.
func testMany(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const queues, n = 20, 50
	var made []adapters.Queue
	t.Run("parallel", func(t *testing.T) {
		for i := range queues {
			s, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: 10})
			if err != nil {
				t.Fatalf("new queue %d: %v", i, err)
			}
			made = append(made, s)
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				st := s.(adapters.Streams)
				produce(t, ctx, st, n, 10)
				checkAll(t, consume(t, ctx, st, 0, n, 10), n, fmt.Sprintf("queue %d", i))
			})
		}
	})
	for i, q := range made {
		if err := q.Delete(ctx); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	s := newStreams(t, ctx, sys, adapters.QueueOptions{InFlight: 10})
	produce(t, ctx, s, n, 10)
	checkAll(t, consume(t, ctx, s, 0, n, 10), n, "queue after")
}

// smokeRate logs the rate of 10,000 × 256 B through a Producer with
// window 1,000: a smoke figure only (never asserted; the comparison
// command measures properly).
func smokeRate(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n, size, window = 10000, 256, 1000
	s := newStreams(t, ctx, sys, adapters.QueueOptions{InFlight: window})
	pr, err := s.NewProducer(ctx, window)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	body := make([]byte, size)
	start := time.Now()
	for range n {
		if err := pr.Publish(ctx, body, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := pr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("%s: produced %d × %d B, window %d, in %v: %.0f/s", sys.Name(), n, size, window,
		d.Round(time.Millisecond), float64(n)/d.Seconds())
	eventuallyLen(t, ctx, s, n)
}
