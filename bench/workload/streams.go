package workload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute/bench/adapters"
)

// W1–W4 and W7: one producer keeping a window of publishes unconfirmed
// (flat out or paced), consumers receiving with a prefetch and acking in
// batches, through adapters.Streams.

// flushTimeout bounds the wait for the publishes in flight when a
// producer's time is up.
const flushTimeout = 2 * time.Minute

// DurablePublish is W1: one producer, window Window, Size-byte bodies, for
// Duration. Figures: confirms/s (every confirmed message over the time to
// the last confirm) and the confirm latency p50/p99 (publish call to done).
func DurablePublish(ctx context.Context, sys adapters.System, cfg Config) (Report, error) {
	r := Report{Workload: "W1", System: sys.Name()}
	q, s, err := newStreams(ctx, sys, adapters.QueueOptions{InFlight: cfg.Window})
	if err != nil || s == nil {
		return na(r, err, sys)
	}
	defer deleteQueue(ctx, q, &err)
	p, err := s.NewProducer(ctx, cfg.Window)
	if err != nil {
		return r, err
	}
	lat := newHist()
	out, err := produce(ctx, p, cfg.Size, cfg.Duration, 0, lat)
	if err != nil {
		return r, err
	}
	r.rate("confirms/s", perSecond(out.confirmed, out.last))
	r.lower("confirm p50 ms", ms(lat.quantile(50)))
	r.lower("confirm p99 ms", ms(lat.quantile(99)))
	return r, checkStored(ctx, q, out.confirmed)
}

// PublishConsume is W2: W1's producer and one consumer (prefetch
// Prefetch, one ack per received batch) at once. Figures: delivered/s
// (distinct messages over the time to the last delivery) and end-to-end
// latency p50/p99 (stamped at send, read at receive).
func PublishConsume(ctx context.Context, sys adapters.System, cfg Config) (Report, error) {
	r := Report{Workload: "W2", System: sys.Name()}
	e2e, n, took, err := flow(ctx, sys, cfg, 0, 1, &r)
	if err != nil || r.NA != "" {
		return r, err
	}
	r.rate("delivered/s", perSecond(n, took))
	r.lower("e2e p50 ms", ms(e2e.quantile(50)))
	r.lower("e2e p99 ms", ms(e2e.quantile(99)))
	return r, nil
}

// Paced is W3: PublishConsume with the producer paced at Rate messages/s
// by a schedule (message i is sent at i/Rate after the start, or at once
// when behind). Figures: end-to-end latency p50/p99/p99.9 and delivered/s
// (to show the pace held). The disk's own sync latency, measured in the
// same run, is added by the command (chute bench disk).
func Paced(ctx context.Context, sys adapters.System, cfg Config) (Report, error) {
	r := Report{Workload: "W3", System: sys.Name()}
	e2e, n, took, err := flow(ctx, sys, cfg, cfg.Rate, 1, &r)
	if err != nil || r.NA != "" {
		return r, err
	}
	r.lower("e2e p50 ms", ms(e2e.quantile(50)))
	r.lower("e2e p99 ms", ms(e2e.quantile(99)))
	r.lower("e2e p99.9 ms", ms(e2e.quantile(99.9)))
	r.rate("delivered/s", perSecond(n, took))
	return r, nil
}

// FanOut is W4: one producer publishing to a topic with Subscriptions
// subscriptions, a consumer on each. Figure: delivered/s, the sum over the
// subscriptions (every subscription must get every message), and the
// end-to-end p99.
func FanOut(ctx context.Context, sys adapters.System, cfg Config) (Report, error) {
	r := Report{Workload: "W4", System: sys.Name()}
	e2e, n, took, err := flow(ctx, sys, cfg, 0, cfg.Subscriptions, &r)
	if err != nil || r.NA != "" {
		return r, err
	}
	r.rate("delivered/s", perSecond(n, took))
	r.lower("e2e p99 ms", ms(e2e.quantile(99)))
	return r, nil
}

// ManyPublishers is W7: Publishers goroutines each publishing one
// Size-byte message at a time and waiting for its confirmation
// (Queue.Publish), for Duration. Figures: confirms/s and the confirm
// latency p50/p99.
func ManyPublishers(ctx context.Context, sys adapters.System, cfg Config) (Report, error) {
	r := Report{Workload: "W7", System: sys.Name()}
	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: cfg.Publishers})
	if err != nil {
		return r, fmt.Errorf("new queue: %w", err)
	}
	defer deleteQueue(ctx, q, &err)
	res, err := Publish(ctx, sys.Name(), q, cfg.Publishers, cfg.Size, cfg.Duration)
	if err != nil {
		return r, err
	}
	r.rate("confirms/s", res.Rate())
	r.lower("confirm p50 ms", ms(res.Latency.P50))
	r.lower("confirm p99 ms", ms(res.Latency.P99))
	return r, nil
}

