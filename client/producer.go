package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/wire"
)

// ProducerOptions tune a Producer; the zero value works.
type ProducerOptions struct {
	// BatchSize is the most messages per publish call; default 100.
	BatchSize int
	// BatchBytes flushes a batch once its bodies reach this size; default
	// 512 KiB.
	BatchBytes int
	// Linger is how long a batch may wait for more messages while a slot
	// in the in-flight window is free; 0 (the default) sends at once: the
	// batches then form of what arrives while earlier ones are in flight,
	// which gives small batches when the load is light and large ones when
	// it is heavy, without adding latency. A full window always holds
	// messages back.
	Linger time.Duration
	// MaxInFlight is how many batches may be awaiting confirmation at once;
	// default 4 (measured: more in flight means smaller batches and more
	// system calls for the same messages, not more throughput). Publish blocks (honouring its ctx) when the window and the
	// buffer are full: the producer slows the caller instead of piling up.
	MaxInFlight int
	// Retry governs retries of transient failures (server unreachable or
	// restarting, queue full): exponential back-off from RetryDelay (default
	// 20 ms) to RetryMaxDelay (default 2 s), for at most MaxRetries
	// attempts (default 20; negative: until Close).
	RetryDelay    time.Duration
	RetryMaxDelay time.Duration
	MaxRetries    int
	// NoIDs leaves messages without an ID as they are. By default each such
	// message gets a unique producer ID, so that a retried batch (whose
	// first attempt may have been stored) is never stored twice: the
	// broker answers the retry with the first copy's sequence.
	NoIDs bool
	// Clock is the time source (for linger and back-off); default the
	// system clock.
	Clock chute.Clock
}

func (o ProducerOptions) withDefaults() ProducerOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 512 << 10
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 20 * time.Millisecond
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 2 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 20
	}
	if o.Clock == nil {
		o.Clock = chute.SystemClock()
	}
	return o
}

// Future is the confirmation of one message published by a Producer.
type Future struct {
	b *batch
	i int
}

// Done is closed when the message is confirmed or has failed.
func (f *Future) Done() <-chan struct{} { return f.b.done }

// Result is the outcome; valid once Done is closed.
func (f *Future) Result() (chute.PublishResult, error) {
	b := f.b
	switch {
	case b.errs != nil && b.errs[f.i] != nil:
		return chute.PublishResult{}, b.errs[f.i]
	case b.err != nil:
		return chute.PublishResult{}, b.err
	}
	return b.res[f.i], nil
}

// Wait waits for the outcome or ctx.
func (f *Future) Wait(ctx context.Context) (chute.PublishResult, error) {
	select {
	case <-f.b.done:
		return f.Result()
	case <-ctx.Done():
		return chute.PublishResult{}, ctx.Err()
	}
}

// batch is a group of messages sent in one publish call; every Future of
// its messages shares its completion (one channel per batch, not per
// message).
type batch struct {
	msgs []chute.Message
	size int
	done chan struct{}
	res  []chute.PublishResult
	err  error   // the whole batch failed
	errs []error // per message, when the batch was split
}

// ErrProducerClosed is returned by Publish after Close.
var ErrProducerClosed = errors.New("producer closed")

// Producer publishes asynchronously to one queue or topic: messages are
// batched (on size or linger time), up to MaxInFlight batches are awaiting
// confirmation at once, transient failures are retried with back-off, and
// each message's confirmation is a Future. Batches are handed over in
// order, so one producer's messages are stored in publish order (except
// across retries). Over the network it uses one PublishStream per
// producer. It works on any chute.API.
type Producer struct {
	api    chute.API
	target string
	opts   ProducerOptions
	submit submitFunc
	stream *publishStream

	mu      sync.Mutex
	open    *batch        // guarded by mu: the batch messages go into
	space   chan struct{} // guarded by mu: closed when a full open batch is taken
	closed  bool          // guarded by mu
	kick    chan struct{} // wakes the batcher: the open batch is full or new
	flushes chan chan struct{}
	freed   chan struct{} // a batch completed: the batcher may be idle now
	slots   chan struct{} // one per batch in flight
	quit    chan struct{} // closed by Close, after the last flush
	ctx     context.Context
	cancel  context.CancelFunc // ends retries on Close
	wg      sync.WaitGroup     // batcher and senders

	idBase string
	nextID atomic.Uint64
}

