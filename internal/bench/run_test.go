package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPacerSchedule: message i is due at start + i/rate, across callers,
// whatever the time a caller asks at, as long as it keeps up.
func TestPacerSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(2000, start, PaceTick)
	now := start
	for i := range 10_000 {
		due := p.Next(now)
		if want := start.Add(time.Duration(i) * 500 * time.Microsecond); !due.Equal(want) {
			t.Fatalf("slot %d due at %v, want %v", i, due.Sub(start), want.Sub(start))
		}
		// The caller sleeps until due, and sometimes wakes up to a tick
		// late: no slot is skipped.
		now = due.Add(time.Duration(i%3) * PaceTick / 2)
	}
	if s := p.Skipped(); s != 0 {
		t.Fatalf("skipped %d slots while keeping up", s)
	}
}

// TestPacerNoBurst: a caller that stalls catches up by at most one tick of
// slots; the rest are skipped and counted.
func TestPacerNoBurst(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(1000, start, 10*time.Millisecond)
	if due := p.Next(start); !due.Equal(start) {
		t.Fatalf("first slot due at %v", due.Sub(start))
	}
	// A stall of 100 ms: slots 1..89 are more than a tick late.
	now := start.Add(100 * time.Millisecond)
	burst := 0
	for {
		due := p.Next(now)
		if due.After(now) {
			break
		}
		burst++
	}
	if burst > 11 {
		t.Fatalf("caught up with a burst of %d messages, want at most a tick's (10, +1 for the edge)", burst)
	}
	if s := p.Skipped(); s != 89 {
		t.Fatalf("skipped %d slots, want 89", s)
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParsePriorityMix("0:50, 9:50")
	if err != nil || len(m.Values) != 2 || m.total != 100 {
		t.Fatalf("ParsePriorityMix: %+v, %v", m, err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	got := map[int]int{}
	for range 10_000 {
		got[m.pick(rng)]++
	}
	if got[0] < 4500 || got[9] < 4500 || len(got) != 2 {
		t.Fatalf("picks %v, want about half each of 0 and 9", got)
	}
	d, err := ParseDelayMix("0:90,1s:10")
	if err != nil || maxDelay(d) != time.Second {
		t.Fatalf("ParseDelayMix: %+v, %v", d, err)
	}
	if m, err := ParsePriorityMix(""); err != nil || m.pick(rng) != 0 {
		t.Fatalf("empty mix: %+v, %v", m, err)
	}
	for _, bad := range []string{"10:1", "-1:1", "a:1", "1", "1:0", "1:x", "1:1,1:2", "1:1,"} {
		if _, err := ParsePriorityMix(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("ParsePriorityMix(%q): %v, want ErrBadConfig", bad, err)
		}
	}
	for _, bad := range []string{"1x:1", "-1s:1", "48h:1", "1s"} {
		if _, err := ParseDelayMix(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("ParseDelayMix(%q): %v, want ErrBadConfig", bad, err)
		}
	}
}

func TestHistSummary(t *testing.T) {
	h := NewHist()
	if s := h.Summary(); s.N != 0 {
		t.Fatalf("empty: %+v", s)
	}
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.RecordAll([]time.Duration{-time.Second, 2 * time.Hour})
	s := h.Summary()
	near := func(got, want float64) bool { return got >= want*0.999 && got <= want*1.002 }
	if s.N != 1002 || !near(s.P50, 500) || !near(s.P90, 900) || !near(s.P99, 990) || !near(s.Max, 3_600_000) || s.Clamped != 1 {
		t.Fatalf("summary %+v", s)
	}
}

// TestInversionsIn checks the rule on hand-made deliveries: times are ns.
func TestInversionsIn(t *testing.T) {
	ready := []int64{10, 10, 0, 10}
	es := []recvEvent{
		{index: 0, prio: 0, t0: 20, t1: 30}, // B: priority 0 while…
		{index: 1, prio: 9, t0: 40, t1: 50}, // …A, ready at 10, was received by a call started after 30
		{index: 2, prio: 9, t0: 45, t1: 50}, // delayed (ready 0): never an A
		{index: 3, prio: 5, t0: 25, t1: 35}, // overlaps B's call: proves nothing about B; itself jumped by index 1
	}
	if n := inversionsIn(es, ready); n != 2 {
		t.Fatalf("%d inversions, want 2 (indexes 0 and 3)", n)
	}
	es[1].t0 = 29 // A's call overlapped both others': proves nothing
	if n := inversionsIn(es, ready); n != 0 {
		t.Fatalf("%d inversions, want 0", n)
	}
}

func TestRunValidate(t *testing.T) {
	base := RunConfig{Count: 10}
	for _, c := range []struct {
		name string
		mod  func(*RunConfig)
	}{
		{"no bound", func(c *RunConfig) { c.Count = 0 }},
		{"small body for delays", func(c *RunConfig) { c.Size = 8; c.Delays, _ = ParseDelayMix("1s:1") }},
		{"small body for inversions", func(c *RunConfig) { c.Size = 16; c.Priorities, _ = ParsePriorityMix("1:1,2:1") }},
		{"ack none", func(c *RunConfig) { c.Ack = "none" }},
		{"topic with queues", func(c *RunConfig) { c.Topic, c.Queues = true, 2 }},
		{"too few consumers", func(c *RunConfig) { c.Queues, c.Consumers = 3, 2 }},
		{"bad name", func(c *RunConfig) { c.Name = "-x" }},
		{"negative linger", func(c *RunConfig) { c.Linger = -time.Millisecond }},
	} {
		cfg := base
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: valid", c.name)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestRunEmbedded: a short run adds up: every message published is
// confirmed and consumed once, with every latency recorded.
func TestRunEmbedded(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	ctx := chutetest.Ctx(t)
	prio, _ := ParsePriorityMix("0:50,9:50")
	res, err := Run(ctx, b, RunConfig{Producers: 2, Consumers: 2, Queues: 2, Count: 2000, Prefetch: 50, Priorities: prio})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 2000 || res.Confirmed != 2000 || res.Expected != 2000 || res.Consumed != 2000 || res.Acked != 2000 {
		t.Fatalf("counts do not add up: %+v", res)
	}
	if res.Latency.Confirm.N != 2000 || res.Latency.EndToEnd.N != 2000 || res.Latency.Lateness.N != 0 || res.Inversions.Checked != 2000 {
		t.Fatalf("latencies: %+v, inversions %+v", res.Latency, res.Inversions)
	}
	qs, err := b.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if strings.HasPrefix(q.Name, "bench-run") {
			t.Fatalf("queue %s left behind", q.Name)
		}
	}
}

// TestRunLinger: Linger reaches the producer. Paced 50 ms apart, each
// message waits out a 30 ms linger alone before it is sent (a timer does
// not fire early), so the median confirm takes at least that; without
// the linger it is a sync.
func TestRunLinger(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	res, err := Run(chutetest.Ctx(t), b, RunConfig{Duration: 500 * time.Millisecond, Rate: 20, Consumers: 0, Linger: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Confirmed < 5 || res.Latency.Confirm.P50 < 25 {
		t.Fatalf("confirmed %d, confirm p50 %v ms: want at least 5, and at least the linger", res.Confirmed, res.Latency.Confirm.P50)
	}
}

// TestRunTopicDelays: a topic with 3 subscriptions delivers every message
// 3 times; delayed messages are measured as lateness, never early.
func TestRunTopicDelays(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	delays, _ := ParseDelayMix("0:1,20ms:1")
	res, err := Run(chutetest.Ctx(t), b, RunConfig{Consumers: 3, Topic: true, Subscriptions: 3, Count: 300, Delays: delays, Ack: AckEach})
	if err != nil {
		t.Fatal(err)
	}
	if res.Confirmed != 300 || res.Expected != 900 || res.Consumed != 900 || res.Acked != 900 {
		t.Fatalf("counts: %+v", res)
	}
	if n := res.Latency.EndToEnd.N + res.Latency.Lateness.N; n != 900 || res.Latency.Lateness.N == 0 || res.Early != 0 {
		t.Fatalf("latencies %+v, early %d", res.Latency, res.Early)
	}
}

// TestRunStops: a run stopped by its context, or by a failure, ends with
// every goroutine (TestMain checks for leaks) and says why.
func TestRunStops(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(chutetest.Ctx(t))
	defer cancel()
	api := &cancelAfter{API: b, n: 100, cancel: cancel}
	res, err := Run(ctx, api, RunConfig{Consumers: 1, Duration: time.Hour, Batch: 10})
	if !errors.Is(err, context.Canceled) || res == nil || res.Confirmed == 0 {
		t.Fatalf("cancelled run: %v, %+v", err, res)
	}
	// A body over the broker's limit (1 MiB) fails the first publish.
	ctx = chutetest.Ctx(t)
	res, err = Run(ctx, b, RunConfig{Name: "big", Consumers: 1, Duration: time.Hour, Size: 2 << 20, Window: 2})
	if err == nil || res == nil || res.Errors.Publish == 0 || res.Errors.First == "" {
		t.Fatalf("oversized run: %v, %+v", err, res)
	}
	if err := b.CreateQueue(ctx, "taken", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, b, RunConfig{Name: "taken", Count: 1}); !errors.Is(err, chute.ErrExists) {
		t.Fatalf("existing queue: %v", err)
	}
}

// cancelAfter cancels a context once n publish calls have gone through.
type cancelAfter struct {
	chute.API
	n      int64
	calls  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	res, err := c.API.Publish(ctx, target, msgs...)
	if c.calls.Add(1) == c.n {
		c.cancel()
	}
	return res, err
}

// TestRunPacedFakeClock: a run paced at 100/s for 1 s of a fake clock
// publishes 100 messages (101 when the last slot, due with the end,
// wins the race against it), skipping none. The clock moves a millisecond
// at a time, only while the producer waits for its next slot.
func TestRunPacedFakeClock(t *testing.T) {
	b := chutetest.MustOpen(t, t.TempDir(), nil)
	clock := fakeclock.New()
	done := make(chan struct{})
	var res *RunResult
	var err error
	go func() {
		defer close(done)
		res, err = Run(chutetest.Ctx(t), b, RunConfig{Consumers: 1, Rate: 100, Duration: time.Second, Clock: clock})
	}()
	steps := 0
	chutetest.Eventually(t, "the paced run to end", func() bool {
		select {
		case <-done:
			return true
		default:
		}
		// Two timers: the run's duration and the producer's next slot.
		if steps < 1000 && clock.Pending() == 2 {
			clock.Advance(time.Millisecond)
			steps++
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Published < 100 || res.Published > 101 || res.RateSkipped != 0 || res.Consumed != res.Published {
		t.Fatalf("published %d, skipped %d, consumed %d after %d steps", res.Published, res.RateSkipped, res.Consumed, steps)
	}
}

// TestCoalesceAcks: the acker takes every batch waiting, in order, and
// stops at an empty or closed channel.
func TestCoalesceAcks(t *testing.T) {
	acks := make(chan []string, 8)
	acks <- []string{"b", "c"}
	acks <- []string{"d"}
	got := CoalesceAcks(acks, []string{"a"})
	if strings.Join(got, ",") != "a,b,c,d" {
		t.Fatalf("coalesced %v", got)
	}
	if got := CoalesceAcks(acks, []string{"e"}); len(got) != 1 {
		t.Fatalf("from an empty channel: %v", got)
	}
	acks <- []string{"f"}
	close(acks)
	if got := CoalesceAcks(acks, nil); strings.Join(got, ",") != "f" {
		t.Fatalf("from a closed channel: %v", got)
	}
}