// flow runs one producer (paced at rate/s, or flat out for 0) on a queue,
// or on a topic with subs subscriptions when subs > 1, and a consumer per
// subscription, until every consumer has had every confirmed message. It
// returns the end-to-end latencies, the messages delivered (summed over
// the subscriptions) and the time from the start to the last delivery. A
// system without Streams sets r.NA.
func flow(ctx context.Context, sys adapters.System, cfg Config, rate, subs int, r *Report) (e2e *hist, delivered int64, took time.Duration, err error) {
	qo := adapters.QueueOptions{InFlight: cfg.Window}
	if subs > 1 {
		qo.Subscriptions = subs
	}
	q, s, err := newStreams(ctx, sys, qo)
	if err != nil || s == nil {
		*r, err = na(*r, err, sys)
		return nil, 0, 0, err
	}
	defer deleteQueue(ctx, q, &err)
	p, err := s.NewProducer(ctx, cfg.Window)
	if err != nil {
		return nil, 0, 0, err
	}
	consumers := make([]adapters.Consumer, subs)
	for i := range consumers {
		if consumers[i], err = s.NewConsumer(ctx, i, cfg.Prefetch); err != nil {
			for _, c := range consumers[:i] {
				c.Close()
			}
			p.Close()
			return nil, 0, 0, err
		}
	}
	e2e = newHist()
	var total target
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]consumed, subs)
	var wg sync.WaitGroup
	start := now()
	for i, c := range consumers {
		wg.Go(func() {
			results[i] = consume(ctx, c, &total, e2e, cfg.Idle)
			if results[i].err != nil {
				cancel() // the producer stops too
			}
		})
	}
	out, perr := produce(ctx, p, cfg.Size, cfg.Duration, rate, nil)
	total.set(out.confirmed)
	wg.Wait()
	errs := []error{perr}
	var last time.Duration
	for i, res := range results {
		errs = append(errs, res.err)
		delivered += res.distinct
		last = max(last, res.last)
		if res.dups > 0 {
			r.notef("subscription %d: %d duplicate deliveries", i, res.dups)
		}
	}
	return e2e, delivered, last - start, errors.Join(errs...)
}

// newStreams creates a queue for opts; s is nil (and err nil) when the
// queue does not implement Streams, and the queue is then already gone.
func newStreams(ctx context.Context, sys adapters.System, opts adapters.QueueOptions) (adapters.Queue, adapters.Streams, error) {
	q, err := sys.NewQueue(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("new queue: %w", err)
	}
	s, ok := q.(adapters.Streams)
	if !ok {
		return nil, nil, q.Delete(context.WithoutCancel(ctx))
	}
	return q, s, nil
}

// na marks r not applicable for want of Streams, unless err says why it
// failed instead.
func na(r Report, err error, sys adapters.System) (Report, error) {
	if err == nil {
		r.NA = sys.Name() + " has no producer/consumer streams in its adapter"
	}
	return r, err
}

// deleteQueue deletes q, joining a failure into *err.
func deleteQueue(ctx context.Context, q adapters.Queue, err *error) {
	*err = errors.Join(*err, q.Delete(context.WithoutCancel(ctx)))
}

// produced is what produce measured.
type produced struct {
	sent, confirmed int64
	// last is the stamp clock at the last confirmation.
	last time.Duration
}

