package alerts

import (
	"strings"
	"testing"
	"time"
)

// healthy is a snapshot that fires nothing: one queue "q" with consumers.
func healthy() Snapshot {
	return Snapshot{
		Queues: []QueueFigures{{Queue: "q", Depth: 10, Ready: 5, Errors: 1,
			CompletionAvg: 50 * time.Millisecond, ActiveConsumers: 2,
			ProcessingP99: 200 * time.Millisecond, ProcessingAvg: 20 * time.Millisecond}},
		Broker: BrokerFigures{ConfirmP99: 5 * time.Millisecond, ConfirmAvg: time.Millisecond},
	}
}

func with(f func(*Snapshot)) Snapshot {
	s := healthy()
	f(&s)
	return s
}

// TestBuiltinRulesFireAndResolve drives each built-in rule through its
// whole life: pending for For, firing once, held by hysteresis, a clear
// spell interrupted, then resolved once after ResolveFor.
func TestBuiltinRulesFireAndResolve(t *testing.T) {
	q := func(f func(*QueueFigures)) Snapshot { return with(func(s *Snapshot) { f(&s.Queues[0]) }) }
	cases := []struct {
		rule, queue         string
		bad, between, clear Snapshot // between: in the hysteresis band (none when h = 0)
		value, threshold    float64
		summary             string
	}{
		{RuleQueueDepth, "q",
			q(func(f *QueueFigures) { f.Depth = 20000 }),
			q(func(f *QueueFigures) { f.Depth = 9500 }),
			q(func(f *QueueFigures) { f.Depth = 9000 }),
			20000, 10000, "queue q holds 20000 messages (threshold 10000)"},
		{RuleQueueErrors, "q",
			q(func(f *QueueFigures) { f.Errors = 150 }),
			q(func(f *QueueFigures) { f.Errors = 95 }),
			q(func(f *QueueFigures) { f.Errors = 50 }),
			150, 100, "queue q: 150.0 nacks and dead letters per minute (threshold 100.0)"},
		{RuleQueueCompletionAvg, "q",
			q(func(f *QueueFigures) { f.CompletionAvg = 1500 * time.Millisecond }),
			q(func(f *QueueFigures) { f.CompletionAvg = 950 * time.Millisecond }),
			q(func(f *QueueFigures) { f.CompletionAvg = 500 * time.Millisecond }),
			1.5, 1, "queue q: average completion latency 1.5s (threshold 1s)"},
		{RuleQueueNoConsumers, "q",
			q(func(f *QueueFigures) { f.ActiveConsumers = 0 }),
			Snapshot{}, // hysteresis 0: one consumer clears it
			q(func(f *QueueFigures) { f.ActiveConsumers = 1 }),
			0, 1, "queue q has messages ready and 0 active consumers"},
		{RuleQueueProcessingP99, "q",
			q(func(f *QueueFigures) { f.ProcessingP99 = 3 * time.Second }),
			q(func(f *QueueFigures) { f.ProcessingP99 = 1900 * time.Millisecond }),
			q(func(f *QueueFigures) { f.ProcessingP99 = time.Second }),
			3, 2, "queue q: processing time p99 3s (threshold 2s)"},
		{RuleConfirmP99, "",
			with(func(s *Snapshot) { s.Broker.ConfirmP99 = 800 * time.Millisecond }),
			with(func(s *Snapshot) { s.Broker.ConfirmP99 = 480 * time.Millisecond }),
			with(func(s *Snapshot) { s.Broker.ConfirmP99 = 100 * time.Millisecond }),
			0.8, 0.5, "producer confirm latency p99 800ms (threshold 500ms)"},
		{RuleBreakerOpen, "q",
			q(func(f *QueueFigures) { f.Breaker = 1 }),
			Snapshot{}, // hysteresis 0: a closed breaker clears it
			q(func(f *QueueFigures) { f.Breaker = 0 }),
			1, 1, "queue q: circuit breaker open, deliveries withheld"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			r := newRig(t, Config{})
			r.evalQuiet(5, healthy(), "healthy")

			start := r.clock.Now()
			r.evalQuiet(int(DefaultFor/time.Second), c.bad, "pending")
			if len(r.e.Firing()) != 0 {
				t.Fatal("firing before For")
			}
			a := one(t, r.eval(c.bad), c.rule, c.queue, StatusFiring)
			if a.Value != c.value || a.Threshold != c.threshold || a.Summary != c.summary {
				t.Errorf("value %v threshold %v summary %q; want %v %v %q",
					a.Value, a.Threshold, a.Summary, c.value, c.threshold, c.summary)
			}
			if !a.Since.Equal(start) || !a.Started.Equal(start.Add(DefaultFor)) || !a.Resolved.IsZero() {
				t.Errorf("since %v started %v resolved %v; want %v %v zero",
					a.Since, a.Started, a.Resolved, start, start.Add(DefaultFor))
			}
			r.evalQuiet(10, c.bad, "firing")
			if f := r.e.Firing(); len(f) != 1 || f[0].Rule != c.rule {
				t.Fatalf("Firing() = %+v", f)
			}
			if c.between.Queues != nil {
				r.evalQuiet(int(2*DefaultResolveFor/time.Second), c.between, "in the hysteresis band")
			}
			// Clear for less than ResolveFor, back over the threshold
			// once, then clear again: the wait starts over.
			r.evalQuiet(int(DefaultResolveFor/time.Second)-1, c.clear, "clearing")
			r.evalQuiet(1, c.bad, "bad again while clearing")
			r.evalQuiet(int(DefaultResolveFor/time.Second), c.clear, "clearing again")
			resolvedAt := r.clock.Now()
			a = one(t, r.eval(c.clear), c.rule, c.queue, StatusResolved)
			if !a.Resolved.Equal(resolvedAt) || a.Value != c.value {
				t.Errorf("resolved %v value %v; want %v %v", a.Resolved, a.Value, resolvedAt, c.value)
			}
			r.evalQuiet(100, c.clear, "resolved")
			if f := r.e.Firing(); len(f) != 0 {
				t.Errorf("Firing() after resolve = %+v", f)
			}
			if rec := r.e.Recent(); len(rec) != 1 || rec[0].Rule != c.rule || rec[0].Status != StatusResolved {
				t.Errorf("Recent() = %+v", rec)
			}
		})
	}
}

