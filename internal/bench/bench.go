// Package bench holds the load generators behind `chute bench`: confirmed
// publish, publish+receive+ack, backlog fill, producer and runner loads.
// Every driver runs for a bounded time against a chute.API (the embedded
// broker or the network client).
//
// Comparisons with other brokers live in their own module, bench/ at the
// root of the repository (command chute-compare), so that those brokers'
// clients stay out of the chute binary (issue 7). Its result lines have
// the format of Result.String here: keep the two in step.
package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
)

// Result is one measured run.
type Result struct {
	Name     string
	Messages int64
	Elapsed  time.Duration
	// Syncs and RecordsPerSync are filled in by callers that can see the
	// journal (the embedded broker).
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
// to target one at a time, waiting for every confirmation, for d. With ids
// each message carries a unique producer ID (as client.Producer gives
// them), so that the broker's de-duplication is part of the load.
func Publish(ctx context.Context, api chute.API, target string, publishers, size int, d time.Duration, ids bool) (Result, error) {
	body := make([]byte, size)
	var n atomic.Int64
	lat := newRecorder(publishers)
	run0 := time.Now().UnixNano()
	err := run(ctx, publishers, d, func(ctx context.Context, w int) error {
		msg := []chute.Message{{Body: body}}
		prefix := fmt.Sprintf("%x-%d-", run0, w)
		for i := 0; ctx.Err() == nil; i++ {
			if ids {
				msg[0].ID = prefix + strconv.Itoa(i)
			}
			start := time.Now()
			if _, err := api.Publish(ctx, target, msg...); err != nil {
				return err
			}
			lat.add(w, time.Since(start))
			n.Add(1)
		}
		return nil
	})
	r := Result{Name: fmt.Sprintf("publish %d×%dB", publishers, size), Messages: n.Load(), Elapsed: d, Latency: lat.summary()}
	return r, err
}

// PubSub runs publishers (as Publish) and consumers that receive up to
// batch messages at a time and ack them, for d; it counts acked messages.
func PubSub(ctx context.Context, api chute.API, queue string, publishers, consumers, size, batch int, d time.Duration) (Result, error) {
	body := make([]byte, size)
	var acked atomic.Int64
	err := run(ctx, publishers+consumers, d, func(ctx context.Context, w int) error {
		if w < publishers {
			msg := []chute.Message{{Body: body}}
			for ctx.Err() == nil {
				if _, err := api.Publish(ctx, queue, msg...); err != nil {
					return err
				}
			}
			return nil
		}
		receipts := make([]string, 0, batch)
		for ctx.Err() == nil {
			ds, err := api.Receive(ctx, queue, chute.ReceiveOptions{Max: batch})
			if err != nil {
				return err
			}
			receipts = receipts[:0]
			for _, d := range ds {
				receipts = append(receipts, d.Receipt)
			}
			if err := api.Ack(ctx, queue, receipts...); err != nil {
				return err
			}
			acked.Add(int64(len(ds)))
		}
		return nil
	})
	return Result{Name: fmt.Sprintf("publish+receive+ack %dp/%dc×%dB", publishers, consumers, size),
		Messages: acked.Load(), Elapsed: d}, err
}

// Fill publishes n messages of size bytes in batches (setup for backlog
// and recovery measurements).
func Fill(ctx context.Context, api chute.API, queue string, n, size, batch int) error {
	body := make([]byte, size)
	msgs := make([]chute.Message, batch)
	for i := range msgs {
		msgs[i] = chute.Message{Body: body}
	}
	for done := 0; done < n; done += batch {
		k := min(batch, n-done)
		if _, err := api.Publish(ctx, queue, msgs[:k]...); err != nil {
			return err
		}
	}
	return nil
}

// run starts workers and stops them after d, returning the first error
// that is not the stop itself.
func run(ctx context.Context, workers int, d time.Duration, work func(ctx context.Context, w int) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(ctx, w); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// RSS returns this process's resident set size and its peak, in bytes.
func RSS() (cur, peak int64, err error) { return ProcessRSS("self") }

// ProcessRSS returns the resident set size and its peak of process pid
// ("self" for this one), from /proc.
func ProcessRSS(pid string) (cur, peak int64, err error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			cur = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return cur, peak, sc.Err()
}
