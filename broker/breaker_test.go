package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// breakerQueue: opens when half of at least 4 settlements over 10 s
// failed; 5 s cool-down; 2 probes.
var breakerQueue = chute.QueueConfig{MaxDeliveries: 3, Breaker: chute.Breaker{
	Enabled: true, Threshold: 0.5, Window: 10 * time.Second, MinDeliveries: 4, Cooldown: 5 * time.Second, Probes: 2}}

// tick advances the fake clock and waits until the breaker loop has
// evaluated the queues at the new time.
func tick(t *testing.T, b *broker.Broker, clock *chutetest.FakeClock, d time.Duration) {
	t.Helper()
	clock.Advance(d)
	want := clock.Now().UnixNano()
	chutetest.Eventually(t, "the breaker loop to evaluate", func() bool { return broker.BreakerTickedAt(b) >= want })
}

func breakerState(t *testing.T, b chute.API, q string) chute.BreakerState {
	t.Helper()
	s, err := b.QueueStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return s.Breaker
}

func wantBreaker(t *testing.T, b chute.API, q string, want chute.BreakerState) {
	t.Helper()
	if got := breakerState(t, b, q); got != want {
		t.Fatalf("breaker of %s is %v, want %v", q, got, want)
	}
}

// deliveries maps the ready messages' sequences to their delivery counts.
func deliveries(t *testing.T, b chute.API, q string) map[uint64]int {
	t.Helper()
	ds, err := b.Peek(context.Background(), q, 100)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[uint64]int, len(ds))
	for _, d := range ds {
		m[d.Seq] = d.Deliveries
	}
	return m
}

// failN receives n messages and nacks them for redelivery at once.
func failN(t *testing.T, b chute.API, q string, n int) {
	t.Helper()
	ds := mustReceive(t, b, q, chute.ReceiveOptions{Max: n})
	if len(ds) != n {
		t.Fatalf("received %d, want %d", len(ds), n)
	}
	for _, d := range ds {
		if err := b.Nack(context.Background(), q, chute.Nack{Receipt: d.Receipt, Delay: -1, Error: "downstream down"}); err != nil {
			t.Fatal(err)
		}
	}
}

// openBreaker fails 4 deliveries of q and ticks until the breaker opens.
// openBreakerQueue opens a broker on a fake clock with queue "q" (a
// breaker) holding 10 messages, and opens its breaker.
func openBreakerQueue(t *testing.T) (*broker.Broker, *chutetest.FakeClock) {
	t.Helper()
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	mustCreate(t, b, "q", breakerQueue)
	publishN(t, b, "q", 10)
	openBreaker(t, b, clock, "q")
	return b, clock
}

func openBreaker(t *testing.T, b *broker.Broker, clock *chutetest.FakeClock, q string) {
	t.Helper()
	failN(t, b, q, 4)
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, q, chute.BreakerOpen)
}

