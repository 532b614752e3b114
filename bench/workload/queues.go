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

// W8: many queues. Defined simply, so that every system gets the same
// shape: Queues queues split evenly among QueueWorkers partitions. In each
// partition one producer goroutine publishes round-robin over the
// partition's queues (a Producer per queue), keeping at most QueueWindow
// messages unconfirmed over all of them, for Duration; one consumer
// goroutine visits the partition's queues round-robin (a Consumer per
// queue, prefetch QueueWindow), taking what each has without waiting
// (Receive with wait 0) and acking each batch; after a round that found
// nothing it waits idleRound before the next. It stops once it has had
// every message its producer had confirmed.

// idleRound is how long a W8 consumer pauses after a round over its
// queues that found nothing (polling: there is no one channel to wait on).
const idleRound = time.Millisecond

// ManyQueues is W8. Figure: delivered/s, summed over the partitions (the
// distinct messages over the time to the last delivery).
func ManyQueues(ctx context.Context, sys adapters.System, cfg Config) (r Report, err error) {
	r = Report{Workload: "W8", System: sys.Name()}
	var queues []adapters.Queue
	var streams []adapters.Streams
	defer func() {
		for _, q := range queues {
			deleteQueue(ctx, q, &err)
		}
	}()
	setup := time.Now()
	for range cfg.Queues {
		q, s, err := newStreams(ctx, sys, adapters.QueueOptions{InFlight: cfg.QueueWindow})
		if err != nil || s == nil {
			return na(r, err, sys)
		}
		queues, streams = append(queues, q), append(streams, s)
	}
	r.notef("created %d queues in %v", cfg.Queues, time.Since(setup).Round(time.Millisecond))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := make([]partition, cfg.QueueWorkers)
	var wg sync.WaitGroup
	start := now()
	for w := range parts {
		lo, hi := w*cfg.Queues/cfg.QueueWorkers, (w+1)*cfg.Queues/cfg.QueueWorkers
		wg.Go(func() {
			if err := parts[w].run(ctx, streams[lo:hi], cfg); err != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	var n int64
	var last time.Duration
	var errs []error
	for w, p := range parts {
		if p.err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", w, p.err))
		}
		n += p.got.distinct
		last = max(last, p.got.last)
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	r.notef("%d messages delivered in %v", n, (last - start).Round(time.Millisecond))
	r.rate("delivered/s", perSecond(n, last-start))
	return r, nil
}

// partition is one producer and one consumer over a slice of the queues.
type partition struct {
	got consumed
	err error
}

// run produces and consumes on qs until the consumer has had everything.
func (p *partition) run(ctx context.Context, qs []adapters.Streams, cfg Config) error {
	producers := make([]adapters.Producer, len(qs))
	consumers := make([]adapters.Consumer, len(qs))
	var err error
	for i, s := range qs {
		if producers[i], err = s.NewProducer(ctx, cfg.QueueWindow); err != nil {
			break
		}
		if consumers[i], err = s.NewConsumer(ctx, 0, cfg.QueueWindow); err != nil {
			break
		}
	}
	if err != nil {
		for i := range qs {
			if producers[i] != nil {
				producers[i].Close()
			}
			if consumers[i] != nil {
				consumers[i].Close()
			}
		}
		p.err = err
		return err
	}
	var total target
	var wg sync.WaitGroup
	wg.Go(func() { p.got = consumeRound(ctx, consumers, &total, cfg.Idle) })
	confirmed, perr := produceRound(ctx, producers, cfg)
	total.set(confirmed)
	wg.Wait()
	p.err = errors.Join(perr, p.got.err)
	return p.err
}

// produceRound publishes stamped bodies round-robin over producers for
// Duration with at most QueueWindow unconfirmed in all, then flushes and
// closes them; it returns how many were confirmed.
func produceRound(ctx context.Context, producers []adapters.Producer, cfg Config) (int64, error) {
	var confirmed atomic.Int64
	var failed atomic.Pointer[error]
	var track tracker
	slots := make(chan struct{}, cfg.QueueWindow)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var seq uint64
loop:
	for ; ; seq++ {
		select {
		case slots <- struct{}{}:
		case <-runCtx.Done():
			break loop
		}
		n := seq
		track.add()
		err := producers[n%uint64(len(producers))].Publish(runCtx, newBody(cfg.Size, n), func(err error) {
			if err != nil {
				err = fmt.Errorf("publish %d: %w", n, err)
				failed.CompareAndSwap(nil, &err)
			} else {
				confirmed.Add(1)
			}
			<-slots
			track.done()
		})
		if err != nil {
			<-slots
			track.done()
			if runCtx.Err() == nil {
				failed.CompareAndSwap(nil, &err)
			}
			break
		}
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer fcancel()
	var errs []error
	for _, p := range producers {
		errs = append(errs, p.Flush(fctx))
	}
	select {
	case <-track.finish():
	case <-fctx.Done():
		errs = append(errs, fmt.Errorf("%d publishes unanswered after flush", track.outstanding()))
	}
	for _, p := range producers {
		errs = append(errs, p.Close())
	}
	if f := failed.Load(); f != nil {
		errs = append(errs, *f)
	}
	return confirmed.Load(), errors.Join(errs...)
}

// consumeRound visits consumers round-robin, taking what each has without
// waiting and acking it, until it has had the target; it closes them.
func consumeRound(ctx context.Context, consumers []adapters.Consumer, total *target, idle time.Duration) (res consumed) {
	var s seen
	progress := time.Now()
	defer func() {
		for _, c := range consumers {
			res.err = errors.Join(res.err, c.Close())
		}
	}()
	for {
		want, known := total.get()
		if known && s.n >= want {
			res.distinct, res.dups = s.n, s.dups
			return res
		}
		if known && time.Since(progress) > idle {
			res.err = fmt.Errorf("received %d of %d messages; none for %v", s.n, want, idle)
			return res
		}
		found := false
		for _, c := range consumers {
			msgs, err := c.Receive(ctx, 0)
			if err != nil {
				res.err = fmt.Errorf("receive after %d: %w", s.n, err)
				return res
			}
			if len(msgs) == 0 {
				continue
			}
			found = true
			t := now()
			for _, m := range msgs {
				if _, seq, ok := stamp(m.Body); ok && s.add(seq) {
					res.last = t
				}
			}
			if err := c.Ack(ctx, msgs); err != nil {
				res.err = fmt.Errorf("ack after %d: %w", s.n, err)
				return res
			}
		}
		if found {
			progress = time.Now()
		} else if err := waitFor(ctx, idleRound); err != nil {
			res.err = err
			return res
		}
	}
}