func TestPendingEndsQuietly(t *testing.T) {
	r := newRig(t, Config{})
	deep := with(func(s *Snapshot) { s.Queues[0].Depth = 50000 })
	r.evalQuiet(59, deep, "pending")
	r.evalQuiet(1, healthy(), "back to normal")
	r.evalQuiet(60, deep, "pending again, from the start")
	one(t, r.eval(deep), RuleQueueDepth, "q", StatusFiring)
}

func TestNoConsumersNeedsReadyMessages(t *testing.T) {
	r := newRig(t, Config{})
	idle := with(func(s *Snapshot) { s.Queues[0].ActiveConsumers, s.Queues[0].Ready = 0, 0 })
	r.evalQuiet(300, idle, "no consumers but nothing ready")
	stuck := with(func(s *Snapshot) { s.Queues[0].ActiveConsumers = 0 })
	r.evalQuiet(60, stuck, "pending")
	one(t, r.eval(stuck), RuleQueueNoConsumers, "q", StatusFiring)
	// The queue drains (by expiry, say): the When no longer holds.
	r.evalQuiet(30, idle, "clearing")
	one(t, r.eval(idle), RuleQueueNoConsumers, "q", StatusResolved)
}

func TestDeadLetterQueueNeverFiresNoConsumers(t *testing.T) {
	r := newRig(t, Config{})
	s := Snapshot{Queues: []QueueFigures{
		{Queue: "orders.dlq", DeadLetterQueue: true, Depth: 500, Ready: 500},
		{Queue: "orders", Depth: 500, Ready: 500}, // the control: same figures, not a DLQ
	}}
	r.evalQuiet(60, s, "pending")
	one(t, r.eval(s), RuleQueueNoConsumers, "orders", StatusFiring)
	r.evalQuiet(600, s, "ten minutes on")
	for _, a := range r.e.Firing() {
		if a.Queue == "orders.dlq" {
			t.Fatalf("dead-letter queue fired %+v", a)
		}
	}
}

func TestQueueOverrides(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
rules:
  queue_depth: {threshold: 1000}
patterns:
  - match: "orders-*"
    rules:
      queue_depth: {threshold: 100, for: 0s}
  - match: "orders-e?"
    rules:
      queue_depth: {severity: critical}
  - match: "tmp-*"
    rules:
      queue_depth: {enabled: false}
queues:
  orders-eu:
    queue_depth: {threshold: 50}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, cfg)
	s := Snapshot{Queues: []QueueFigures{
		{Queue: "plain", Depth: 500, ActiveConsumers: 1},      // under the global 1000
		{Queue: "plain-big", Depth: 1500, ActiveConsumers: 1}, // over it: fires after 1m
		{Queue: "orders-us", Depth: 150, ActiveConsumers: 1},  // pattern: 100, at once
		{Queue: "orders-eu", Depth: 70, ActiveConsumers: 1},   // exact: 50, at once, critical
		{Queue: "tmp-1", Depth: 1e6, ActiveConsumers: 1},      // disabled by pattern
	}}
	got := r.eval(s)
	if len(got) != 2 {
		t.Fatalf("first evaluation notified %+v", got)
	}
	want := map[string]struct {
		threshold float64
		sev       Severity
	}{"orders-us": {100, SeverityWarning}, "orders-eu": {50, SeverityCritical}}
	for _, a := range got {
		w, ok := want[a.Queue]
		if !ok || a.Rule != RuleQueueDepth || a.Threshold != w.threshold || a.Severity != w.sev {
			t.Errorf("unexpected %+v", a)
		}
	}
	r.evalQuiet(59, s, "plain-big pending")
	one(t, r.eval(s), RuleQueueDepth, "plain-big", StatusFiring)
	r.evalQuiet(120, s, "tmp-1 stays disabled")

	// Run-time overrides come last: they enable tmp-1's rule again, beat
	// orders-eu's exact threshold (50 → 100: its 70 messages are now
	// clear), and disabling orders-us's rule while it fires resolves it
	// at once.
	set := func(q string, o Override) {
		t.Helper()
		if err := r.e.SetQueueOverrides(q, map[string]Override{RuleQueueDepth: o}); err != nil {
			t.Fatal(err)
		}
	}
	set("tmp-1", Override{Enabled: new(true), For: new(Duration(0))})
	one(t, r.eval(s), RuleQueueDepth, "tmp-1", StatusFiring)
	set("orders-eu", Override{Threshold: new(Quantity(100))})
	r.evalQuiet(int(DefaultResolveFor/time.Second), s, "orders-eu clearing")
	one(t, r.eval(s), RuleQueueDepth, "orders-eu", StatusResolved)
	set("orders-us", Override{Enabled: new(false)})
	one(t, r.eval(s), RuleQueueDepth, "orders-us", StatusResolved)
	if err := r.e.SetQueueOverrides("orders-us", nil); err != nil {
		t.Fatal(err)
	}
	one(t, r.eval(s), RuleQueueDepth, "orders-us", StatusFiring) // pattern: for 0s

	for _, bad := range []map[string]Override{
		{"no_such_rule": {}},
		{RuleConfirmP99: {Threshold: new(Quantity(1))}},
		{RuleQueueDepth: {Hysteresis: new(1.5)}},
	} {
		if err := r.e.SetQueueOverrides("x", bad); err == nil {
			t.Errorf("SetQueueOverrides(%v) accepted", bad)
		}
	}
}

