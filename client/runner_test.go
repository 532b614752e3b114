package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// runBackground runs r until the test stops it with the returned func,
// which waits for Run to return and checks its error.
func runBackground(t *testing.T, r *client.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publishN(t *testing.T, api chute.API, q string, n int, msg func(i int) chute.Message) {
	t.Helper()
	for i := range n {
		if _, err := api.Publish(context.Background(), q, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func stats(t *testing.T, api chute.API, q string) chute.QueueStats {
	t.Helper()
	s, err := api.QueueStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunnerHandlesEverythingOnce(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			q := "r-" + name
			api.CreateQueue(context.Background(), q, chute.QueueConfig{})
			publishN(t, api, q, 300, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			var mu sync.Mutex
			seen := map[string]int{}
			r := client.NewRunner(api, q, func(_ context.Context, d chute.Delivery) error {
				mu.Lock()
				seen[string(d.Body)]++
				mu.Unlock()
				return nil
			}, client.RunnerOptions{Concurrency: 4, Prefetch: 32})
			stop := runBackground(t, r)
			chutetest.Eventually(t, "every message acked", func() bool { return stats(t, api, q).Totals.Acked == 300 })
			stop()
			if len(seen) != 300 {
				t.Fatalf("%d distinct messages handled", len(seen))
			}
			for b, n := range seen {
				if n != 1 {
					t.Fatalf("message %s handled %d times", b, n)
				}
			}
			if s := stats(t, api, q); s.Depth() != 0 {
				t.Fatalf("queue left %+v", s)
			}
		})
	}
}

func TestRunnerNacksFailuresUntilDeadLetter(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			q := "f-" + name
			api.CreateQueue(context.Background(), q, chute.QueueConfig{MaxDeliveries: 2,
				Backoff: chute.Backoff{Kind: chute.BackoffNone}})
			publishN(t, api, q, 10, func(i int) chute.Message {
				m := chute.Message{Body: []byte(fmt.Sprint(i))}
				if i%2 == 0 {
					m.Headers = map[string]string{"fail": "yes"}
				}
				return m
			})
			r := client.NewRunner(api, q, func(_ context.Context, d chute.Delivery) error {
				if d.Headers["fail"] == "yes" {
					return fmt.Errorf("cannot handle %s", d.Body)
				}
				return nil
			}, client.RunnerOptions{BreakerThreshold: -1})
			runBackground(t, r)
			chutetest.Eventually(t, "failures dead-lettered", func() bool { return stats(t, api, q+".dlq").Ready == 5 })
			ds, err := api.Peek(context.Background(), q+".dlq", 10)
			if err != nil || len(ds) != 5 {
				t.Fatalf("peek: %d %v", len(ds), err)
			}
			for _, d := range ds {
				if d.DeadLetter.LastError != "cannot handle "+string(d.Body) || d.DeadLetter.Deliveries != 2 {
					t.Fatalf("dead letter %+v", d.DeadLetter)
				}
			}
			if s := stats(t, api, q); s.Totals.Acked != 5 {
				t.Fatalf("acked %d of the 5 good ones", s.Totals.Acked)
			}
		})
	}
}

func TestRunnerExtendsLeasesWhileHandling(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	b.CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: 10 * time.Second})
	publishN(t, b, "q", 1, func(int) chute.Message { return chute.Message{Body: []byte("slow")} })
	started, release := make(chan struct{}), make(chan struct{})
	r := client.NewRunner(b, "q", func(context.Context, chute.Delivery) error {
		close(started)
		<-release
		return nil
	}, client.RunnerOptions{Concurrency: 1, Prefetch: 1, SettleBatch: 1, Clock: clock})
	stop := runBackground(t, r)
	<-started
	// 6 s: past half the lease, so it is extended to 16 s.
	chutetest.Eventually(t, "the extension timer", func() bool { return clock.Pending() >= 2 })
	clock.Advance(6 * time.Second)
	chutetest.Eventually(t, "an extension", func() bool { return r.Stats().Extended >= 1 })
	// 12 s: the first lease would have ended at 10 s.
	clock.Advance(6 * time.Second)
	if s := stats(t, b, "q"); s.Totals.LeaseExpired != 0 || s.InFlight != 1 {
		t.Fatalf("lease ended while the handler ran: %+v", s)
	}
	close(release)
	chutetest.Eventually(t, "the ack", func() bool { return stats(t, b, "q").Totals.Acked == 1 })
	stop()
}

