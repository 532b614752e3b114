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
	// Linger is how long a batch waits for more messages before it is sent;
	// default 1 ms. Messages are sent at once while nothing is in flight.
	Linger time.Duration
	// MaxInFlight is how many batches may be awaiting confirmation at once;
	// default 16. Publish blocks (honouring its ctx) when the window and the
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
	if o.Linger <= 0 {
		o.Linger = time.Millisecond
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
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
	done chan struct{}
	res  chute.PublishResult
	err  error
}

// Done is closed when the message is confirmed or has failed.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result is the outcome; valid once Done is closed.
func (f *Future) Result() (chute.PublishResult, error) { return f.res, f.err }

// Wait waits for the outcome or ctx.
func (f *Future) Wait(ctx context.Context) (chute.PublishResult, error) {
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return chute.PublishResult{}, ctx.Err()
	}
}

// ErrProducerClosed is returned by Publish after Close.
var ErrProducerClosed = errors.New("producer closed")

// Producer publishes asynchronously to one queue or topic: messages are
// batched (on size or linger time), up to MaxInFlight batches are awaiting
// confirmation at once, transient failures are retried with back-off, and
// each message's confirmation is a Future. Over the network it uses one
// PublishStream per producer. It works on any chute.API.
type Producer struct {
	api    chute.API
	target string
	opts   ProducerOptions
	submit submitFunc
	stream *publishStream

	in      chan pending // to the batcher
	flushes chan chan struct{}
	freed   chan struct{} // a batch completed: the batcher may be idle now
	slots   chan struct{} // one per batch in flight
	ctx     context.Context
	cancel  context.CancelFunc // ends retries on Close
	wg      sync.WaitGroup     // batcher and senders

	mu     sync.RWMutex // Publish holds it shared while it hands a message over
	closed bool         // guarded by mu
	idBase string
	nextID atomic.Uint64
}

type pending struct {
	msg chute.Message
	f   *Future
}

// submitFunc hands a batch over (in order: batches submitted one after
// another are stored in that order) and returns how to wait for it.
type (
	submitFunc func(ctx context.Context, msgs []chute.Message) (waitFunc, error)
	waitFunc   func(ctx context.Context) ([]chute.PublishResult, error)
)

// asyncPublisher is implemented by *chute.Broker.
type asyncPublisher interface {
	PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (*chute.PendingPublish, error)
}

