package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestConsumerReceivesAndAcksEverything pulls 1,000 messages in batches
// and acks each batch. Ack returns once the server applied it, so the
// queue's stats are exact right after the last Ack, without polling: all
// acked, none in flight (so no lease is left to expire and redeliver),
// each delivered exactly once.
func TestConsumerReceivesAndAcksEverything(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "c-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			const n = 1000
			p := client.NewProducer(api, q, client.ProducerOptions{})
			for i := range n {
				if _, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			c := client.NewConsumer(api, q, client.ConsumerOptions{Prefetch: 100})
			defer c.Close()
			seen := map[string]bool{}
			for len(seen) < n {
				ds, err := c.Receive(ctx, 64)
				if err != nil {
					t.Fatalf("receive after %d: %v", len(seen), err)
				}
				if len(ds) == 0 || len(ds) > 64 {
					t.Fatalf("receive returned %d messages", len(ds))
				}
				rs := make([]string, len(ds))
				for i, d := range ds {
					if seen[string(d.Body)] {
						t.Fatalf("message %s received twice", d.Body)
					}
					seen[string(d.Body)] = true
					rs[i] = d.Receipt
				}
				if err := c.Ack(ctx, rs...); err != nil {
					t.Fatal(err)
				}
			}
			s := stats(t, api, q)
			if s.Totals.Acked != n || s.Ready != 0 || s.InFlight != 0 || s.Delayed != 0 ||
				s.Totals.Delivered != n || s.Totals.Redelivered != 0 || s.Totals.LeaseExpired != 0 {
				t.Fatalf("after the last ack: ready %d in flight %d delayed %d, totals %+v",
					s.Ready, s.InFlight, s.Delayed, s.Totals)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if s := stats(t, api, q); s.Totals.Delivered != n || s.InFlight != 0 {
				t.Fatalf("after close: in flight %d, totals %+v", s.InFlight, s.Totals)
			}
		})
	}
}

// TestConsumerCloseReturnsUnfetched: messages the consumer holds but never
// returned from Receive go back to the queue, unstarted, by the time Close
// returns: another consumer receives them at once, as first deliveries.
func TestConsumerCloseReturnsUnfetched(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "cc-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			publishN(t, api, q, 100, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			c := client.NewConsumer(api, q, client.ConsumerOptions{Prefetch: 50})
			ds, err := c.Receive(ctx, 10)
			if err != nil || len(ds) == 0 {
				t.Fatalf("receive: %d %v", len(ds), err)
			}
			if name == "network" {
				// Let the whole prefetch arrive, so that Close has
				// deliveries on hand to return.
				chutetest.Eventually(t, "the prefetch delivered", func() bool { return stats(t, api, q).InFlight == 50 })
			}
			rs := make([]string, len(ds))
			for i, d := range ds {
				rs[i] = d.Receipt
			}
			if err := c.Ack(ctx, rs...); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			left := 100 - len(ds)
			s := stats(t, api, q)
			if s.InFlight != 0 || s.Ready != int64(left) {
				t.Fatalf("after close: in flight %d, ready %d, want 0 and %d", s.InFlight, s.Ready, left)
			}
			got, err := api.Receive(ctx, q, chute.ReceiveOptions{Max: 100, Wait: -1})
			if err != nil || len(got) != left {
				t.Fatalf("another receiver got %d of %d: %v", len(got), left, err)
			}
			for _, d := range got {
				if d.Deliveries != 1 {
					t.Fatalf("message %s: delivery %d, want 1 (returned unstarted)", d.Body, d.Deliveries)
				}
			}
			if _, err := c.Receive(ctx, 1); !errors.Is(err, client.ErrConsumerClosed) {
				t.Fatalf("receive after close: %v", err)
			}
			if err := c.Ack(ctx, got[0].Receipt); !errors.Is(err, client.ErrConsumerClosed) {
				t.Fatalf("ack after close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
		})
	}
}