func TestRunnerCircuitBreaker(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	b.CreateQueue(ctx, "q", chute.QueueConfig{MaxDeliveries: -1, Backoff: chute.Backoff{Kind: chute.BackoffNone}})
	publishN(t, b, "q", 20, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
	var healthy atomic.Bool
	var calls atomic.Int64
	r := client.NewRunner(b, "q", func(context.Context, chute.Delivery) error {
		calls.Add(1)
		if !healthy.Load() {
			return errors.New("downstream is down")
		}
		return nil
	}, client.RunnerOptions{Concurrency: 1, Prefetch: 1, BreakerThreshold: 3, BreakerCooldown: 10 * time.Second,
		SettleBatch: 1, NoAutoExtend: true, Clock: clock})
	stop := runBackground(t, r)
	chutetest.Eventually(t, "the breaker to open", func() bool { return r.Breaker() == client.BreakerOpen })
	if got := calls.Load(); got != 3 {
		t.Fatalf("handler called %d times before the breaker opened, want 3", got)
	}
	// While open nothing is handled, however long it stays open before
	// the cooldown.
	clock.Advance(9 * time.Second)
	if got := calls.Load(); got != 3 {
		t.Fatalf("handler called %d times while the breaker was open", got)
	}
	// After the cooldown one probe goes through; it fails: open again.
	clock.Advance(time.Second)
	chutetest.Eventually(t, "the failed probe", func() bool { return calls.Load() == 4 && r.Breaker() == client.BreakerOpen })
	// The next probe succeeds: closed, and everything flows.
	healthy.Store(true)
	clock.Advance(10 * time.Second)
	chutetest.Eventually(t, "every message acked", func() bool { return stats(t, b, "q").Totals.Acked == 20 })
	if r.Breaker() != client.BreakerClosed {
		t.Fatalf("breaker %v after recovery", r.Breaker())
	}
	stop()
}

func TestBatchRunner(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			q := "b-" + name
			api.CreateQueue(context.Background(), q, chute.QueueConfig{})
			publishN(t, api, q, 40, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			var mu sync.Mutex
			var sizes []int
			total := 0
			r := client.NewBatchRunner(api, q, func(_ context.Context, ds []chute.Delivery) error {
				mu.Lock()
				sizes = append(sizes, len(ds))
				total += len(ds)
				mu.Unlock()
				return nil
			}, client.RunnerOptions{Concurrency: 2, BatchSize: 8, BatchWait: 50 * time.Millisecond})
			stop := runBackground(t, r)
			chutetest.Eventually(t, "every message acked", func() bool { return stats(t, api, q).Totals.Acked == 40 })
			stop()
			mu.Lock()
			defer mu.Unlock()
			if total != 40 {
				t.Fatalf("handled %d", total)
			}
			for _, n := range sizes {
				if n < 1 || n > 8 {
					t.Fatalf("batch of %d (sizes %v)", n, sizes)
				}
			}
			if len(sizes) == 40 {
				t.Fatalf("every batch had one message: no batching (%v)", sizes)
			}
		})
	}
}

// TestRunnerStopReturnsWhatItHolds: on stop the runner hands back what no
// handler started, unstarted: with max deliveries 1, a counted return
// would dead-letter every one of them.
func TestRunnerStopReturnsWhatItHolds(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			q := "s-" + name
			api.CreateQueue(context.Background(), q, chute.QueueConfig{MaxDeliveries: 1})
			publishN(t, api, q, 10, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			r := client.NewRunner(api, q, func(context.Context, chute.Delivery) error {
				once.Do(func() { close(started) })
				<-release
				return nil
			}, client.RunnerOptions{Concurrency: 1, Prefetch: 10})
			stop := runBackground(t, r)
			<-started
			chutetest.Eventually(t, "the prefetch", func() bool { return stats(t, api, q).InFlight == 10 })
			go func() { close(release) }()
			stop()
			s := stats(t, api, q)
			if s.InFlight != 0 || s.Ready+s.Totals.Acked != 10 || s.Totals.Acked < 1 {
				t.Fatalf("after stop: %+v", s)
			}
			if s.Totals.DeadLettered != 0 || s.Totals.Returned != s.Ready || r.Stats().Returned != s.Ready {
				t.Fatalf("after stop: %d ready, %d returned (runner: %d), %d dead-lettered; want every ready one returned unstarted",
					s.Ready, s.Totals.Returned, r.Stats().Returned, s.Totals.DeadLettered)
			}
			ds, err := api.Receive(context.Background(), q, chute.ReceiveOptions{Max: 10, Wait: -1})
			if err != nil || int64(len(ds)) != s.Ready {
				t.Fatalf("receive after stop: %d, %v", len(ds), err)
			}
			for _, d := range ds {
				if d.Deliveries != 1 {
					t.Fatalf("%q: %d deliveries after an unstarted return, want 1", d.Body, d.Deliveries)
				}
			}
		})
	}
}

// broken fails the first receives as a server that is down would.
type broken struct {
	chute.API
	fails atomic.Int64
}

func (b *broken) Receive(ctx context.Context, q string, o chute.ReceiveOptions) ([]chute.Delivery, error) {
	if b.fails.Add(-1) >= 0 {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("injected: server down"))
	}
	return b.API.Receive(ctx, q, o)
}

func TestRunnerRetriesReceiveFailures(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	b.CreateQueue(context.Background(), "q", chute.QueueConfig{})
	publishN(t, b, "q", 5, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
	api := &broken{API: b}
	api.fails.Store(3)
	r := client.NewRunner(api, "q", func(context.Context, chute.Delivery) error { return nil },
		client.RunnerOptions{RetryDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond})
	runBackground(t, r)
	chutetest.Eventually(t, "every message acked after the outage", func() bool { return stats(t, b, "q").Totals.Acked == 5 })
	if api.fails.Load() >= 0 {
		t.Fatal("the injected failures were never hit")
	}
}

func TestRunnerStopsOnMissingQueue(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			r := client.NewRunner(api, "nope", func(context.Context, chute.Delivery) error { return nil }, client.RunnerOptions{})
			if err := r.Run(context.Background()); !errors.Is(err, chute.ErrQueueNotFound) {
				t.Fatalf("Run on a missing queue: %v", err)
			}
		})
	}
}
