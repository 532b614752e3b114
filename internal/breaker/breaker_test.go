package breaker

import (
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// TestTransitions walks one queue's breaker through its states on a
// made-up clock: closed → open when half of at least 4 settlements
// fail, open → half-open after the cool-down, half-open → open on a
// failed probe, and half-open → closed once the probes are acked; while
// half-open, receives are limited to the probes left.
func TestTransitions(t *testing.T) {
	cfg := chute.Breaker{Enabled: true, Threshold: 0.5, Window: 10 * time.Second, MinDeliveries: 4, Cooldown: 5 * time.Second, Probes: 2}
	q := engine.BreakerQueue{Name: "q", Config: cfg}
	var s Set
	now := int64(1e18)
	tick := func(want chute.BreakerState) {
		t.Helper()
		moves, _ := s.Tick(func(fn func(engine.BreakerQueue)) { fn(q) }, now)
		got := q.State
		if len(moves) == 1 {
			got = moves[0].To
			s.Entered(moves[0], now)
			q.State = got
		}
		if got != want || len(moves) > 1 {
			t.Fatalf("at +%v: %v (moves %+v), want %v", time.Duration(now-1e18), got, moves, want)
		}
	}
	tick(chute.BreakerClosed)
	q.Acked, q.Failed = 2, 1 // 3 settled: below MinDeliveries
	now += int64(time.Second)
	tick(chute.BreakerClosed)
	q.Failed = 2 // 2 of 4 failed
	now += int64(time.Second)
	tick(chute.BreakerOpen)
	now += int64(4 * time.Second)
	tick(chute.BreakerOpen) // the cool-down is not over
	now += int64(time.Second)
	tick(chute.BreakerHalfOpen)
	if got := s.ProbeLimit("q", 10); got != 2 {
		t.Fatalf("probe limit %d, want 2", got)
	}
	s.ProbesTaken("q", 2)
	if got := s.ProbeLimit("q", 10); got != 0 {
		t.Fatalf("probe limit after both went out: %d", got)
	}
	q.Failed++ // a probe failed
	now += int64(time.Second)
	tick(chute.BreakerOpen)
	now += int64(5 * time.Second)
	tick(chute.BreakerHalfOpen)
	q.Acked += 2
	now += int64(time.Second)
	tick(chute.BreakerClosed)
	if got := s.ProbeLimit("q", 10); got != 10 {
		t.Fatalf("probe limit once closed: %d", got)
	}
	if tr := s.Transitions; tr[chute.BreakerOpen] != 2 || tr[chute.BreakerHalfOpen] != 2 || tr[chute.BreakerClosed] != 1 {
		t.Fatalf("transitions by state entered: %v", s.Transitions)
	}
}
