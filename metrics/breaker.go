package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// The delivery control of queues: pause and circuit breaker (see
// broker/breaker.go). One series per queue, so that a queue's whole
// delivery state fits the default series budget: a pause by hand wins
// over the breaker (while paused the breaker does nothing), so 3 says
// "paused" whatever the breaker's state.
var (
	qBreaker = desc("chute_queue_breaker_state",
		"Delivery control of the queue: 0 delivering (breaker closed, or none), 1 circuit breaker open, 2 half-open (probing), 3 paused by hand.", "queue")
	breakerTransitions = desc("chute_breaker_transitions_total",
		"Circuit-breaker transitions since the broker started, by the state entered (closed counts resumes by hand).", "to")
)

// Values of chute_queue_breaker_state beyond the breaker states.
const breakerValuePaused = 3

func describeBreakers(ch chan<- *prometheus.Desc) {
	ch <- qBreaker
	ch <- breakerTransitions
}

// breakerValue is a queue's chute_queue_breaker_state.
func breakerValue(q *chute.QueueStats) float64 {
	if q.Paused {
		return breakerValuePaused
	}
	return float64(q.Breaker)
}

func collectBreakers(s *broker.Stats, gauge, count func(*prometheus.Desc, float64, ...string)) {
	for i := range s.Queues {
		q := &s.Queues[i].QueueStats
		gauge(qBreaker, breakerValue(q), q.Name)
	}
	for st, n := range s.BreakerTransitions {
		count(breakerTransitions, float64(n), chute.BreakerState(st).String())
	}
}