// TestConsumerSettleFailures: Ack, Nack and Extend wait for the server's
// answer, so a receipt that fails is reported to the caller.
func TestConsumerSettleFailures(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "cf-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			publishN(t, api, q, 2, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			c := client.NewConsumer(api, q, client.ConsumerOptions{Prefetch: 4})
			defer c.Close()
			var ds []chute.Delivery
			for len(ds) < 2 {
				got, err := c.Receive(ctx, 2)
				if err != nil {
					t.Fatal(err)
				}
				ds = append(ds, got...)
			}
			if err := c.Ack(ctx, "no-such-receipt"); !errors.Is(err, chute.ErrInvalidReceipt) {
				t.Fatalf("ack of an unknown receipt: %v", err)
			}
			if err := c.Ack(ctx, ds[0].Receipt); err != nil {
				t.Fatal(err)
			}
			var re *chute.ReceiptErrors
			err := c.Ack(ctx, ds[1].Receipt, ds[0].Receipt)
			if !errors.Is(err, chute.ErrStaleReceipt) || !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != 1 {
				t.Fatalf("second ack: %v", err)
			}
			if err := c.Nack(ctx, chute.Nack{Receipt: ds[0].Receipt}); !errors.Is(err, chute.ErrStaleReceipt) {
				t.Fatalf("nack of an acked receipt: %v", err)
			}
			if err := c.Extend(ctx, time.Minute, ds[1].Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
				t.Fatalf("extend of an acked receipt: %v", err)
			}
			if s := stats(t, api, q); s.Totals.Acked != 2 || s.InFlight != 0 {
				t.Fatalf("acked %d, in flight %d", s.Totals.Acked, s.InFlight)
			}
		})
	}
}

// TestConsumerReceiveWait: a bounded wait on an empty queue returns no
// messages and no error once the consumer's clock passes the bound; a
// negative wait returns at once; a message published meanwhile ends a wait.
func TestConsumerReceiveWait(t *testing.T) {
	c0, _ := dial(t, server.Options{})
	ctx := chutetest.Ctx(t)
	if err := c0.CreateQueue(ctx, "w", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	clock := chutetest.NewFakeClock()
	c := client.NewConsumer(c0, "w", client.ConsumerOptions{Clock: clock})
	defer c.Close()
	if ds, err := c.ReceiveWait(ctx, 10, -1); err != nil || len(ds) != 0 {
		t.Fatalf("no wait: %d %v", len(ds), err)
	}
	type result struct {
		ds  []chute.Delivery
		err error
	}
	done := make(chan result, 1)
	go func() {
		ds, err := c.ReceiveWait(ctx, 10, time.Second)
		done <- result{ds, err}
	}()
	chutetest.Eventually(t, "the wait timer armed", func() bool { return clock.Pending() == 1 })
	select {
	case r := <-done:
		t.Fatalf("returned before the wait passed: %d %v", len(r.ds), r.err)
	default:
	}
	clock.Advance(time.Second)
	if r := <-done; r.err != nil || len(r.ds) != 0 {
		t.Fatalf("after the wait: %d %v", len(r.ds), r.err)
	}
	go func() {
		ds, err := c.ReceiveWait(ctx, 10, time.Hour)
		done <- result{ds, err}
	}()
	chutetest.Eventually(t, "the wait timer armed", func() bool { return clock.Pending() == 1 })
	publishN(t, c0, "w", 1, func(int) chute.Message { return chute.Message{Body: []byte("x")} })
	if r := <-done; r.err != nil || len(r.ds) != 1 {
		t.Fatalf("wait ended by a message: %d %v", len(r.ds), r.err)
	}
	if clock.Pending() != 0 {
		t.Fatalf("%d timers left armed", clock.Pending())
	}
}

// TestConsumerCloseWakesReceive: Close ends a Receive that waits.
func TestConsumerCloseWakesReceive(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "cw-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			c := client.NewConsumer(api, q, client.ConsumerOptions{})
			if _, err := c.ReceiveWait(ctx, 1, -1); err != nil { // connects
				t.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.Receive(rctx, 1)
				done <- err
			}()
			if name == "embedded" {
				// Over plain calls, Close does not interrupt a
				// broker.Receive in progress: ctx does.
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("receive: %v", err)
				}
				c.Close()
				return
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, client.ErrConsumerClosed) {
				t.Fatalf("receive during close: %v", err)
			}
		})
	}
}

