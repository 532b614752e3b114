package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustCreate(t *testing.T, b chute.API, name string, cfg chute.QueueConfig) {
	t.Helper()
	if err := b.CreateQueue(context.Background(), name, cfg); err != nil {
		t.Fatal(err)
	}
}

func mustPublish(t *testing.T, b chute.API, target string, msgs ...chute.Message) []chute.PublishResult {
	t.Helper()
	res, err := b.Publish(context.Background(), target, msgs...)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res
}

func mustReceive(t *testing.T, b chute.API, q string, opts chute.ReceiveOptions) []chute.Delivery {
	t.Helper()
	if opts.Wait == 0 {
		opts.Wait = -1
	}
	ds, err := b.Receive(chutetest.Ctx(t), q, opts)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return ds
}

func bodies(ds []chute.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}

func TestPublishReceiveAck(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "jobs", chute.QueueConfig{})
	res := mustPublish(t, b, "jobs",
		chute.Message{Body: []byte("one"), Headers: map[string]string{"k": "v"}, ID: "id-1", Key: "key"},
		chute.Message{Body: []byte("two"), Priority: 9})
	if res[0].Seq == 0 || res[1].Seq != res[0].Seq+1 {
		t.Fatalf("results %+v", res)
	}
	ds := mustReceive(t, b, "jobs", chute.ReceiveOptions{Max: 10})
	if got := bodies(ds); !slices.Equal(got, []string{"two", "one"}) {
		t.Fatalf("got %v", got)
	}
	one := ds[1]
	if one.Headers["k"] != "v" || one.ID != "id-1" || one.Key != "key" || one.Deliveries != 1 || one.Receipt == "" || one.Queue != "jobs" {
		t.Fatalf("delivery %+v", one)
	}
	if err := b.Ack(context.Background(), "jobs", ds[0].Receipt, ds[1].Receipt); err != nil {
		t.Fatal(err)
	}
	err := b.Ack(context.Background(), "jobs", one.Receipt, "garbage")
	var re *chute.ReceiptErrors
	if !errors.As(err, &re) || len(re.Failed) != 2 || !errors.Is(err, chute.ErrStaleReceipt) || !errors.Is(err, chute.ErrInvalidReceipt) {
		t.Fatalf("second ack: %v", err)
	}
	s, err := b.QueueStats(context.Background(), "jobs")
	if err != nil || s.Depth() != 0 || s.Totals.Acked != 2 {
		t.Fatalf("stats %+v %v", s, err)
	}
}

func TestReceiveWaitsForPublish(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "q", chute.QueueConfig{})
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, _ := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{})
		got <- ds
	}()
	mustPublish(t, b, "q", chute.Message{Body: []byte("hello")})
	if ds := <-got; len(ds) != 1 || string(ds[0].Body) != "hello" {
		t.Fatalf("got %v", ds)
	}
}

func TestReceiveWakesOnDelayAndLeaseExpiry(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	mustCreate(t, b, "q", chute.QueueConfig{VisibilityTimeout: 10 * time.Second})
	mustPublish(t, b, "q", chute.Message{Body: []byte("later"), Delay: 5 * time.Second})
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, _ := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{})
		got <- ds
	}()
	chutetest.Eventually(t, "the broker to arm its timer", func() bool { return clock.Pending() > 0 })
	select {
	case ds := <-got:
		t.Fatalf("received %v before the delay", bodies(ds))
	default:
	}
	clock.Advance(5 * time.Second)
	first := <-got
	if len(first) != 1 || first[0].Deliveries != 1 {
		t.Fatalf("got %v", first)
	}
	// Not acked: the lease expires after 10 s and a waiting receive gets it.
	go func() {
		ds, _ := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{})
		got <- ds
	}()
	chutetest.Eventually(t, "the lease timer", func() bool { return clock.Pending() > 0 })
	clock.Advance(10 * time.Second)
	second := <-got
	if len(second) != 1 || second[0].Deliveries != 2 || second[0].Seq != first[0].Seq {
		t.Fatalf("redelivery %+v", second)
	}
	if err := b.Ack(context.Background(), "q", first[0].Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
		t.Fatalf("ack of the expired lease: %v", err)
	}
}

func TestReceiveWaitTimeoutAndClose(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b, err := broker.Open("", &broker.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	done := make(chan error, 2)
	go func() {
		ds, err := b.Receive(context.Background(), "q", chute.ReceiveOptions{Wait: time.Second})
		if err == nil && len(ds) != 0 {
			err = fmt.Errorf("got %d messages", len(ds))
		}
		done <- err
	}()
	chutetest.Eventually(t, "the wait timer", func() bool { return clock.Pending() > 0 })
	clock.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("timed-out receive: %v", err)
	}
	go func() {
		_, err := b.Receive(context.Background(), "q", chute.ReceiveOptions{})
		done <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, chute.ErrClosed) {
		t.Fatalf("receive across Close: %v", err)
	}
	if _, err := b.Publish(context.Background(), "q", chute.Message{}); !errors.Is(err, chute.ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}

func TestLimitsAndBadInput(t *testing.T) {
	b := chutetest.MustOpen(t, "", &broker.Options{MaxMessageSize: 100, MaxBatch: 3, MaxHeaders: 2})
	mustCreate(t, b, "q", chute.QueueConfig{})
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"too large", second(b.Publish(ctx, "q", chute.Message{Body: make([]byte, 101)})), chute.ErrMessageTooLarge},
		{"batch", second(b.Publish(ctx, "q", make([]chute.Message, 4)...)), chute.ErrBatchTooLarge},
		{"headers", second(b.Publish(ctx, "q", chute.Message{Headers: map[string]string{"a": "", "b": "", "c": ""}})), chute.ErrInvalidMessage},
		{"empty header name", second(b.Publish(ctx, "q", chute.Message{Headers: map[string]string{"": "x"}})), chute.ErrInvalidMessage},
		{"priority", second(b.Publish(ctx, "q", chute.Message{Priority: 10})), chute.ErrInvalidMessage},
		{"negative delay", second(b.Publish(ctx, "q", chute.Message{Delay: -1})), chute.ErrInvalidMessage},
		{"unknown target", second(b.Publish(ctx, "nope", chute.Message{})), chute.ErrNotFound},
		{"bad name", b.CreateQueue(ctx, "no spaces", chute.QueueConfig{}), chute.ErrInvalidName},
		{"receive unknown", second(b.Receive(ctx, "nope", chute.ReceiveOptions{Wait: -1})), chute.ErrQueueNotFound},
		{"ack unknown queue", b.Ack(ctx, "nope", "1.1.1"), chute.ErrQueueNotFound},
		{"receipt of another queue", b.Ack(ctx, "q", "ff.1.1"), chute.ErrStaleReceipt},
		{"receive too many", second(b.Receive(ctx, "q", chute.ReceiveOptions{Max: 4})), chute.ErrBatchTooLarge},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	// The broker still works for everyone.
	mustPublish(t, b, "q", chute.Message{Body: []byte("fine")})
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{}); len(ds) != 1 {
		t.Fatal("broker unusable after bad input")
	}
}

