package cluster

import (
	"github.com/chutemq/chute/internal/breaker"
	"github.com/chutemq/chute/internal/replica"
)

// Circuit breakers in a cluster: a breaker's state is replicated (the
// engine's, set by OpSetBreaker, and closed by OpResume), and the
// statistics behind its transitions are the leader's (internal/breaker,
// as in the broker): its loop evaluates the breaker queues at each
// breaker.Tick, and proposes each transition due. While a queue's breaker
// is half-open the leader limits the receives it proposes to the probes
// left, counting those in flight. A new leader starts the statistics
// afresh, as a restarted broker does: an open breaker stays open, and its
// cool-down starts again.
type breakers struct {
	set     breaker.Set
	at      int64           // when to evaluate next (leader's clock, unix ns); -1: at a change
	pending map[string]bool // queues with a transition in flight
	// probing counts, per half-open queue, the deliveries asked by
	// receives in flight (their probes are spoken for).
	probing map[string]int
}

func newBreakers() *breakers {
	return &breakers{pending: map[string]bool{}, probing: map[string]int{}}
}

// due evaluates the breakers if it is time and returns the transitions to
// propose.
func (b *breakers) due(sh *replica.Shard, now int64) []breaker.Move {
	if b.at < 0 || now < b.at {
		return nil
	}
	moves, next := b.set.Tick(sh.BreakerQueues, now)
	b.at = -1
	if next != 0 {
		b.at = next
	}
	out := moves[:0]
	for _, m := range moves {
		if !b.pending[m.Name] {
			b.pending[m.Name] = true
			out = append(out, m)
		}
	}
	return out
}

// moved settles a proposed transition: entered once applied, else looked
// at again at the next tick.
func (b *breakers) moved(m breaker.Move, res replica.Result, err error, now int64) {
	delete(b.pending, m.Name)
	if err != nil || res.Err != nil {
		return
	}
	if at := b.set.Entered(m, now); at != 0 && (b.at < 0 || at < b.at) {
		b.at = at
	}
}

// applied follows the commands applied: a configuration that may turn a
// breaker on, off or change it is evaluated at once; a resume closed the
// breaker by hand; a receive this node proposed took probes.
func (b *breakers) applied(res replica.Result, own bool) {
	c := res.Cmd
	switch c.Op {
	case replica.OpCreateQueue, replica.OpUpdateQueue, replica.OpSubscribe:
		if res.Err == nil && (c.Op == replica.OpUpdateQueue || c.Config != nil && c.Config.Breaker.Enabled) {
			b.at = 0
		}
	case replica.OpResume:
		if res.Err == nil {
			b.set.Forget(c.Queue)
			b.at = 0
		}
	case replica.OpReceive:
		if own && b.probing[c.Queue] > 0 {
			if b.probing[c.Queue] -= c.Max; b.probing[c.Queue] <= 0 {
				delete(b.probing, c.Queue)
			}
			b.set.ProbesTaken(c.Queue, len(res.Delivered))
		}
	}
}

// limit lowers a receive's Max to the probes left of its queue's
// half-open breaker, less those spoken for by receives in flight.
func (b *breakers) limit(c *replica.Command) {
	lim := b.set.ProbeLimit(c.Queue, c.Max)
	if lim == c.Max && b.probing[c.Queue] == 0 {
		return // not half-open
	}
	c.Max = max(lim-b.probing[c.Queue], 0)
	if c.Max > 0 {
		b.probing[c.Queue] += c.Max
	}
}