// submitFunc hands a batch over (in order: batches submitted one after
// another are stored in that order) and returns how to wait for it.
type (
	submitFunc func(ctx context.Context, msgs []chute.Message) (waitFunc, error)
	waitFunc   func(ctx context.Context) ([]chute.PublishResult, error)
)

// NewProducer returns a producer publishing to target through api.
func NewProducer(api chute.API, target string, opts ProducerOptions) *Producer {
	o := opts.withDefaults()
	p := &Producer{api: api, target: target, opts: o,
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		flushes: make(chan chan struct{}),
		freed:   make(chan struct{}, 1),
		slots:   make(chan struct{}, o.MaxInFlight),
		quit:    make(chan struct{}),
		idBase:  randomID(),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	switch a := api.(type) {
	case *Client:
		p.stream = newPublishStream(a)
		p.submit = func(_ context.Context, msgs []chute.Message) (waitFunc, error) {
			return p.stream.submit(target, msgs)
		}
	case chute.AsyncPublisher:
		p.submit = func(ctx context.Context, msgs []chute.Message) (waitFunc, error) {
			pp, err := a.PublishAsync(ctx, target, msgs...)
			if err != nil {
				return nil, err
			}
			return pp.Wait, nil
		}
	default: // any API: concurrent batches may be stored out of order
		p.submit = func(_ context.Context, msgs []chute.Message) (waitFunc, error) {
			return func(ctx context.Context) ([]chute.PublishResult, error) {
				return api.Publish(ctx, target, msgs...)
			}, nil
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.batcher()
	}()
	return p
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (p *Producer) full(b *batch) bool {
	return len(b.msgs) >= p.opts.BatchSize || b.size >= p.opts.BatchBytes
}

// Publish adds msg to the open batch and returns its future. It blocks
// only while the open batch is full and the in-flight window too (ctx
// bounds the wait): the producer slows its callers instead of piling up.
func (p *Producer) Publish(ctx context.Context, msg chute.Message) (*Future, error) {
	if msg.ID == "" && !p.opts.NoIDs {
		msg.ID = p.idBase + "-" + strconv.FormatUint(p.nextID.Add(1), 36)
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrProducerClosed
		}
		if p.open == nil || !p.full(p.open) {
			break
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}
	if p.open == nil {
		p.open = &batch{done: make(chan struct{})}
	}
	b := p.open
	f := &Future{b: b, i: len(b.msgs)}
	b.msgs = append(b.msgs, msg)
	b.size += len(msg.Body)
	wake := len(b.msgs) == 1 || p.full(b)
	p.mu.Unlock()
	if wake {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return f, nil
}

// take removes the open batch (nil if empty) and lets blocked publishers on.
func (p *Producer) take() *batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.open
	if b == nil || len(b.msgs) == 0 {
		return nil
	}
	p.open = nil
	if p.full(b) {
		close(p.space)
		p.space = make(chan struct{})
	}
	return b
}

func (p *Producer) openState() (n int, full bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		return 0, false
	}
	return len(p.open.msgs), p.full(p.open)
}

// Flush waits until every message published before the call is confirmed
// or has failed.
func (p *Producer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.flushes <- done:
	case <-p.quit:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes (within ctx) and stops the producer; messages still
// unconfirmed when ctx ends fail with ErrProducerClosed.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.space) // publishers waiting for space wake and see closed
	p.space = make(chan struct{})
	p.mu.Unlock()
	err := p.Flush(ctx)
	p.cancel()
	close(p.quit)
	p.wg.Wait()
	if p.stream != nil {
		p.stream.close()
	}
	return err
}

// batcher sends the open batch when it is full, when nothing is in flight,
// or when it has lingered; at most MaxInFlight batches are in flight. It
// submits batches one after another (their order is kept) and waits for
// each in its own goroutine.
func (p *Producer) batcher() {
	var timer chute.Timer
	var lingered <-chan time.Time
	var sent []chan struct{} // batches sent and perhaps not yet done
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, lingered = nil, nil
		}
	}
	send := func() {
		b := p.take()
		if b == nil {
			return
		}
		stopTimer()
		select {
		case p.slots <- struct{}{}:
		case <-p.quit:
			b.err = ErrProducerClosed
			close(b.done)
			return
		}
		w, err := p.submit(p.ctx, b.msgs) // here, in order
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() {
				<-p.slots
				select {
				case p.freed <- struct{}{}:
				default:
				}
			}()
			p.finish(b, w, err)
		}()
		sent = pruneDone(append(sent, b.done))
	}
	// consider decides what to do with the open batch now.
	consider := func() {
		n, full := p.openState()
		switch {
		case n == 0:
			stopTimer()
		case full || len(p.slots) == 0:
			send() // full, or idle: no reason to wait
		case len(p.slots) == cap(p.slots):
			// The window is full: the batch grows until a slot frees.
		case p.opts.Linger <= 0:
			send()
		case timer == nil:
			timer = p.opts.Clock.NewTimer(p.opts.Linger)
			lingered = timer.C()
		}
	}
	for {
		select {
		case <-p.kick:
			consider()
		case <-p.freed:
			consider()
		case <-lingered:
			timer, lingered = nil, nil
			send()
		case w := <-p.flushes:
			send()
			before := slices.Clone(sent)
			p.wg.Add(1)
			go func() { // a flush completes when every batch before it has
				defer p.wg.Done()
				for _, d := range before {
					<-d
				}
				close(w)
			}()
		case <-p.quit:
			stopTimer()
			if b := p.take(); b != nil { // published after the last flush
				b.err = ErrProducerClosed
				close(b.done)
			}
			return
		}
	}
}

