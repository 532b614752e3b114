package client_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// gatedAsync is a Producer's ordered path (chute.AsyncPublisher) whose
// confirmations wait, while it is gated, for the test to release them one
// by one: it holds the producer's in-flight window full for as long as
// the test likes. It records the messages of each publish call.
type gatedAsync struct {
	chute.API
	ap       chute.AsyncPublisher
	releases chan struct{} // each token lets one gated confirmation through

	mu      sync.Mutex
	sizes   []int         // guarded by mu: messages per call, in call order
	refused int           // guarded by mu: calls refused when submitted
	open    chan struct{} // guarded by mu: closed when not gated
}

func newGated(b *broker.Broker) *gatedAsync {
	return &gatedAsync{API: b, ap: b, releases: make(chan struct{}, 10_000), open: make(chan struct{})}
}

func (g *gatedAsync) PublishAsync(ctx context.Context, target string, msgs ...chute.Message) (chute.Pending, error) {
	pp, err := g.ap.PublishAsync(ctx, target, msgs...)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sizes = append(g.sizes, len(msgs))
	if err != nil {
		g.refused++
		return nil, err
	}
	return gatedPending{pp, g.open, g.releases}, nil
}

// calls returns the messages of each call so far.
func (g *gatedAsync) calls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// ungate lets every confirmation through, now and later, until gate.
func (g *gatedAsync) ungate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

// gate holds confirmations of later calls until released.
func (g *gatedAsync) gate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

type gatedPending struct {
	chute.Pending
	open     chan struct{}
	releases chan struct{}
}

func (p gatedPending) Wait(ctx context.Context) ([]chute.PublishResult, error) {
	select {
	case <-p.open:
	case <-p.releases:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Pending.Wait(ctx)
}

// backlogged publishes numbered messages (bodies next, next+1, …) through
// p, with api gated, until the in-flight window is full of lone messages
// (window of them: each goes alone and at once while a slot is free, which
// it checks), then until the waiting batches are full too; it returns the
// futures and the number of calls made before the backlog. Publishing uses
// a cancelled context, so that it stops instead of blocking when the
// producer is full.
func backlogged(t *testing.T, p *client.Producer, api *gatedAsync, next, window int) (fs []*client.Future, before int) {
	t.Helper()
	before = len(api.calls())
	for i := range window {
		f, err := p.Publish(context.Background(), chute.Message{Body: fmt.Append(nil, next)})
		if err != nil {
			t.Fatal(err)
		}
		next++
		fs = append(fs, f)
		chutetest.Eventually(t, fmt.Sprintf("lone message %d sent", i), func() bool {
			return len(api.calls()) == before+i+1
		})
		if n := api.calls()[before+i]; n != 1 {
			t.Fatalf("a lone message with a free slot went in a batch of %d", n)
		}
	}
	return append(fs, fill(t, p, next)...), before + window
}

// fill publishes numbered messages from next on until p refuses one
// because its waiting batch is full, and returns their futures.
func fill(t *testing.T, p *client.Producer, next int) []*client.Future {
	t.Helper()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var fs []*client.Future
	for {
		f, err := p.Publish(cancelled, chute.Message{Body: fmt.Append(nil, next)})
		if err != nil {
			return fs
		}
		next++
		fs = append(fs, f)
		if len(fs) > 100_000 {
			t.Fatal("Publish never refused: the producer buffers without bound")
		}
	}
}

// checkStored waits for fs and checks that the queue holds messages 0 to
// len(fs)-1, each once (in order if ordered).
func checkStored(t *testing.T, b *broker.Broker, q string, fs []*client.Future, ordered bool) {
	t.Helper()
	ctx := chutetest.Ctx(t)
	for i, f := range fs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	seen := make([]bool, len(fs))
	for stored := 0; stored < len(fs); {
		ds, err := b.Receive(ctx, q, chute.ReceiveOptions{Max: 100, Wait: -1})
		if err != nil || len(ds) == 0 {
			t.Fatalf("received %d (%v); %d of %d messages missing", len(ds), err, len(fs)-stored, len(fs))
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			n, err := strconv.Atoi(string(d.Body))
			switch {
			case err != nil || n < 0 || n >= len(fs) || seen[n]:
				t.Fatalf("message %q stored twice or never published", d.Body)
			case ordered && n != stored:
				t.Fatalf("message %d stored where %d was due", n, stored)
			}
			seen[n] = true
			stored++
			receipts[i] = d.Receipt
		}
		if err := b.Ack(ctx, q, receipts...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProducerBatchFollowsLoad: with the default BatchSize, a lone message
// goes alone and at once while a slot is free; while every slot is busy
// the waiting batch grows past 100 (the former fixed BatchSize) up to
// DefaultMaxBatch, so that a backlog of 5,000 messages leaves in batches
// of 1,000; and once the backlog is gone, a lone message goes alone again.
// A BatchSize set stays the cap.
func TestProducerBatchFollowsLoad(t *testing.T) {
	for _, tc := range []struct {
		name      string
		batchSize int // ProducerOptions.BatchSize
		want      int // the messages of a batch sent from a backlog
	}{
		{"default", 0, client.DefaultMaxBatch},
		{"set", 100, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := chutetest.MustOpen(t, "", nil)
			ctx := chutetest.Ctx(t)
			if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			api := newGated(b)
			const window = 4 // the default MaxInFlight
			p := client.NewProducer(api, "q", client.ProducerOptions{BatchSize: tc.batchSize})
			defer p.Close(ctx)
			fs, before := backlogged(t, p, api, 0, window)
			const backlog = 5000
			for len(fs) < window+backlog {
				// Free one slot: the batch waiting for it goes, then the
				// next one fills.
				calls := len(api.calls())
				api.releases <- struct{}{}
				chutetest.Eventually(t, "a batch sent into the freed slot", func() bool {
					return len(api.calls()) > calls
				})
				fs = append(fs, fill(t, p, len(fs))...)
			}
			api.ungate()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			sizes := api.calls()[before:]
			for i, n := range sizes[:len(sizes)-1] { // the last one took what was left
				if n != tc.want {
					t.Fatalf("batch %d of a backlog, sent while the window was full, held %d messages, want %d (batches %v)",
						i, n, tc.want, sizes)
				}
			}
			// The load falls: a lone message goes alone again.
			api.gate()
			more, _ := backlogged(t, p, api, len(fs), 1)
			api.ungate()
			checkStored(t, b, "q", append(fs, more...), true)
		})
	}
}

// TestProducerSplitsBatchTooLarge: a broker whose MaxBatch is below the
// default DefaultMaxBatch refuses a backlog's batch as too large; the
// producer resends it in halves that fit, every message is stored once,
// and its later batches fit at once.
func TestProducerSplitsBatchTooLarge(t *testing.T) {
	b := chutetest.MustOpen(t, "", &broker.Options{MaxBatch: 150})
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	api := newGated(b)
	p := client.NewProducer(api, "q", client.ProducerOptions{})
	defer p.Close(ctx)
	fs, _ := backlogged(t, p, api, 0, 4)
	api.ungate()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	refused := api.refused
	api.mu.Unlock()
	if refused == 0 {
		t.Fatalf("no batch was refused as too large (batches %v): the test tests nothing", api.calls())
	}
	// A second backlog goes in batches that fit.
	api.gate()
	more, _ := backlogged(t, p, api, len(fs), 4)
	api.ungate()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	again := api.refused - refused
	api.mu.Unlock()
	if again != 0 {
		t.Fatalf("%d batches refused as too large after the first refusal (batches %v)", again, api.calls())
	}
	checkStored(t, b, "q", append(fs, more...), false)
}
