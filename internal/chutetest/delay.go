package chutetest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// The delayed-burst harness of issue 11's lateness benchmarks
// (broker.BenchmarkDelayBurst embedded, server.BenchmarkDelayBurstServer
// through the client): one copy for both.

// DelayBurstResult is the lateness of every message of a delayed burst.
type DelayBurstResult struct {
	vsStamp []time.Duration // received − (broker's publish stamp + delay)
	vsSent  []time.Duration // received − (producer's send time + delay)
	// The stamp lateness in two parts: due → the broker leased it (the
	// timer, the wake-up, a receive to take it), and leased → received
	// (the delivery record's write, and through a server the response).
	toLease, toConsumer []time.Duration
	batches             int // receive calls that returned messages
}

// report adds the percentiles to the benchmark's output (in ms) and logs
// them.
func (r DelayBurstResult) Report(b *testing.B) {
	for _, s := range []struct {
		name string
		l    []time.Duration
	}{{"stamp", r.vsStamp}, {"sent", r.vsSent}, {"due-to-lease", r.toLease}, {"lease-to-consumer", r.toConsumer}} {
		p50, p99, mx := Percentiles(s.l)
		b.ReportMetric(Ms(p50), "p50-"+s.name+"-ms")
		b.ReportMetric(Ms(p99), "p99-"+s.name+"-ms")
		b.ReportMetric(Ms(mx), "max-"+s.name+"-ms")
		b.Logf("lateness %s: p50 %v p99 %v max %v (%d messages, %d receives)", s.name, p50, p99, mx, len(s.l), r.batches)
	}
}

func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// percentiles returns the median, 99th percentile and maximum of l (sorted
// in place).
func Percentiles(l []time.Duration) (p50, p99, mx time.Duration) {
	if len(l) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l)
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	return at(0.50), at(0.99), l[len(l)-1]
}

// puller is how the consumer takes and acks messages: plain Receive and
// Ack calls (APIPuller), or a client.Consumer's Consume stream.
type Puller interface {
	Pull(ctx context.Context) ([]chute.Delivery, error) // up to 1,000, waiting at most 5 s
	Ack(ctx context.Context, receipts ...string) error
}

// APIPuller pulls with Receive(Max 1000) and acks with Ack.
type APIPuller struct {
	api   chute.API
	queue string
}

func (p APIPuller) Pull(ctx context.Context) ([]chute.Delivery, error) {
	return p.api.Receive(ctx, p.queue, chute.ReceiveOptions{Max: 1000, Wait: 5 * time.Second, Lease: BurstLease})
}

func (p APIPuller) Ack(ctx context.Context, receipts ...string) error {
	return p.api.Ack(ctx, p.queue, receipts...)
}

// RunDelayBurst creates queue on api, publishes n messages with delays
// spread uniformly over [0, spread) (shuffled by seed) in batches of 100,
// and consumes them all with one puller (nil: an APIPuller) in a loop,
// acking each batch from a second goroutine so that acks never hold up the
// next pull. Each body carries its send time and delay. It fails on a
// duplicate or missing message, or if a message arrives more than 1 ms
// early.
func RunDelayBurst(ctx context.Context, api chute.API, queue string, n int, spread time.Duration, seed uint64, p Puller) (DelayBurstResult, error) {
	if p == nil {
		p = APIPuller{api, queue}
	}
	if err := api.CreateQueue(ctx, queue, chute.QueueConfig{}); err != nil {
		return DelayBurstResult{}, err
	}
	delays := make([]time.Duration, n)
	for i := range delays {
		delays[i] = time.Duration(int64(i) * int64(spread) / int64(n))
	}
	rand.New(rand.NewPCG(seed, 11)).Shuffle(n, func(i, j int) { delays[i], delays[j] = delays[j], delays[i] })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishDelayed(ctx, api, queue, delays) }()
	// The acker takes every batch waiting and acks them in one call (the
	// issue's "batched acks"): one call per received batch, each waiting
	// for its journal sync, falls behind the receives, and with a bounded
	// hand-over the consumer would block on it.
	acks := make(chan []string, n)
	ackErr := make(chan error, 1)
	go func() {
		var err error
		for rs := range acks {
			for more := true; more; {
				select {
				case r, ok := <-acks:
					rs = append(rs, r...)
					more = ok
				default:
					more = false
				}
			}
			if err == nil {
				err = p.Ack(ctx, rs...)
			}
		}
		ackErr <- err
	}()

	res, err := consumeDelayed(ctx, p, n, acks)
	close(acks)
	if aerr := <-ackErr; err == nil {
		err = aerr
	}
	cancel()
	if perr := <-pubErr; err == nil && !errors.Is(perr, context.Canceled) {
		err = perr
	}
	return res, err
}

// publishDelayed publishes one message per delay, in batches of 100.
func publishDelayed(ctx context.Context, api chute.API, queue string, delays []time.Duration) error {
	for start := 0; start < len(delays); start += 100 {
		batch := delays[start:min(start+100, len(delays))]
		msgs := make([]chute.Message, len(batch))
		now := time.Now()
		for i, d := range batch {
			body := make([]byte, 16)
			binary.LittleEndian.PutUint64(body, uint64(now.UnixNano()))
			binary.LittleEndian.PutUint64(body[8:], uint64(d))
			msgs[i] = chute.Message{Body: body, Delay: d}
		}
		if _, err := api.Publish(ctx, queue, msgs...); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// BurstLease is the consumer's lease: a delivery's LeaseDeadline minus it
// is when the broker leased the message (one machine, one clock).
const BurstLease = time.Minute

// consumeDelayed receives n messages and measures their lateness.
func consumeDelayed(ctx context.Context, p Puller, n int, acks chan<- []string) (DelayBurstResult, error) {
	res := DelayBurstResult{vsStamp: make([]time.Duration, 0, n), vsSent: make([]time.Duration, 0, n)}
	seen := make(map[uint64]bool, n)
	for len(seen) < n {
		ds, err := p.Pull(ctx)
		got := time.Now()
		if err != nil {
			return res, fmt.Errorf("receive after %d: %w", len(seen), err)
		}
		if len(ds) == 0 {
			return res, fmt.Errorf("no message for 5 s after %d of %d", len(seen), n)
		}
		res.batches++
		rs := make([]string, len(ds))
		for i, d := range ds {
			if seen[d.Seq] {
				return res, fmt.Errorf("message %d delivered twice", d.Seq)
			}
			seen[d.Seq] = true
			rs[i] = d.Receipt
			sent := time.Unix(0, int64(binary.LittleEndian.Uint64(d.Body)))
			delay := time.Duration(binary.LittleEndian.Uint64(d.Body[8:]))
			late := got.Sub(d.Published.Add(delay))
			if late < -time.Millisecond {
				return res, fmt.Errorf("message %d (delay %v) received %v early", d.Seq, delay, -late)
			}
			res.vsStamp = append(res.vsStamp, late)
			leased := d.LeaseDeadline.Add(-BurstLease)
			res.toLease = append(res.toLease, leased.Sub(d.Published.Add(delay)))
			res.toConsumer = append(res.toConsumer, got.Sub(leased))
			res.vsSent = append(res.vsSent, got.Sub(sent.Add(delay)))
		}
		acks <- rs
	}
	return res, nil
}
