package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/hist"
)

// Periodic schedules (broker/schedule.go): broker-wide series only, so
// that 100,000 schedules cost no more series than one. Per schedule, the
// admin API (chute schedule ls) has the last and next slots.
var (
	schedCount    = desc("chute_schedules", "Periodic schedules defined.")
	schedFired    = desc("chute_schedule_firings_total", "Schedule firings stored since the broker started.")
	schedSkipped  = desc("chute_schedule_skipped_total", "Schedule slots passed over since the broker started: the target was gone or full.")
	schedRetried  = desc("chute_schedule_retries_total", "Schedule firings retried after a transient failure (journal, full disk).")
	schedLateness = desc("chute_schedule_lateness_seconds", "How late schedule firings were committed: commit time minus the slot's fire time (slot plus jitter).")
)

func describeSchedules(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{schedCount, schedFired, schedSkipped, schedRetried, schedLateness} {
		ch <- d
	}
}

func collectSchedules(s *broker.Stats, gauge, count func(*prometheus.Desc, float64, ...string), histogram func(*prometheus.Desc, hist.Snapshot, ...string)) {
	sc := &s.Schedules
	gauge(schedCount, float64(sc.Schedules))
	count(schedFired, float64(sc.Fired))
	count(schedSkipped, float64(sc.Skipped))
	count(schedRetried, float64(sc.Retried))
	histogram(schedLateness, sc.Lateness)
}