// NewProducer returns a producer publishing to target through api.
func NewProducer(api chute.API, target string, opts ProducerOptions) *Producer {
	o := opts.withDefaults()
	p := &Producer{api: api, target: target, opts: o,
		in:      make(chan pending, o.BatchSize*2),
		flushes: make(chan chan struct{}),
		freed:   make(chan struct{}, 1),
		slots:   make(chan struct{}, o.MaxInFlight),
		idBase:  randomID(),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	switch a := api.(type) {
	case *Client:
		p.stream = newPublishStream(a)
		p.submit = func(_ context.Context, msgs []chute.Message) (waitFunc, error) {
			return p.stream.submit(target, msgs)
		}
	case asyncPublisher:
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

// Publish queues msg and returns its future. It blocks only while the
// producer's buffer is full (ctx bounds the wait).
func (p *Producer) Publish(ctx context.Context, msg chute.Message) (*Future, error) {
	f := &Future{done: make(chan struct{})}
	if msg.ID == "" && !p.opts.NoIDs {
		msg.ID = p.idBase + "-" + strconv.FormatUint(p.nextID.Add(1), 36)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrProducerClosed
	}
	select {
	case p.in <- pending{msg, f}:
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Flush waits until every message published before the call is confirmed
// or has failed.
func (p *Producer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.flushes <- done:
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
	p.mu.Lock() // waits for Publish calls handing a message over
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.Flush(ctx)
	p.cancel()
	close(p.in)
	p.wg.Wait()
	if p.stream != nil {
		p.stream.close()
	}
	return err
}

// batcher gathers messages into batches and hands each to a sender
// goroutine, at most MaxInFlight at a time.
func (p *Producer) batcher() {
	var batch []pending
	var size int
	var timer chute.Timer
	var lingered <-chan time.Time
	var waiters []chan struct{} // flushes waiting for the current batch
	var sent []chan struct{}    // batches sent and perhaps not yet done
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, lingered = nil, nil
		}
	}
	flush := func() {
		stopTimer()
		if len(batch) > 0 {
			p.slots <- struct{}{}
			b, done := batch, make(chan struct{})
			msgs := make([]chute.Message, len(b))
			for i := range b {
				msgs[i] = b[i].msg
			}
			// Submitted here, in order; waited for in its own goroutine.
			w, err := p.submit(p.ctx, msgs)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() {
					<-p.slots
					close(done)
					select {
					case p.freed <- struct{}{}:
					default:
					}
				}()
				p.finishBatch(b, msgs, w, err)
			}()
			batch, size = nil, 0
			sent = pruneDone(append(sent, done))
		}
		if len(waiters) > 0 {
			ws, before := waiters, slices.Clone(sent)
			waiters = nil
			p.wg.Add(1)
			go func() { // a flush completes when every batch before it has
				defer p.wg.Done()
				for _, d := range before {
					<-d
				}
				for _, w := range ws {
					close(w)
				}
			}()
		}
	}
	for {
		select {
		case it, ok := <-p.in:
			if !ok {
				flush()
				for _, d := range sent {
					<-d
				}
				return
			}
			batch = append(batch, it)
			size += len(it.msg.Body)
			switch {
			case len(batch) >= p.opts.BatchSize || size >= p.opts.BatchBytes:
				flush()
			case len(p.slots) == 0 && len(p.in) == 0:
				flush() // nothing in flight and nothing queued: no reason to wait
			case timer == nil:
				timer = p.opts.Clock.NewTimer(p.opts.Linger)
				lingered = timer.C()
			}
		case <-lingered:
			timer, lingered = nil, nil
			flush()
		case <-p.freed:
			if len(batch) > 0 && len(p.slots) == 0 {
				flush() // idle again: no reason to wait for the linger
			}
		case w := <-p.flushes:
			// Take what is already queued, then flush it all.
			for drained := false; !drained; {
				select {
				case it, ok := <-p.in:
					if !ok {
						drained = true
						break
					}
					batch = append(batch, it)
					size += len(it.msg.Body)
					if len(batch) >= p.opts.BatchSize || size >= p.opts.BatchBytes {
						flush()
					}
				default:
					drained = true
				}
			}
			waiters = append(waiters, w)
			flush()
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

// finishBatch waits for a submitted batch, retries it if it failed
// transiently, and completes its futures. A batch refused for one bad
// message is resent message by message, so that only the bad one fails.
func (p *Producer) finishBatch(batch []pending, msgs []chute.Message, w waitFunc, err error) {
	var res []chute.PublishResult
	if err == nil {
		res, err = w(p.ctx)
	}
	if err != nil && p.retryable(err) {
		res, err = p.publishWithRetry(msgs)
	}
	if err == nil && len(res) != len(msgs) {
		err = fmt.Errorf("publish answered %d results for %d messages", len(res), len(msgs))
	}
	if err != nil && len(batch) > 1 && (errors.Is(err, chute.ErrInvalidMessage) || errors.Is(err, chute.ErrMessageTooLarge)) {
		for _, it := range batch {
			r, err := p.publishWithRetry([]chute.Message{it.msg})
			complete(it.f, r, err)
		}
		return
	}
	for i, it := range batch {
		var r []chute.PublishResult
		if err == nil {
			r = res[i : i+1]
		}
		complete(it.f, r, err)
	}
}

func (p *Producer) retryable(err error) bool {
	return p.ctx.Err() == nil && (wire.IsTransient(err) || errors.Is(err, errStreamBroken) || errors.Is(err, errStreamClosed))
}

func complete(f *Future, res []chute.PublishResult, err error) {
	if err == nil && len(res) == 1 {
		f.res = res[0]
	} else if err == nil {
		err = fmt.Errorf("publish answered %d results for 1 message", len(res))
	}
	f.err = err
	close(f.done)
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