// TestConsumerReconnects: when the server restarts, the stream breaks;
// settling its deliveries then fails (their leases are returned), and the
// next Receive opens a new stream and gets them again.
func TestConsumerReconnects(t *testing.T) {
	r := newRestartable(t)
	c0, err := client.Dial(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	ctx := chutetest.Ctx(t)
	if err := c0.CreateQueue(ctx, "r", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	publishN(t, c0, "r", 3, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
	c := client.NewConsumer(c0, "r", client.ConsumerOptions{Prefetch: 8})
	defer c.Close()
	var ds []chute.Delivery
	for len(ds) < 3 {
		got, err := c.Receive(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, got...)
	}
	r.stop()
	r.start()
	err = c.Ack(ctx, ds[0].Receipt)
	if !errors.Is(err, client.ErrStreamBroken) && !errors.Is(err, chute.ErrStaleReceipt) {
		t.Fatalf("ack across a restart: %v", err)
	}
	var again []chute.Delivery
	for tries := 0; len(again) < 3; tries++ {
		got, err := c.Receive(ctx, 3)
		if err != nil {
			// The broken stream's error, reported once; the next
			// Receive opens a new stream.
			if tries > 2 || ctx.Err() != nil {
				t.Fatalf("receive after the restart: %v", err)
			}
			continue
		}
		again = append(again, got...)
	}
	for _, d := range again {
		if err := c.Ack(ctx, d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	if s := stats(t, c0, "r"); s.Totals.Acked != 3 || s.InFlight != 0 || s.Ready != 0 {
		t.Fatalf("acked %d, in flight %d, ready %d", s.Totals.Acked, s.InFlight, s.Ready)
	}
}

// TestConsumerLeavesNoGoroutines: a closed Consumer leaves nothing
// running (beyond the connection the client keeps).
func TestConsumerLeavesNoGoroutines(t *testing.T) {
	c0, _ := dial(t, server.Options{})
	ctx := chutetest.Ctx(t)
	if err := c0.CreateQueue(ctx, "g", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	publishN(t, c0, "g", 20, func(int) chute.Message { return chute.Message{Body: []byte("x")} })
	before := goleak.IgnoreCurrent()
	c := client.NewConsumer(c0, "g", client.ConsumerOptions{Prefetch: 10})
	ds, err := c.Receive(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}

// A batch worker pulling messages itself: Receive, work, Ack. Over the
// network the Consumer keeps a Consume stream with Prefetch messages
// coming; handed an embedded broker it makes plain calls.
func ExampleConsumer() {
	addr, stop := serveForExample() // in real life: `chute serve`
	defer stop()
	c, err := client.Dial(addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.CreateQueue(ctx, "jobs", chute.QueueConfig{}); err != nil {
		panic(err)
	}
	for _, b := range []string{"a", "b", "c"} {
		if _, err := c.Publish(ctx, "jobs", chute.Message{Body: []byte(b)}); err != nil {
			panic(err)
		}
	}

	cons := client.NewConsumer(c, "jobs", client.ConsumerOptions{Prefetch: 100})
	defer cons.Close() // returns what it holds unfetched to the queue
	for done := 0; done < 3; {
		ds, err := cons.ReceiveWait(ctx, 10, time.Second)
		if err != nil {
			panic(err) // in real code: the stream broke; back off, and the next call opens another
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			fmt.Println(string(d.Body))
			receipts[i] = d.Receipt
		}
		// Ack returns once the server has applied it. A loop that should
		// not wait for that round trip can ack from another goroutine.
		if err := cons.Ack(ctx, receipts...); err != nil {
			panic(err)
		}
		done += len(ds)
	}
	// Output:
	// a
	// b
	// c
}

// TestConsumerSettlesMoreThanABatch: one Ack of more receipts than a
// settlement may carry (the server's --max-batch, 1000 by default) is
// sent in parts, and a failed receipt is reported by its index in the
// whole call.
func TestConsumerSettlesMoreThanABatch(t *testing.T) {
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "cb-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			const n = 2500
			publishN(t, api, q, n, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
			c := client.NewConsumer(api, q, client.ConsumerOptions{Prefetch: 1000})
			defer c.Close()
			var rs []string
			for len(rs) < n {
				ds, err := c.Receive(ctx, 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					rs = append(rs, d.Receipt)
				}
			}
			const bad = 1500
			all := append(append(append([]string(nil), rs[:bad]...), "no-such-receipt"), rs[bad:]...)
			var re *chute.ReceiptErrors
			err := c.Ack(ctx, all...)
			if !errors.As(err, &re) || len(re.Failed) != 1 || re.Failed[0].Index != bad || !errors.Is(err, chute.ErrInvalidReceipt) {
				t.Fatalf("ack of %d receipts with a bad one at %d: %v", len(all), bad, err)
			}
			if s := stats(t, api, q); s.Totals.Acked != n || s.InFlight != 0 {
				t.Fatalf("acked %d, in flight %d", s.Totals.Acked, s.InFlight)
			}
		})
	}
}
