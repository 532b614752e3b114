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
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/server"
)

// apis returns the same fresh broker both embedded and over the network.
func apis(t *testing.T, opts *broker.Options) map[string]chute.API {
	t.Helper()
	b := chutetest.MustOpen(t, "", opts)
	c, err := client.Dial(chutetest.StartServer(t, b, server.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return map[string]chute.API{"embedded": b, "network": c}
}

func TestProducerPublishesEverything(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "p-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			p := client.NewProducer(api, q, client.ProducerOptions{BatchSize: 50, MaxInFlight: 4})
			fs := publishNumbered(ctx, t, p, 1000)
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			seen := map[uint64]bool{}
			for i, f := range fs {
				select {
				case <-f.Done():
				default:
					t.Fatalf("future %d not done after Flush", i)
				}
				r, err := f.Result()
				if err != nil || r.Duplicate || seen[r.Seq] {
					t.Fatalf("future %d: %+v %v", i, r, err)
				}
				seen[r.Seq] = true
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Publish(ctx, chute.Message{}); !errors.Is(err, client.ErrProducerClosed) {
				t.Fatalf("publish after close: %v", err)
			}
			s, _ := api.QueueStats(ctx, q)
			if s.Ready != 1000 {
				t.Fatalf("queue holds %d, want 1000", s.Ready)
			}
			// Publish order is kept: the bodies come back 0..999.
			ds, err := api.Receive(ctx, q, chute.ReceiveOptions{Max: 1000, Wait: -1})
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				if string(d.Body) != fmt.Sprint(i) {
					t.Fatalf("message %d is %q", i, d.Body)
				}
			}
		})
	}
}

// flaky forwards to a real API but fails calls as told.
type flaky struct {
	chute.API
	mu          sync.Mutex
	failAfter   int // fail this many publishes after they were stored
	failBefore  int // fail this many publishes before they reach the broker
	calls       atomic.Int64
	inflight    atomic.Int64
	maxInflight atomic.Int64
	block       chan struct{} // when set, publishes wait on it
}

func (f *flaky) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	f.calls.Add(1)
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for m := f.maxInflight.Load(); n > m && !f.maxInflight.CompareAndSwap(m, n); m = f.maxInflight.Load() {
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	unavailable := connect.NewError(connect.CodeUnavailable, errors.New("injected: connection lost"))
	f.mu.Lock()
	before := f.failBefore > 0
	if before {
		f.failBefore--
	}
	f.mu.Unlock()
	if before {
		return nil, unavailable
	}
	res, err := f.API.Publish(ctx, target, msgs...)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil && f.failAfter > 0 {
		f.failAfter--
		return nil, unavailable // stored, but the answer is lost
	}
	return res, err
}

func TestProducerRetriesWithoutDuplicates(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	api := &flaky{API: b, failAfter: 2, failBefore: 2}
	p := client.NewProducer(api, "q", client.ProducerOptions{BatchSize: 10, RetryDelay: time.Millisecond})
	defer p.Close(ctx)
	fs := publishNumbered(ctx, t, p, 30)
	for i, f := range fs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if s, _ := b.QueueStats(ctx, "q"); s.Ready != 30 {
		t.Fatalf("queue holds %d messages after retries, want 30 (retries stored twice?)", s.Ready)
	}
	if api.calls.Load() <= 3 {
		t.Fatalf("%d publish calls: the injected failures were not retried", api.calls.Load())
	}
}

func TestProducerIsolatesABadMessage(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	b.CreateQueue(ctx, "q", chute.QueueConfig{})
	p := client.NewProducer(b, "q", client.ProducerOptions{BatchSize: 10, Linger: time.Hour})
	defer p.Close(ctx)
	var fs []*client.Future
	for i := range 10 {
		m := chute.Message{Body: []byte(fmt.Sprint(i))}
		if i == 4 {
			m.Priority = 42
		}
		f, _ := p.Publish(ctx, m)
		fs = append(fs, f)
	}
	for i, f := range fs {
		_, err := f.Wait(ctx)
		if i == 4 && !errors.Is(err, chute.ErrInvalidMessage) {
			t.Fatalf("bad message: %v", err)
		}
		if i != 4 && err != nil {
			t.Fatalf("good message %d failed with its neighbour: %v", i, err)
		}
	}
}

func TestProducerBoundsInFlight(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	b.CreateQueue(ctx, "q", chute.QueueConfig{})
	api := &flaky{API: b, block: make(chan struct{})}
	p := client.NewProducer(api, "q", client.ProducerOptions{BatchSize: 5, MaxInFlight: 3, Linger: time.Millisecond})
	defer p.Close(ctx)
	// Fill the window and the buffer: 3 batches in flight, 2×5 buffered.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	var accepted int
	for {
		if _, err := p.Publish(short, chute.Message{Body: []byte("x")}); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		accepted++
		if accepted > 1000 {
			t.Fatal("Publish never blocked: the producer buffers without bound")
		}
	}
	if got := api.maxInflight.Load(); got != 3 {
		t.Fatalf("%d batches in flight at once, want 3", got)
	}
	close(api.block)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := b.QueueStats(ctx, "q"); s.Ready != int64(accepted) {
		t.Fatalf("%d stored, %d accepted", s.Ready, accepted)
	}
}

