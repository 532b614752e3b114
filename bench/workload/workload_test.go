package workload_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/workload"
)

// fakeSys is an in-memory system whose queues can lose one confirmed
// message, to check that the workloads notice.
type fakeSys struct {
	lose int64 // the producer message number to lose; -1: none
}

func (s fakeSys) Name() string { return "fake" }

func (s fakeSys) NewQueue(context.Context, adapters.QueueOptions) (adapters.Queue, error) {
	return &fakeQueue{ch: make(chan []byte, 1<<20), lose: s.lose}, nil
}

// fakeQueue is a channel of bodies.
type fakeQueue struct {
	ch     chan []byte
	lose   int64
	seq    atomic.Int64 // producer messages so far
	stored atomic.Int64
}

func (q *fakeQueue) Publish(_ context.Context, body []byte) error {
	q.ch <- body
	q.stored.Add(1)
	return nil
}

func (q *fakeQueue) Fill(ctx context.Context, n, size int) error {
	for range n {
		q.Publish(ctx, make([]byte, size))
	}
	return nil
}

func (q *fakeQueue) Len(context.Context) (int64, error) { return q.stored.Load(), nil }
func (q *fakeQueue) Delete(context.Context) error       { return nil }

func (q *fakeQueue) NewProducer(context.Context, int) (adapters.Producer, error) {
	return fakeProducer{q}, nil
}

func (q *fakeQueue) NewConsumer(context.Context, int, int) (adapters.Consumer, error) {
	return fakeConsumer{q}, nil
}

// fakeProducer confirms every publish at once, and loses the one it was
// told to.
type fakeProducer struct{ q *fakeQueue }

func (p fakeProducer) Publish(ctx context.Context, body []byte, done func(error)) error {
	if p.q.seq.Add(1)-1 != p.q.lose {
		p.q.Publish(ctx, body)
	}
	done(nil)
	return nil
}

func (fakeProducer) Flush(context.Context) error { return nil }
func (fakeProducer) Close() error                { return nil }

type fakeConsumer struct{ q *fakeQueue }

func (c fakeConsumer) Receive(ctx context.Context, wait time.Duration) ([]adapters.Message, error) {
	t := time.NewTimer(max(wait, time.Millisecond))
	defer t.Stop()
	var out []adapters.Message
	select {
	case b := <-c.q.ch:
		out = append(out, adapters.Message{Body: b})
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < 100 {
		select {
		case b := <-c.q.ch:
			out = append(out, adapters.Message{Body: b})
		default:
			return out, nil
		}
	}
	return out, nil
}

func (c fakeConsumer) Ack(_ context.Context, msgs []adapters.Message) error {
	c.q.stored.Add(-int64(len(msgs)))
	return nil
}

func (fakeConsumer) Close() error { return nil }

var _ adapters.Streams = (*fakeQueue)(nil)

// TestCountsChecked: a message confirmed but never delivered fails the
// flowing workloads; with none lost they report their figures.
func TestCountsChecked(t *testing.T) {
	cfg := workload.Config{Duration: 50 * time.Millisecond, Idle: 300 * time.Millisecond, Window: 10, Prefetch: 10,
		Subscriptions: 1, Queues: 4, QueueWorkers: 2}.WithDefaults()
	for _, w := range []workload.Workload{mustFind(t, "W2"), mustFind(t, "W3"), mustFind(t, "W8")} {
		t.Run(w.ID, func(t *testing.T) {
			r, err := w.Run(context.Background(), fakeSys{lose: -1}, cfg)
			if err != nil || len(r.Figures) == 0 {
				t.Fatalf("nothing lost: %v, %+v", err, r)
			}
			r, err = w.Run(context.Background(), fakeSys{lose: 3}, cfg)
			if err == nil || !strings.Contains(err.Error(), "none for") {
				t.Fatalf("one lost: %v, %+v", err, r)
			}
		})
	}
}

// TestNotApplicable: a system without delays or a server process gets
// "n/a" for W5 and W6, not an error.
func TestNotApplicable(t *testing.T) {
	cfg := workload.Config{}.WithDefaults()
	for _, id := range []string{"W5", "W6"} {
		r, err := mustFind(t, id).Run(context.Background(), fakeSys{lose: -1}, cfg)
		if err != nil || r.NA == "" || len(r.Figures) != 0 {
			t.Errorf("%s: %v, %+v", id, err, r)
		}
	}
}

func mustFind(t *testing.T, id string) workload.Workload {
	t.Helper()
	w, ok := workload.Find(id)
	if !ok {
		t.Fatalf("no workload %s", id)
	}
	return w
}

// TestFigureJSON: Never is written "never", other values as numbers.
func TestFigureJSON(t *testing.T) {
	b, err := json.Marshal([]workload.Figure{{Name: "a", Value: 1.5}, {Name: "b", Value: workload.Never, Lower: true}})
	if want := `[{"name":"a","value":1.5},{"name":"b","lower_is_better":true,"value":"never"}]`; err != nil || string(b) != want {
		t.Errorf("got %s, %v; want %s", b, err, want)
	}
}
