// Package recv is the interface between the server's Consume streams and
// an API whose receive is a round through a replicated log (a cluster's
// leader, internal/cluster): there a stream keeps a standing receive
// instead of asking for one batch at a time.
package recv

import (
	"context"
	"time"

	"github.com/chutemq/chute"
)

// StandingReceiver is an API that keeps standing receives.
type StandingReceiver interface {
	StandingReceive(queue string, lease time.Duration) Standing
}

// Standing is one Consume stream's standing receive. Next gives what its
// receives took — at most max more than the stream was given so far (its
// credit) — waiting until there is something or ctx ends; Close ends it,
// handing back what it still holds. For one goroutine.
type Standing interface {
	Next(ctx context.Context, max int) ([]chute.Delivery, error)
	Close()
}