func publishN(t *testing.T, b chute.API, q string, n int) {
	t.Helper()
	msgs := make([]chute.Message, n)
	for i := range msgs {
		msgs[i] = chute.Message{Body: []byte{byte('a' + i)}}
	}
	mustPublish(t, b, q, msgs...)
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	mustCreate(t, b, "q", breakerQueue)
	publishN(t, b, "q", 10)
	wantBreaker(t, b, "q", chute.BreakerClosed)
	openBreaker(t, b, clock, "q")

	// Open: nothing is delivered, publishes are accepted, and the
	// withheld messages keep their delivery counts.
	before := deliveries(t, b, "q")
	s0, _ := b.QueueStats(context.Background(), "q")
	mustPublish(t, b, "q", chute.Message{Body: []byte("while open")})
	for range 2 {
		if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10}); len(ds) != 0 {
			t.Fatalf("open breaker delivered %d", len(ds))
		}
		tick(t, b, clock, time.Second)
		wantBreaker(t, b, "q", chute.BreakerOpen)
	}
	after := deliveries(t, b, "q")
	for seq, n := range before {
		if after[seq] != n {
			t.Fatalf("message %d: deliveries %d while open, %d before", seq, after[seq], n)
		}
	}
	s1, _ := b.QueueStats(context.Background(), "q")
	if s1.Totals.Delivered != s0.Totals.Delivered || s1.Depth() != 11 || s1.Totals.DeadLettered != 0 {
		t.Fatalf("totals while open: before %+v, after %+v (depth %d)", s0.Totals, s1.Totals, s1.Depth())
	}

	// A receiver waiting on the open queue wakes when it half-opens, and
	// gets no more than the probes.
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, err := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{Max: 10})
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	tick(t, b, clock, 4*time.Second) // the cool-down has passed
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
	probes := <-got
	if len(probes) != 2 {
		t.Fatalf("half-open delivered %d, want the 2 probes", len(probes))
	}
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10}); len(ds) != 0 {
		t.Fatalf("half-open delivered %d beyond its probes", len(ds))
	}
	for _, d := range probes {
		if err := b.Ack(context.Background(), "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerClosed)
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 20}); len(ds) != 9 {
		t.Fatalf("closed breaker delivered %d, want the 9 left", len(ds))
	}
	tr := b.Stats().BreakerTransitions
	if tr != [3]int64{chute.BreakerClosed: 1, chute.BreakerOpen: 1, chute.BreakerHalfOpen: 1} {
		t.Fatalf("transitions %v", tr)
	}
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	b, clock := openBreakerQueue(t)
	tick(t, b, clock, 6*time.Second)
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
	failN(t, b, "q", 1)
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerOpen)
	// A new cool-down: still open after 2 s, half-open after it.
	tick(t, b, clock, 2*time.Second)
	wantBreaker(t, b, "q", chute.BreakerOpen)
	tick(t, b, clock, 4*time.Second)
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
}

func TestBreakerNeedsMinDeliveriesAndThreshold(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	mustCreate(t, b, "q", breakerQueue)
	mustCreate(t, b, "plain", chute.QueueConfig{})
	publishN(t, b, "q", 10)
	publishN(t, b, "plain", 10)
	failN(t, b, "q", 3) // fewer than MinDeliveries
	failN(t, b, "plain", 10)
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerClosed)
	wantBreaker(t, b, "plain", chute.BreakerClosed)
	// Successes keep the failed share under the threshold.
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 4})
	for _, d := range ds {
		if err := b.Ack(context.Background(), "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerClosed)
	// The window slides: the old settlements no longer count, and 4 new
	// failures open it.
	tick(t, b, clock, 11*time.Second)
	failN(t, b, "q", 4)
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerOpen)
}

func TestPauseResumeByHand(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustPublish(t, b, "q", chute.Message{Body: []byte("held")})
	held := mustReceive(t, b, "q", chute.ReceiveOptions{})
	mustPublish(t, b, "q", chute.Message{Body: []byte("waiting")})
	if err := b.PauseQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if err := b.PauseQueue(ctx, "q"); err != nil {
		t.Fatalf("pausing twice: %v", err)
	}
	if s, _ := b.QueueStats(ctx, "q"); !s.Paused || s.Breaker != chute.BreakerClosed {
		t.Fatalf("stats %+v", s)
	}
	mustPublish(t, b, "q", chute.Message{Body: []byte("published while paused")})
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10}); len(ds) != 0 {
		t.Fatalf("paused queue delivered %v", bodies(ds))
	}
	// A lease held before the pause goes on and settles.
	if err := b.Ack(ctx, "q", held[0].Receipt); err != nil {
		t.Fatal(err)
	}
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, err := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{Max: 10})
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	if err := b.ResumeQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if ds := <-got; len(ds) != 2 || ds[0].Deliveries != 1 {
		t.Fatalf("after resume got %v", bodies(ds))
	}
	if s, _ := b.QueueStats(ctx, "q"); s.Paused {
		t.Fatal("still paused")
	}
	if err := b.PauseQueue(ctx, "nope"); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("pause of an unknown queue: %v", err)
	}
}

