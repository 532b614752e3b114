package client

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/chutemq/chute"
)

// Errors of a Consumer. Receipt failures (an ack of a receipt whose lease
// is over) are *chute.ReceiptErrors, as from chute.API's Ack.
var (
	// ErrConsumerClosed: the Consumer was closed; it receives and settles
	// nothing more.
	ErrConsumerClosed = errors.New("consumer closed")
	// ErrStreamBroken: the Consume stream ended before the server confirmed
	// a settlement, or had ended when it was asked for: the server returns
	// the leases a stream held when it ends (the messages will be
	// redelivered), so those receipts are no longer worth settling. Whether
	// a settlement that was sent took effect is unknown; acking its
	// receipts again is safe (a lease already over fails with
	// chute.ErrStaleReceipt).
	ErrStreamBroken = errors.New("consume stream broken")
	// errConsumeEnded is the cause of ErrStreamBroken when the stream ended
	// without an error of its own.
	errConsumeEnded = errors.New("consume stream ended")
)

// ConsumerOptions tune a Consumer; the zero value works.
type ConsumerOptions struct {
	// Prefetch is how many messages the Consumer keeps coming over the
	// network: the credit it keeps granted on its Consume stream, topped up
	// by Receive when a quarter of it is used. Default 256. More keeps a
	// fast consumer from waiting for a round trip; but messages on hand are
	// leased (their lease runs before Receive returns them) and withheld
	// from other consumers. A Receive asking for more than Prefetch grants
	// what it asks for. Over an embedded broker (any API but *Client) it is
	// not used: each Receive takes up to max from the broker.
	Prefetch int
	// Lease is each delivery's lease; 0 means the queue's visibility
	// timeout.
	Lease time.Duration
	// Clock times ReceiveWait's bound over the network; default the system
	// clock. (Embedded, the broker's own clock times it.)
	Clock chute.Clock
	// Logger gets failures reported for settlements nobody waits for any
	// more (their Ack's ctx ended) and stream-wide failures; default
	// discarded.
	Logger *slog.Logger
}

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	if o.Prefetch <= 0 {
		o.Prefetch = 256
	}
	if o.Clock == nil {
		o.Clock = chute.SystemClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// consumerSource is what a Consumer needs of a source: fetch with a wait
// bound, and settlements that return once the server has applied them.
type consumerSource interface {
	source
	fetchWait(ctx context.Context, n int, wait time.Duration) ([]chute.Delivery, error)
	settleWait(ctx context.Context, s settlement) error
}

// Consumer pulls messages from one queue for a program that runs its own
// loop (a batch worker, a benchmark) rather than handing a Runner a
// handler: Receive, then Ack, Nack or Extend.
//
// Over the network (api is a *Client) it uses a Consume stream, as a
// Runner does: the server pushes up to Prefetch messages ahead of Receive
// (a Receive finds them on hand instead of making a round trip), and
// settlements travel on the same stream. Over any other chute.API (the
// embedded broker) it makes the plain Receive, Ack, Nack and Extend calls,
// so code written against a Consumer runs embedded unchanged. (Issue 11:
// paced at 2,000 messages/s through `chute serve`, a loop of unary Receive
// and Ack calls had an end-to-end p50 of 2.1–2.4 ms where a Runner's
// stream had 0.9 ms; programs that pull for themselves had only the
// former.)
//
// Receive calls are serialised (one at a time; a second waits for the
// first); Ack, Nack and Extend may be called from any goroutine, also
// while a Receive waits.
//
// When the stream breaks (the server restarted, the connection dropped),
// the Receive waiting gets the error and the next Receive opens a new
// stream. The server returns the leases of the broken stream's messages
// (they count as a delivery): messages received but not yet returned by
// Receive are dropped, and settling ones already returned fails — with
// ErrStreamBroken while no new stream is open, per receipt with
// chute.ErrStaleReceipt on the new one.
type Consumer struct {
	src       consumerSource
	recv      chan struct{} // holds a token while a Receive runs: one at a time
	done      chan struct{} // closed when Close starts
	closeOnce sync.Once
	closeErr  error // set by the first Close, inside closeOnce
}

// NewConsumer returns a Consumer of queue on api: over a Consume stream
// when api is a *Client, over plain calls otherwise. It connects on the
// first Receive.
func NewConsumer(api chute.API, queue string, opts ConsumerOptions) *Consumer {
	o := opts.withDefaults()
	logf := func(msg string, args ...any) { o.Logger.Warn(msg, args...) }
	c := &Consumer{recv: make(chan struct{}, 1), done: make(chan struct{})}
	if cl, ok := api.(*Client); ok {
		s := newStreamSource(cl, queue, o.Lease, logf)
		s.prefetch, s.clock = o.Prefetch, o.Clock
		c.src = s
	} else {
		c.src = &pollSource{api: api, queue: queue, lease: o.Lease}
	}
	return c
}

// Receive returns 1 to max messages (max ≤ 0 means 1), waiting until one
// is there or ctx ends. See ReceiveWait.
func (c *Consumer) Receive(ctx context.Context, max int) ([]chute.Delivery, error) {
	return c.ReceiveWait(ctx, max, 0)
}

// ReceiveWait returns up to max messages (max ≤ 0 means 1), waiting for
// the first at most wait, as chute.ReceiveOptions.Wait: 0 waits until ctx
// ends, a negative wait returns at once. It returns no messages and no
// error when the wait passed. An error is ctx's, ErrConsumerClosed, or why
// the stream broke (the next call opens another: retry, with a back-off).
func (c *Consumer) ReceiveWait(ctx context.Context, max int, wait time.Duration) ([]chute.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	select {
	case c.recv <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, ErrConsumerClosed
	}
	defer func() { <-c.recv }()
	if c.isClosed() {
		return nil, ErrConsumerClosed
	}
	return c.src.fetchWait(ctx, max, wait)
}

// Ack settles deliveries: the messages are done. It returns once the
// server has applied the acks (they are durable, as with chute.API's Ack):
// a round trip, which does not hold up Receive. An error is a
// *chute.ReceiptErrors listing the receipts that failed (the others were
// acked), ErrStreamBroken (see Consumer), ErrConsumerClosed or ctx's;
// when ctx ends first, the acks may still be applied. A loop that should
// not wait for the round trip (a journal sync on the server) before its
// next Receive acks from another goroutine: Ack is safe to call
// concurrently, and messages keep arriving meanwhile. More receipts than
// DefaultMaxBatch go in parts (settleInBatches), one after another.
func (c *Consumer) Ack(ctx context.Context, receipts ...string) error {
	return settleInBatches(receipts, func(part []string) error { return c.settle(ctx, settlement{acks: part}) })
}

// Nack returns deliveries for redelivery (after their delay or the queue's
// back-off), waiting as Ack does.
func (c *Consumer) Nack(ctx context.Context, nacks ...chute.Nack) error {
	return settleInBatches(nacks, func(part []chute.Nack) error { return c.settle(ctx, settlement{nacks: part}) })
}

// Extend moves the deadline of leases to lease from now (0: the queue's
// visibility timeout), waiting as Ack does.
func (c *Consumer) Extend(ctx context.Context, lease time.Duration, receipts ...string) error {
	return settleInBatches(receipts, func(part []string) error {
		return c.settle(ctx, settlement{extends: part, lease: lease})
	})
}

// settleInBatches settles items in parts of at most DefaultMaxBatch (the
// server's default --max-batch, beyond which a settlement is refused), in
// order, so that a Receive of more than that can be settled in one call;
// failed receipts are reported by their index in items. It stops at an
// error that is not about receipts.
func settleInBatches[T any](items []T, settle func(part []T) error) error {
	var failed []chute.ReceiptError
	for start := 0; start < len(items); start += DefaultMaxBatch {
		err := settle(items[start:min(start+DefaultMaxBatch, len(items))])
		var re *chute.ReceiptErrors
		switch {
		case err == nil:
		case errors.As(err, &re):
			for _, f := range re.Failed {
				f.Index += start
				failed = append(failed, f)
			}
		default:
			return err
		}
	}
	if failed != nil {
		return &chute.ReceiptErrors{Failed: failed}
	}
	return nil
}

func (c *Consumer) settle(ctx context.Context, s settlement) error {
	if c.isClosed() {
		return ErrConsumerClosed
	}
	return c.src.settleWait(ctx, s)
}

func (c *Consumer) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close stops the Consumer. Messages received from the server but not yet
// returned by Receive go back to the queue at once, unstarted (not counting
// towards the queue's max deliveries), as a stopping Runner's do. Over a
// stream, so does every lease the stream still holds — messages Receive
// returned and nobody settled — since the server returns them when the
// stream ends cleanly; over plain calls those keep their leases until they
// expire. Close waits (at most 5 s) for the server to confirm the
// settlements already sent and end the stream, so that when it returns
// the returned messages can be received at once. A Receive waiting on
// the stream returns ErrConsumerClosed (over plain calls, only its ctx
// ends a Receive in progress). Close is idempotent; later calls return the
// first's result. Settle what Receive returned before Close.
func (c *Consumer) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		if ds := c.src.drain(); len(ds) > 0 {
			nacks := make([]chute.Nack, len(ds))
			for i, d := range ds {
				nacks[i] = chute.Nack{Receipt: d.Receipt, Delay: -1, Unstarted: true}
			}
			// Sent without waiting for the answer: the server applies it
			// before it ends the stream, which src.close waits for.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c.closeErr = c.src.settle(ctx, settlement{nacks: nacks})
			cancel()
		}
		c.src.close()
	})
	return c.closeErr
}