// pruneDone drops the channels of batches already done (from the front,
// where the oldest are), keeping the list short.
func pruneDone(sent []chan struct{}) []chan struct{} {
	n := 0
	for n < len(sent) {
		select {
		case <-sent[n]:
			n++
			continue
		default:
		}
		break
	}
	return sent[n:]
}

// finish waits for a submitted batch, retries it if it failed transiently,
// and completes it. A batch refused for one bad message is resent message
// by message, so that only the bad one fails.
func (p *Producer) finish(b *batch, w waitFunc, err error) {
	defer close(b.done)
	var res []chute.PublishResult
	if err == nil {
		res, err = w(p.ctx)
	}
	if err != nil && p.retryable(err) {
		res, err = p.publishWithRetry(b.msgs)
	}
	if err == nil && len(res) != len(b.msgs) {
		err = fmt.Errorf("publish answered %d results for %d messages", len(res), len(b.msgs))
	}
	if err != nil && len(b.msgs) > 1 && (errors.Is(err, chute.ErrInvalidMessage) || errors.Is(err, chute.ErrMessageTooLarge)) {
		b.res, b.errs = make([]chute.PublishResult, len(b.msgs)), make([]error, len(b.msgs))
		for i, m := range b.msgs {
			r, err := p.publishWithRetry([]chute.Message{m})
			if err == nil {
				b.res[i] = r[0]
			}
			b.errs[i] = err
		}
		return
	}
	b.res, b.err = res, err
}

func (p *Producer) retryable(err error) bool {
	return p.ctx.Err() == nil && (wire.IsTransient(err) || errors.Is(err, errStreamBroken) || errors.Is(err, errStreamClosed))
}

// publishWithRetry sends msgs until they are confirmed, refused for good,
// or the retries run out, backing off between attempts. A retried batch
// may land after batches sent later.
func (p *Producer) publishWithRetry(msgs []chute.Message) ([]chute.PublishResult, error) {
	delay := p.opts.RetryDelay
	for attempt := 1; ; attempt++ {
		w, err := p.submit(p.ctx, msgs)
		var res []chute.PublishResult
		if err == nil {
			res, err = w(p.ctx)
		}
		if err == nil {
			if len(res) != len(msgs) {
				return nil, fmt.Errorf("publish answered %d results for %d messages", len(res), len(msgs))
			}
			return res, nil
		}
		if !p.retryable(err) || p.opts.MaxRetries > 0 && attempt >= p.opts.MaxRetries {
			if p.ctx.Err() != nil {
				return nil, fmt.Errorf("%w: %w", ErrProducerClosed, err)
			}
			return nil, err
		}
		t := p.opts.Clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-p.ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: %w", ErrProducerClosed, err)
		}
		delay = min(delay*2, p.opts.RetryMaxDelay)
	}
}