func TestQueueGoneResolves(t *testing.T) {
	r := newRig(t, Config{Rules: map[string]Override{RuleQueueDepth: {For: new(Duration(0))}}})
	s := Snapshot{Queues: []QueueFigures{
		{Queue: "a", Depth: 20000, ActiveConsumers: 1},
		{Queue: "b", Ready: 5, Depth: 5}, // no consumers: pending
	}}
	one(t, r.eval(s), RuleQueueDepth, "a", StatusFiring)
	r.evalQuiet(10, s, "b pending")
	// Both queues deleted: a's alert resolves, b's pending one is dropped.
	one(t, r.eval(Snapshot{}), RuleQueueDepth, "a", StatusResolved)
	r.evalQuiet(120, Snapshot{}, "no queues")
	// b comes back: its pending time starts over.
	r.evalQuiet(60, Snapshot{Queues: s.Queues[1:]}, "b pending anew")
	one(t, r.eval(Snapshot{Queues: s.Queues[1:]}), RuleQueueNoConsumers, "b", StatusFiring)
}

func TestRecentIsBounded(t *testing.T) {
	r := newRig(t, Config{Recent: 2, Rules: map[string]Override{
		RuleQueueDepth: {For: new(Duration(0)), ResolveFor: new(Duration(0))}}})
	for i, name := range []string{"a", "b", "c"} {
		s := Snapshot{Queues: []QueueFigures{{Queue: name, Depth: int64(20000 + i), ActiveConsumers: 1}}}
		one(t, r.eval(s), RuleQueueDepth, name, StatusFiring)
		s.Queues[0].Depth = 0
		one(t, r.eval(s), RuleQueueDepth, name, StatusResolved)
	}
	rec := r.e.Recent()
	if len(rec) != 2 || rec[0].Queue != "c" || rec[1].Queue != "b" {
		t.Fatalf("Recent() = %+v", rec)
	}
}

func TestFiringOrder(t *testing.T) {
	r := newRig(t, Config{Rules: map[string]Override{RuleQueueDepth: {For: new(Duration(0))}}})
	s := Snapshot{Queues: []QueueFigures{{Queue: "b", Depth: 20000, ActiveConsumers: 1}}}
	r.eval(s)
	s.Queues = append(s.Queues, QueueFigures{Queue: "a", Depth: 20000, ActiveConsumers: 1})
	r.eval(s)
	f := r.e.Firing()
	if len(f) != 2 || f[0].Queue != "b" || f[1].Queue != "a" {
		t.Fatalf("Firing() = %+v, want b (older) then a", f)
	}
}

func TestSnapshotTime(t *testing.T) {
	r := newRig(t, Config{Rules: map[string]Override{RuleQueueDepth: {For: new(Duration(time.Minute))}}})
	at := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	s := Snapshot{Time: at, Queues: []QueueFigures{{Queue: "a", Depth: 20000, ActiveConsumers: 1}}}
	r.e.Evaluate(s)
	s.Time = at.Add(time.Minute)
	r.e.Evaluate(s)
	a := one(t, r.rec.take(), RuleQueueDepth, "a", StatusFiring)
	if !a.Started.Equal(at.Add(time.Minute)) {
		t.Fatalf("started %v: the snapshot's time, not the clock's, should count", a.Started)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{Rules: map[string]Override{"nope": {}}}, newFakeClock())
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("New with an unknown rule: %v", err)
	}
}
