package chute

import "fmt"

// BreakerState is the state of a queue's server-side circuit breaker (see
// Breaker).
type BreakerState uint8

const (
	// BreakerClosed: messages are delivered (the state of every queue
	// without a breaker).
	BreakerClosed BreakerState = 0
	// BreakerOpen: the queue's messages are withheld (publishes are still
	// accepted) until the cool-down ends.
	BreakerOpen BreakerState = 1
	// BreakerHalfOpen: after the cool-down, up to Breaker.Probes probe
	// deliveries are let through; if they succeed the breaker closes, if
	// one fails it opens again.
	BreakerHalfOpen BreakerState = 2
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("breaker(%d)", uint8(s))
}

// ParseBreakerState parses the names String returns.
func ParseBreakerState(s string) (BreakerState, error) {
	for st := BreakerClosed; st <= BreakerHalfOpen; st++ {
		if s == st.String() {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown breaker state %q (closed, open, half-open)", s)
}