func TestPauseWinsOverBreakerAndResumeCloses(t *testing.T) {
	b, clock := openBreakerQueue(t)
	ctx := context.Background()
	if err := b.PauseQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	// Paused: the cool-down does not move the breaker.
	tick(t, b, clock, 10*time.Second)
	wantBreaker(t, b, "q", chute.BreakerOpen)
	if err := b.ResumeQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	s, _ := b.QueueStats(ctx, "q")
	if s.Paused || s.Breaker != chute.BreakerClosed {
		t.Fatalf("after resume: paused %v, breaker %v", s.Paused, s.Breaker)
	}
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 20}); len(ds) != 10 {
		t.Fatalf("delivered %d after resume, want 10", len(ds))
	}
	// The window began again at the resume: old failures do not reopen it.
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerClosed)
}

func TestBreakerAndPauseSurviveRestart(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustCreate(t, b, "q", breakerQueue)
	mustCreate(t, b, "p", chute.QueueConfig{})
	publishN(t, b, "q", 10)
	publishN(t, b, "p", 1)
	openBreaker(t, b, clock, "q")
	if err := b.PauseQueue(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	before := deliveries(t, b, "q")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour) // down for longer than the cool-down
	b = chutetest.MustOpen(t, "data", opts)
	wantBreaker(t, b, "q", chute.BreakerOpen)
	if s, _ := b.QueueStats(ctx, "p"); !s.Paused {
		t.Fatal("pause lost in the restart")
	}
	for _, q := range []string{"q", "p"} {
		if ds := mustReceive(t, b, q, chute.ReceiveOptions{Max: 10}); len(ds) != 0 {
			t.Fatalf("%s delivered %d after the restart", q, len(ds))
		}
	}
	// The cool-down starts again from the restart.
	tick(t, b, clock, 2*time.Second)
	wantBreaker(t, b, "q", chute.BreakerOpen)
	tick(t, b, clock, 3*time.Second)
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
	if ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10}); len(ds) != 2 {
		t.Fatalf("half-open after restart delivered %d, want 2", len(ds))
	}
	after := deliveries(t, b, "q")
	withheld := 0
	for seq, n := range after {
		if n != before[seq] {
			t.Fatalf("message %d: %d deliveries after the restart, %d before", seq, n, before[seq])
		}
		withheld++
	}
	if withheld != 8 {
		t.Fatalf("%d messages ready, want 8", withheld)
	}
}

func TestBreakerTurnedOff(t *testing.T) {
	b, _ := openBreakerQueue(t)
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, _ := b.Receive(chutetest.Ctx(t), "q", chute.ReceiveOptions{Max: 20})
		got <- ds
	}()
	if err := b.UpdateQueue(context.Background(), "q", chute.QueueConfig{MaxDeliveries: 3}); err != nil {
		t.Fatal(err)
	}
	if ds := <-got; len(ds) != 10 {
		t.Fatalf("got %d after the breaker was turned off", len(ds))
	}
	wantBreaker(t, b, "q", chute.BreakerClosed)
}

func TestBreakerReturnedProbeGoesAgain(t *testing.T) {
	b, clock := openBreakerQueue(t)
	tick(t, b, clock, 6*time.Second)
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
	probes := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
	if len(probes) != 2 {
		t.Fatalf("%d probes", len(probes))
	}
	// A probe handed back unstarted is neither success nor failure: it
	// may be delivered again.
	if err := b.Nack(context.Background(), "q", chute.Nack{Receipt: probes[1].Receipt, Unstarted: true}); err != nil {
		t.Fatal(err)
	}
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerHalfOpen)
	again := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
	if len(again) != 1 {
		t.Fatalf("%d probes after one came back, want 1", len(again))
	}
	for _, d := range []chute.Delivery{probes[0], again[0]} {
		if err := b.Ack(context.Background(), "q", d.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	tick(t, b, clock, time.Second)
	wantBreaker(t, b, "q", chute.BreakerClosed)
}
