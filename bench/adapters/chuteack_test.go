package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
)

// gatedAcks is a chute.API whose Ack calls wait for gate, announcing each
// on entered first.
type gatedAcks struct {
	chute.API
	entered chan int
	gate    chan struct{}
}

func (g gatedAcks) Ack(ctx context.Context, queue string, receipts ...string) error {
	g.entered <- len(receipts)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.API.Ack(ctx, queue, receipts...)
}

// consumerOver opens an embedded broker (closed at the test's end), makes
// a chute queue through the API wrap gives for it, publishes n messages
// and returns the queue and a consumer of prefetch prefetch.
func consumerOver(ctx context.Context, t *testing.T, wrap func(chute.API) chute.API, n, prefetch int) (adapters.Queue, adapters.Consumer) {
	t.Helper()
	b, err := broker.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	q, err := adapters.NewChuteAPI("wrapped", wrap(b)).NewQueue(ctx, adapters.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := q.Publish(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := q.(adapters.Streams).NewConsumer(ctx, 0, prefetch)
	if err != nil {
		t.Fatal(err)
	}
	return q, c
}

// TestChuteAckFreesWhenSent: a chute consumer's prefetch counts an ack
// until it is sent, not until its answer comes back, as NATS's
// MaxAckPending counts it until the server has it and chute's Runner
// settles without waiting. With the prefetch held by messages whose ack is
// out, the next Receive gets more at once.
func TestChuteAckFreesWhenSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var api gatedAcks
	q, c := consumerOver(ctx, t, func(b chute.API) chute.API {
		api = gatedAcks{API: b, entered: make(chan int, 4), gate: make(chan struct{})}
		return api
	}, 4, 2)
	first, err := c.Receive(ctx, 5*time.Second)
	if err != nil || len(first) != 2 {
		t.Fatalf("first receive: %d messages, %v", len(first), err)
	}
	if err := c.Ack(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := <-api.entered; n != 2 {
		t.Fatalf("the ack sent %d receipts, want 2", n)
	}
	// The ack is out and unanswered: the prefetch has room again.
	second, err := c.Receive(ctx, 5*time.Second)
	if err != nil || len(second) != 2 {
		t.Fatalf("receive while the ack is out: %d messages, %v", len(second), err)
	}
	close(api.gate)
	if err := c.Ack(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx); err != nil {
		t.Fatal(err)
	}
}

// unknownAcks is a chute.API whose first Ack call is answered as mode
// says: chute.ErrOutcomeUnknown, as a cluster whose leader changed during
// the call, having applied it or not; client.ErrStreamBroken, having
// applied it; or, having applied it, with the stale receipts of a second
// ack (a first answer that is not to be taken for an earlier call's
// success).
type unknownAcks struct {
	chute.API
	mode  string
	calls *atomic.Int32
}

func (u unknownAcks) Ack(ctx context.Context, queue string, receipts ...string) error {
	if u.calls.Add(1) > 1 {
		return u.API.Ack(ctx, queue, receipts...)
	}
	if u.mode != "not applied" {
		if err := u.API.Ack(ctx, queue, receipts...); err != nil {
			return err
		}
	}
	switch u.mode {
	case "stale":
		return u.API.Ack(ctx, queue, receipts...)
	case "stream broken":
		return fmt.Errorf("%w: its leases were returned", client.ErrStreamBroken)
	}
	return chute.ErrOutcomeUnknown
}

// TestChuteAckOutcomeUnknown: an ack whose outcome is unknown (an
// election in a cluster, W6's drain) is sent again. If the first call
// had acked the messages, the second's stale receipts are its success;
// if not, the second acks them. Either way the consumer reports no
// error and the queue is empty. Stale receipts in a first answer are
// still an error.
func TestChuteAckOutcomeUnknown(t *testing.T) {
	for _, mode := range []string{"applied", "not applied", "stream broken", "stale"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			api := unknownAcks{mode: mode, calls: new(atomic.Int32)}
			q, c := consumerOver(ctx, t, func(b chute.API) chute.API {
				api.API = b
				return api
			}, 3, 10)
			var got []adapters.Message
			for len(got) < 3 {
				ms, err := c.Receive(ctx, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ms...)
			}
			if err := c.Ack(ctx, got); err != nil {
				t.Fatal(err)
			}
			err := c.Close()
			wantCalls := int32(2)
			if mode == "stale" {
				wantCalls = 1
				if !errors.Is(err, chute.ErrStaleReceipt) {
					t.Fatalf("stale receipts in a first answer: close returned %v", err)
				}
			} else if err != nil {
				t.Fatalf("close after an ack whose outcome was unknown: %v", err)
			}
			if n := api.calls.Load(); n != wantCalls {
				t.Fatalf("%d Ack calls, want %d", n, wantCalls)
			}
			if n, err := q.Len(ctx); err != nil || n != 0 {
				t.Fatalf("the queue holds %d (%v) after the acks", n, err)
			}
			if err := q.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