// TestProducerUsesASession: by default a Producer numbers its messages in a
// session of its own: nothing per message is left to remember (no message
// IDs), and the messages carry no ID.
func TestProducerUsesASession(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "session-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			p := client.NewProducer(api, q, client.ProducerOptions{BatchSize: 7})
			for i := range 100 {
				if _, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			s := stats(t, api, q)
			if s.Ready != 100 || s.DedupIDs != 0 {
				t.Fatalf("%d stored, %d message IDs remembered; want 100, 0", s.Ready, s.DedupIDs)
			}
			ds, err := api.Receive(ctx, q, chute.ReceiveOptions{Max: 100, Wait: -1})
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				if d.ID != "" || string(d.Body) != fmt.Sprint(i) {
					t.Fatalf("message %d: %s with ID %q", i, d.Body, d.ID)
				}
			}
		})
	}
}

// flakyAsync is flaky for a Producer's ordered path (chute.AsyncPublisher):
// a publish fails before it reaches the broker, or after it was stored.
type flakyAsync struct {
	chute.API
	ap         chute.AsyncPublisher
	mu         sync.Mutex
	failBefore []bool // per call, in order: fail this one before it reaches the broker
	failAfter  []bool // per call: store it, then lose the answer
	calls      int
}

func (f *flakyAsync) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	f.mu.Lock()
	i := f.calls
	f.calls++
	before := i < len(f.failBefore) && f.failBefore[i]
	after := i < len(f.failAfter) && f.failAfter[i]
	f.mu.Unlock()
	unavailable := connect.NewError(connect.CodeUnavailable, errors.New("injected: connection lost"))
	if before {
		return nil, unavailable
	}
	pp, err := f.ap.PublishAsync(ctx, target, msgs...)
	if err != nil || !after {
		return pp, err
	}
	return lostAnswer{pp, unavailable}, nil
}

type lostAnswer struct {
	pp  chute.Pending
	err error
}

func (l lostAnswer) Wait(ctx context.Context) ([]chute.PublishResult, error) {
	l.pp.Wait(ctx)
	return nil, l.err
}

// TestProducerSessionRetries: with a session, retries store every message
// exactly once and in publish order — even when a batch that failed is
// overtaken by the next one (refused as out of order, which waits for the
// retry of the first) — and a batch stored before its answer was lost is
// answered with its first sequences.
func TestProducerSessionRetries(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	// Call 0 (batch 1) never arrives: batch 2 (call 1) finds a gap. Call 3
	// is stored but its answer lost.
	api := &flakyAsync{API: b, ap: b, failBefore: []bool{true}, failAfter: []bool{false, false, false, true}}
	p := client.NewProducer(api, "q", client.ProducerOptions{BatchSize: 5, MaxInFlight: 4, Linger: time.Hour, RetryDelay: 5 * time.Millisecond})
	defer p.Close(ctx)
	fs := publishNumbered(ctx, t, p, 40)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	seqs := map[uint64]bool{}
	for i, f := range fs {
		r, err := f.Wait(ctx)
		if err != nil || seqs[r.Seq] || r.Seq == 0 {
			t.Fatalf("message %d: %+v, %v", i, r, err)
		}
		seqs[r.Seq] = true
	}
	ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: -1})
	if err != nil || len(ds) != 40 {
		t.Fatalf("stored %d messages, want 40 (%v)", len(ds), err)
	}
	for i, d := range ds {
		if string(d.Body) != fmt.Sprint(i) || !seqs[d.Seq] {
			var got []string
			for _, d := range ds {
				got = append(got, string(d.Body))
			}
			t.Fatalf("message %d is %q (seq %d): order or answers wrong; stored %v", i, d.Body, d.Seq, got)
		}
	}
	if s := stats(t, b, "q"); s.DedupIDs != 0 {
		t.Fatalf("%d message IDs remembered", s.DedupIDs)
	}
}

// TestProducerSessionForgotten: a producer idle for longer than the
// queue's session window is forgotten by the broker; its next batch,
// refused as out of order, goes out in a new session, once.
func TestProducerSessionForgotten(t *testing.T) {
	clock := chutetest.NewFakeClock()
	for name, api := range apis(t, &broker.Options{Clock: clock}) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "forgotten-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{SessionWindow: time.Minute}); err != nil {
				t.Fatal(err)
			}
			p := client.NewProducer(api, q, client.ProducerOptions{RetryDelay: time.Millisecond})
			defer p.Close(ctx)
			for round := range 3 {
				f, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(round))})
				if err != nil {
					t.Fatal(err)
				}
				if r, err := f.Wait(ctx); err != nil || r.Duplicate {
					t.Fatalf("round %d: %+v, %v", round, r, err)
				}
				clock.Advance(2 * time.Minute)
			}
			if s := stats(t, api, q); s.Ready != 3 {
				t.Fatalf("%d stored, want 3", s.Ready)
			}
		})
	}
}