// produce publishes stamped bodies of size bytes numbered from 0 through p
// for d, flat out (rate 0) or paced at rate per second, then flushes and
// closes p. Confirm latencies go to lat unless it is nil. It fails if any
// publish failed; publishes the end of d interrupts are not counted.
func produce(ctx context.Context, p adapters.Producer, size int, d time.Duration, rate int, lat *hist) (out produced, err error) {
	var (
		confirmed atomic.Int64
		last      atomic.Int64
		failed    atomic.Pointer[error]
		track     tracker
	)
	start := now()
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var seq uint64
	for runCtx.Err() == nil {
		if rate > 0 {
			if err := waitUntil(runCtx, start+time.Duration(seq)*time.Second/time.Duration(rate)); err != nil {
				break
			}
		}
		n := seq
		body := newBody(size, n)
		t0 := now()
		track.add()
		err := p.Publish(runCtx, body, func(err error) {
			t := now()
			if err != nil {
				err = fmt.Errorf("publish %d: %w", n, err)
				failed.CompareAndSwap(nil, &err)
			} else {
				confirmed.Add(1)
				if lat != nil {
					lat.record(t - t0)
				}
				for {
					l := last.Load()
					if int64(t) <= l || last.CompareAndSwap(l, int64(t)) {
						break
					}
				}
			}
			track.done()
		})
		if err != nil {
			track.done()
			if runCtx.Err() == nil {
				failed.CompareAndSwap(nil, &err)
			}
			break
		}
		seq++
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer fcancel()
	errs := []error{p.Flush(fctx)}
	select {
	case <-track.finish():
	case <-fctx.Done():
		errs = append(errs, fmt.Errorf("%d publishes unanswered after flush", track.outstanding()))
	}
	errs = append(errs, p.Close())
	if f := failed.Load(); f != nil {
		errs = append(errs, *f)
	}
	out = produced{sent: int64(seq), confirmed: confirmed.Load(), last: time.Duration(last.Load()) - start}
	return out, errors.Join(errs...)
}

// waitUntil waits until the stamp clock reads t, or ctx ends.
func waitUntil(ctx context.Context, t time.Duration) error {
	wait := t - now()
	if wait <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tracker counts publishes whose done has not been called, so that a
// producer can wait for the last one after Flush.
type tracker struct {
	mu       sync.Mutex
	out      int64         // guarded by mu
	finished bool          // guarded by mu: finish was called
	zero     chan struct{} // guarded by mu: closed once finished and out is 0
}

func (t *tracker) add() {
	t.mu.Lock()
	t.out++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.out--
	t.closeIfZeroLocked()
	t.mu.Unlock()
}

func (t *tracker) outstanding() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out
}

// finish returns a channel closed when every publish is answered.
func (t *tracker) finish() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.zero == nil {
		t.zero = make(chan struct{})
	}
	t.finished = true
	t.closeIfZeroLocked()
	return t.zero
}

func (t *tracker) closeIfZeroLocked() {
	if t.finished && t.out == 0 {
		select {
		case <-t.zero:
		default:
			close(t.zero)
		}
	}
}

// target is how many messages each consumer must get: unknown until the
// producer is done.
type target struct {
	n atomic.Int64 // 0 unknown, else the count + 1
}

func (t *target) set(n int64) { t.n.Store(n + 1) }

func (t *target) get() (n int64, known bool) {
	v := t.n.Load()
	return v - 1, v > 0
}

// consumed is what one consumer had.
type consumed struct {
	distinct, dups int64
	last           time.Duration // stamp clock at the last new message
	err            error
}

// receiveWait is how long a consumer's Receive waits for the first
// message before looking at its target again.
const receiveWait = 100 * time.Millisecond

// consume receives stamped messages from c, recording each new one's
// end-to-end latency in e2e and acking each batch, until it has had every
// message of the target (or none came for idle once the target is known).
// It closes c.
func consume(ctx context.Context, c adapters.Consumer, total *target, e2e *hist, idle time.Duration) consumed {
	return consumeWith(ctx, c, total, idle, func(t time.Duration, body []byte) {
		sent, _, _ := stamp(body)
		e2e.record(t - sent)
	})
}

// consumeWith is consume calling onNew with the receive time (stamp
// clock) and body of each message not seen before, instead of recording
// its latency.
func consumeWith(ctx context.Context, c adapters.Consumer, total *target, idle time.Duration, onNew func(t time.Duration, body []byte)) (res consumed) {
	var s seen
	progress := time.Now()
	defer func() { res.err = errors.Join(res.err, c.Close()) }()
	knownSeen := false
	for {
		want, known := total.get()
		if known && !knownSeen {
			// The idle time counts from when the target is known.
			knownSeen = true
			progress = time.Now()
		}
		if known && s.n >= want {
			res.distinct, res.dups = s.n, s.dups
			if s.n > want {
				res.err = fmt.Errorf("received %d distinct messages, %d were confirmed", s.n, want)
			}
			return res
		}
		if known && time.Since(progress) > idle {
			res.err = fmt.Errorf("received %d of %d messages; none for %v", s.n, want, idle)
			return res
		}
		msgs, err := c.Receive(ctx, receiveWait)
		if err != nil {
			res.err = fmt.Errorf("receive after %d: %w", s.n, err)
			return res
		}
		if len(msgs) == 0 {
			continue
		}
		t := now()
		for _, m := range msgs {
			_, seq, ok := stamp(m.Body)
			if !ok {
				res.err = fmt.Errorf("received a %d-byte body, not a stamped one", len(m.Body))
				return res
			}
			if s.add(seq) {
				onNew(t, m.Body)
				res.last = t
			}
		}
		progress = time.Now()
		if err := c.Ack(ctx, msgs); err != nil {
			res.err = fmt.Errorf("ack after %d: %w", s.n, err)
			return res
		}
	}
}