func second[A any](_ A, err error) error { return err }

func TestDeadLetterHeadersAndRedrive(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := context.Background()
	mustCreate(t, b, "q", chute.QueueConfig{MaxDeliveries: 1})
	mustPublish(t, b, "q", chute.Message{Body: []byte("poison")})
	d := mustReceive(t, b, "q", chute.ReceiveOptions{})[0]
	if err := b.Nack(ctx, "q", chute.Nack{Receipt: d.Receipt, Error: "cannot parse"}); err != nil {
		t.Fatal(err)
	}
	peek, err := b.Peek(ctx, "q.dlq", 10)
	if err != nil || len(peek) != 1 || peek[0].Receipt != "" {
		t.Fatalf("peek %+v %v", peek, err)
	}
	dl := mustReceive(t, b, "q.dlq", chute.ReceiveOptions{})[0]
	h := dl.Headers
	if h[chute.HeaderDeadSource] != "q" || h[chute.HeaderDeadReason] != "max-deliveries" ||
		h[chute.HeaderDeadDeliveries] != "1" || h[chute.HeaderDeadError] != "cannot parse" ||
		dl.DeadLetter == nil || dl.DeadLetter.SourceSeq != d.Seq {
		t.Fatalf("dead letter %+v", dl)
	}
	if err := b.Nack(ctx, "q.dlq", chute.Nack{Receipt: dl.Receipt, Delay: -1}); err != nil {
		t.Fatal(err)
	}
	n, err := b.Redrive(ctx, "q.dlq", 0)
	if err != nil || n != 1 {
		t.Fatalf("redrive: %d %v", n, err)
	}
	back := mustReceive(t, b, "q", chute.ReceiveOptions{})
	if len(back) != 1 || string(back[0].Body) != "poison" || back[0].DeadLetter != nil {
		t.Fatalf("redriven %+v", back)
	}
}

func TestTopicsThroughTheBroker(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"audit", "billing"} {
		var f map[string]string
		if s == "billing" {
			f = map[string]string{"type": "invoice"}
		}
		if err := b.Subscribe(ctx, "events", s, chute.SubscriptionConfig{Filter: f}); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(t, b, "events", chute.Message{Body: []byte("i"), Headers: map[string]string{"type": "invoice"}},
		chute.Message{Body: []byte("l"), Headers: map[string]string{"type": "login"}})
	if got := bodies(mustReceive(t, b, "audit", chute.ReceiveOptions{Max: 10})); !slices.Equal(got, []string{"i", "l"}) {
		t.Fatalf("audit %v", got)
	}
	if got := bodies(mustReceive(t, b, "billing", chute.ReceiveOptions{Max: 10})); !slices.Equal(got, []string{"i"}) {
		t.Fatalf("billing %v", got)
	}
	ts, err := b.Topics(ctx)
	if err != nil || len(ts) != 1 || ts[0].Published != 2 || len(ts[0].Subscriptions) != 2 {
		t.Fatalf("topics %+v %v", ts, err)
	}
}

// TestCompetingConsumers: many producers and consumers at once; every
// message is acked exactly once.
func TestCompetingConsumers(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	mustCreate(t, b, "q", chute.QueueConfig{})
	const producers, each, consumers = 4, 250, 4
	ctx, cancel := context.WithCancel(chutetest.Ctx(t))
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := b.Receive(ctx, "q", chute.ReceiveOptions{Max: 1 + c})
				if err != nil {
					return
				}
				rs := make([]string, len(ds))
				mu.Lock()
				for i, d := range ds {
					seen[string(d.Body)]++
					rs[i] = d.Receipt
				}
				mu.Unlock()
				if err := b.Ack(ctx, "q", rs...); err != nil && ctx.Err() == nil {
					t.Errorf("ack: %v", err)
				}
			}
		}()
	}
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := range each {
				if _, err := b.Publish(ctx, "q", chute.Message{Body: []byte(fmt.Sprintf("%d-%d", p, i))}); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	pwg.Wait()
	chutetest.Eventually(t, "every message acked", func() bool {
		s, _ := b.QueueStats(context.Background(), "q")
		return s.Totals.Acked == producers*each
	})
	cancel()
	wg.Wait()
	if len(seen) != producers*each {
		t.Fatalf("%d distinct messages received, want %d", len(seen), producers*each)
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("message %s received %d times", m, n)
		}
	}
}
