// Package workload drives the same bounded loads against every system
// under comparison, through package adapters, and reports rates.
//
// The result lines have the format of `chute bench` (whose chute-only
// drivers stay in the chute module, internal/bench): keep the two in step
// so that figures from both read alike.
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

// Result is one measured run.
type Result struct {
	Name     string
	Messages int64
	Elapsed  time.Duration
	// Syncs and RecordsPerSync are filled in for queues that can see their
	// journal (adapters.SyncCounter).
	Syncs          int64
	RecordsPerSync float64
	Latency        Latencies
}

// Rate is messages per second.
func (r Result) Rate() float64 { return float64(r.Messages) / r.Elapsed.Seconds() }

func (r Result) String() string {
	s := fmt.Sprintf("%-44s %10.0f msg/s  (%d in %v)", r.Name, r.Rate(), r.Messages, r.Elapsed.Round(time.Millisecond))
	if r.Syncs > 0 {
		s += fmt.Sprintf("  %6.0f syncs/s  %6.1f records/sync", float64(r.Syncs)/r.Elapsed.Seconds(), r.RecordsPerSync)
	}
	if r.Latency.N > 0 {
		s += "  " + r.Latency.String()
	}
	return s
}

// Publish runs publishers goroutines that each publish size-byte messages
// to q one at a time, waiting for every confirmation, for d; name labels
// the result ("chute embedded"). q must have been created for publishers
// in flight. It then checks that q holds every confirmed message.
func Publish(ctx context.Context, name string, q adapters.Queue, publishers, size int, d time.Duration) (Result, error) {
	body := make([]byte, size)
	var n atomic.Int64
	lat := newRecorder(publishers)
	syncs0, records0 := syncs(q)
	// Each publisher starts no publish after d, and the ones in flight
	// then finish (rather than being cancelled, which the server would
	// log as failed calls); the run's own timeout only bounds a hang.
	began := time.Now()
	deadline := began.Add(d)
	err := run(ctx, publishers, d+flushTimeout, func(ctx context.Context, w int) error {
		for ctx.Err() == nil && time.Now().Before(deadline) {
			start := time.Now()
			if err := q.Publish(ctx, body); err != nil {
				return err
			}
			lat.add(w, time.Since(start))
			n.Add(1)
		}
		return nil
	})
	r := Result{Name: fmt.Sprintf("%s publish %d×%dB", name, publishers, size), Messages: n.Load(), Elapsed: time.Since(began), Latency: lat.summary()}
	if s, recs := syncs(q); s > syncs0 {
		r.Syncs = s - syncs0
		r.RecordsPerSync = float64(recs-records0) / float64(r.Syncs)
	}
	return r, errors.Join(err, checkStored(ctx, q, r.Messages))
}

// Window keeps window publishes in flight on q (which must implement
// adapters.AsyncPublisher and have been created for window in flight),
// waiting for their confirmations in order, for d.
func Window(ctx context.Context, name string, q adapters.Queue, window, size int, d time.Duration) (Result, error) {
	r := Result{Name: fmt.Sprintf("%s publish async window %d×%dB", name, window, size), Elapsed: d}
	ap, ok := q.(adapters.AsyncPublisher)
	if !ok {
		return r, fmt.Errorf("%s cannot publish asynchronously", name)
	}
	body := make([]byte, size)
	var n atomic.Int64
	err := run(ctx, 1, d, func(ctx context.Context, _ int) error {
		return window1(ctx, ap, body, window, &n)
	})
	r.Messages = n.Load()
	return r, errors.Join(err, checkStored(ctx, q, r.Messages))
}

// window1 publishes until ctx ends while a second goroutine waits for the
// confirmations in order; the channel's capacity bounds what is in flight.
// Publishes still in flight when ctx ends are waited for (for at most a
// minute) and counted.
func window1(ctx context.Context, ap adapters.AsyncPublisher, body []byte, window int, n *atomic.Int64) error {
	inflight := make(chan adapters.Confirm, window)
	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for c := range inflight {
			if err := c.Wait(wctx); err != nil {
				done <- err
				for range inflight {
				}
				return
			}
			n.Add(1)
		}
		done <- nil
	}()
	var err error
	for ctx.Err() == nil {
		c, perr := ap.PublishAsync(ctx, body)
		if perr != nil {
			err = perr
			break
		}
		inflight <- c
	}
	close(inflight)
	if werr := <-done; err == nil {
		err = werr
	}
	return err
}

// checkStored fails if q holds fewer messages than were confirmed.
func checkStored(ctx context.Context, q adapters.Queue, confirmed int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stored, err := q.Len(ctx)
	if err != nil {
		return fmt.Errorf("count stored messages: %w", err)
	}
	if stored < confirmed {
		return fmt.Errorf("queue holds %d messages, %d were confirmed", stored, confirmed)
	}
	return nil
}

func syncs(q adapters.Queue) (syncs, records int64) {
	if sc, ok := q.(adapters.SyncCounter); ok {
		return sc.Syncs()
	}
	return 0, 0
}

// run starts workers and stops them after d, returning the first error
// that is not the stop itself.
func run(ctx context.Context, workers int, d time.Duration, work func(ctx context.Context, w int) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			if err := work(ctx, w); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