// publishNumbered publishes n messages with bodies "0", "1", … through p
// and returns their futures.
func publishNumbered(ctx context.Context, t *testing.T, p *client.Producer, n int) []*client.Future {
	t.Helper()
	fs := make([]*client.Future, n)
	for i := range fs {
		f, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
	}
	return fs
}

// countingAsync counts a Producer's publish calls, and those still
// awaiting their answer.
type countingAsync struct {
	chute.API
	ap              chute.AsyncPublisher
	calls, inflight atomic.Int64
}

func (c *countingAsync) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	c.calls.Add(1)
	c.inflight.Add(1)
	pp, err := c.ap.PublishAsync(ctx, target, msgs...)
	if err != nil {
		c.inflight.Add(-1)
		return nil, err
	}
	return countedPending{pp, c}, nil
}

type countedPending struct {
	chute.Pending
	c *countingAsync
}

func (p countedPending) Wait(ctx context.Context) ([]chute.PublishResult, error) {
	defer p.c.inflight.Add(-1)
	return p.Pending.Wait(ctx)
}

// TestProducerLingerBatches: with Linger set, messages published 10 ms
// apart, each when nothing is in flight, wait for the linger and share a
// batch (they went out one by one: 20 batches of one for 20 messages).
func TestProducerLingerBatches(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New()
	api := &countingAsync{API: b, ap: b}
	p := client.NewProducer(api, "q", client.ProducerOptions{Linger: 100 * time.Millisecond, Clock: clock})
	defer p.Close(ctx)
	fs := make([]*client.Future, 20)
	for i := range fs {
		before := api.calls.Load()
		f, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
		// The producer has dealt with it (sent it, or lingers on a timer)
		// and nothing is in flight when the next one comes.
		chutetest.Eventually(t, fmt.Sprintf("message %d sent or lingering, nothing in flight", i), func() bool {
			return api.inflight.Load() == 0 && (api.calls.Load() > before || clock.Pending() > 0)
		})
		clock.Advance(10 * time.Millisecond)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if n := api.calls.Load(); n > 3 {
		t.Fatalf("20 messages 10 ms apart with Linger 100 ms went out in %d batches, want at most 3", n)
	}
	ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: -1})
	if err != nil || len(ds) != 20 {
		t.Fatalf("stored %d messages, want 20 (%v)", len(ds), err)
	}
	for i, d := range ds {
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: out of order", i, d.Body)
		}
	}
}

// oooCounting counts the publishes the broker refused as out of order.
type oooCounting struct {
	*flakyAsync
	refused atomic.Int64
}

func (o *oooCounting) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	pp, err := o.flakyAsync.PublishAsync(ctx, target, msgs...)
	if err != nil {
		if errors.Is(err, chute.ErrOutOfOrder) {
			o.refused.Add(1)
		}
		return nil, err
	}
	return countOOO{pp, &o.refused}, nil
}

type countOOO struct {
	pp      chute.Pending
	refused *atomic.Int64
}

func (c countOOO) Wait(ctx context.Context) ([]chute.PublishResult, error) {
	res, err := c.pp.Wait(ctx)
	if errors.Is(err, chute.ErrOutOfOrder) {
		c.refused.Add(1)
	}
	return res, err
}

// TestProducerInOrderAfterRetries: batches in flight that fail together
// (a cluster's follower refusing them all) are retried, and the batches
// sent meanwhile must not keep overtaking the retries: once the retries
// are done, batches reach the broker in order again. (They did not: each
// new batch went out before its predecessor's resend, was refused as out
// of order, waited and was sent again, for good: three round trips a
// batch.) The broker refuses a handful as out of order at the start, not
// one batch in two for the rest.
func TestProducerInOrderAfterRetries(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	api := &oooCounting{flakyAsync: &flakyAsync{API: b, ap: b, failBefore: []bool{true, true, true, true}}}
	p := client.NewProducer(api, "q", client.ProducerOptions{BatchSize: 1, MaxInFlight: 4, RetryDelay: time.Millisecond})
	defer p.Close(ctx)
	const n = 400
	fs := publishNumbered(ctx, t, p, n)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: n, Wait: -1})
	if err != nil || len(ds) != n {
		t.Fatalf("stored %d messages, want %d (%v)", len(ds), n, err)
	}
	for i, d := range ds {
		if string(d.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: out of order", i, d.Body)
		}
	}
	if r := api.refused.Load(); r > 8 {
		t.Fatalf("%d of %d batches refused as out of order after 4 failed together", r, n)
	}
	t.Logf("%d batches refused as out of order", api.refused.Load())
}
