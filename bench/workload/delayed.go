package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/chutemq/chute/bench/adapters"
)

// W5: per-message delays and priorities, for systems with an
// adapters.DelayPublisher (chute); the others are "n/a".

// Delayed is W5. The delayed burst: a consumer (prefetch Prefetch) runs
// while DelayedMessages messages are published as fast as they go, in
// publishes of DelayBatch, each with a delay drawn uniformly from
// [0, DelaySpread); lateness = received − (sent + delay), where sent is
// read just before the publish that carried the message. Figures:
// lateness p50/p99/max, and early deliveries (before their time; must be
// 0). Then the priority check: PriorityMessages messages of priorities
// drawn uniformly from 0–9 are published while no consumer runs, then one
// consumer with prefetch 1 reads them all; every message of a higher
// priority than the one before it is an inversion (must be 0).
func Delayed(ctx context.Context, sys adapters.System, cfg Config) (r Report, err error) {
	r = Report{Workload: "W5", System: sys.Name()}
	rng := rand.New(rand.NewPCG(cfg.Seed, 5))
	late, early, err := delayedBurst(ctx, sys, cfg, rng, &r)
	if err != nil || r.NA != "" {
		return r, err
	}
	inversions, err := priorityCheck(ctx, sys, cfg, rng)
	if err != nil {
		return r, err
	}
	r.lower("lateness p50 ms", ms(late.quantile(50)))
	r.lower("lateness p99 ms", ms(late.quantile(99)))
	r.lower("lateness max ms", ms(late.max()))
	r.lower("early", float64(early))
	r.lower("priority inversions", float64(inversions))
	return r, nil
}

// delayedQueue creates a queue that can take delays and be consumed; dp
// is nil (and the queue gone) when sys cannot.
func delayedQueue(ctx context.Context, sys adapters.System, inflight int) (adapters.Queue, adapters.DelayPublisher, adapters.Streams, error) {
	q, s, err := newStreams(ctx, sys, adapters.QueueOptions{InFlight: inflight})
	if err != nil || s == nil {
		return nil, nil, nil, err
	}
	dp, ok := q.(adapters.DelayPublisher)
	if !ok {
		return nil, nil, nil, q.Delete(context.WithoutCancel(ctx))
	}
	return q, dp, s, nil
}

// delayedBurst runs the burst; it sets r.NA for a system without delays.
func delayedBurst(ctx context.Context, sys adapters.System, cfg Config, rng *rand.Rand, r *Report) (late *hist, early int64, err error) {
	q, dp, s, err := delayedQueue(ctx, sys, cfg.DelayBatch)
	if err != nil || dp == nil {
		if err == nil {
			r.NA = sys.Name() + " has no per-message delays and priorities"
		}
		return nil, 0, err
	}
	defer deleteQueue(ctx, q, &err)
	c, err := s.NewConsumer(ctx, 0, cfg.Prefetch)
	if err != nil {
		return nil, 0, err
	}
	late = newHist()
	var total target
	total.set(int64(cfg.DelayedMessages))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var res consumed
	var mu sync.Mutex // guards early
	var wg sync.WaitGroup
	wg.Go(func() {
		res = consumeDelayed(ctx, c, &total, late, cfg.Idle+cfg.DelaySpread, func() { mu.Lock(); early++; mu.Unlock() })
		if res.err != nil {
			cancel()
		}
	})
	batch := make([]adapters.DelayedMessage, 0, cfg.DelayBatch)
	var perr error
	for seq := 0; seq < cfg.DelayedMessages && perr == nil; {
		batch = batch[:0]
		sent := now()
		for ; len(batch) < cfg.DelayBatch && seq < cfg.DelayedMessages; seq++ {
			delay := time.Duration(rng.Int64N(int64(cfg.DelaySpread)))
			body := make([]byte, stampSize)
			binary.LittleEndian.PutUint64(body[stampSent:], uint64(sent))
			binary.LittleEndian.PutUint64(body[stampSeq:], uint64(seq))
			binary.LittleEndian.PutUint64(body[stampDelay:], uint64(delay))
			batch = append(batch, adapters.DelayedMessage{Body: body, Delay: delay})
		}
		if perr = dp.PublishMany(ctx, batch); perr != nil {
			perr = fmt.Errorf("publish delayed messages: %w", perr)
			cancel()
		}
	}
	wg.Wait()
	if res.dups > 0 {
		r.notef("%d duplicate deliveries of delayed messages", res.dups)
	}
	return late, early, errors.Join(perr, res.err)
}

// consumeDelayed is consume for delayed messages: it records lateness
// (received − (sent + delay)) instead of latency, and calls early for a
// message received before its time.
func consumeDelayed(ctx context.Context, c adapters.Consumer, total *target, late *hist, idle time.Duration, early func()) consumed {
	return consumeWith(ctx, c, total, idle, func(t time.Duration, body []byte) {
		sent := time.Duration(binary.LittleEndian.Uint64(body[stampSent:]))
		delay := time.Duration(binary.LittleEndian.Uint64(body[stampDelay:]))
		d := t - (sent + delay)
		if d < 0 {
			early()
			d = 0
		}
		late.record(d)
	})
}

// priorityCheck publishes a backlog of mixed priorities, then reads it
// with prefetch 1 and counts inversions.
func priorityCheck(ctx context.Context, sys adapters.System, cfg Config, rng *rand.Rand) (inversions int64, err error) {
	q, dp, s, err := delayedQueue(ctx, sys, cfg.DelayBatch)
	if err != nil || dp == nil {
		return 0, err
	}
	defer deleteQueue(ctx, q, &err)
	for seq := 0; seq < cfg.PriorityMessages; {
		var batch []adapters.DelayedMessage
		for ; len(batch) < cfg.DelayBatch && seq < cfg.PriorityMessages; seq++ {
			pri := rng.IntN(10)
			body := make([]byte, stampSize)
			binary.LittleEndian.PutUint64(body[stampSeq:], uint64(seq))
			body[stampPriority] = byte(pri)
			batch = append(batch, adapters.DelayedMessage{Body: body, Priority: pri})
		}
		if err := dp.PublishMany(ctx, batch); err != nil {
			return 0, fmt.Errorf("publish priorities: %w", err)
		}
	}
	c, err := s.NewConsumer(ctx, 0, 1)
	if err != nil {
		return 0, err
	}
	var total target
	total.set(int64(cfg.PriorityMessages))
	prev := -1
	res := consumeWith(ctx, c, &total, cfg.Idle, func(_ time.Duration, body []byte) {
		pri := int(body[stampPriority])
		if prev >= 0 && pri > prev {
			inversions++
		}
		prev = pri
	})
	return inversions, res.err
}
