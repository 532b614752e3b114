package cluster

import (
	"context"
	"sync"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// Parked receives. A consumer that keeps up finds its queue empty; rather
// than ask again and again through the log, its receive waits at the
// leader, which proposes it as soon as a message is ready or on its way:
// right behind the publish (or nack) that brings it, in the same batch,
// so that the delivery commits with the publish instead of one round
// later. (Measured in docs/replication.md: end-to-end latency at
// 2,000 msgs/s.)

// Parked is a receive command waiting at the leader (Node.Park).
type Parked struct {
	cmd   replica.Command
	reply chan result

	mu    sync.Mutex
	state parkState
}

type parkState uint8

const (
	parkWaiting   parkState = iota
	parkProposed            // its result will come on reply
	parkWithdrawn           // taken back before it was proposed
	parkAbandoned           // its caller left after it was proposed: hand back what it gets
)

// Park hands a receive command (cmd.Op OpReceive) to the node. The node
// proposes it at once if its queue has a message ready, or a publish or
// nack of this leader to the queue is still in flight; otherwise behind
// the next such command. Reply gives the result; a node that does not
// lead, or stops leading, answers with a *NotLeaderError.
func (n *Node) Park(ctx context.Context, cmd replica.Command) (*Parked, error) {
	p := &Parked{cmd: cmd, reply: make(chan result, 1)}
	select {
	case n.parks <- p:
		return p, nil
	case <-n.stop:
		return nil, ErrClosed
	case <-n.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reply gives the parked receive's result, once it has one.
func (p *Parked) Reply() <-chan result { return p.reply }

// Withdraw takes the receive back if it was not proposed yet (true);
// false: it was, and its result will come on Reply.
func (p *Parked) Withdraw() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == parkWaiting {
		p.state = parkWithdrawn
		return true
	}
	return p.state == parkWithdrawn
}

// Abandon withdraws the receive for a caller that is leaving; what a
// receive already proposed delivers is handed back (nacked to be
// delivered again at once), by the node once it applies, or here if it
// has.
func (n *Node) Abandon(p *Parked) {
	p.mu.Lock()
	var got result
	switch p.state {
	case parkWaiting:
		p.state = parkWithdrawn
	case parkProposed:
		select {
		case got = <-p.reply:
		default:
			p.state = parkAbandoned
		}
	}
	p.mu.Unlock()
	if cmd, ok := handBack(p.cmd.Queue, got.res); ok {
		n.Submit(context.Background(), cmd) // best effort: the lease expires otherwise
	}
}

// handBack is the nack that returns res's deliveries to their queue.
func handBack(queue string, res replica.Result) (replica.Command, bool) {
	if len(res.Delivered) == 0 {
		return replica.Command{}, false
	}
	cmd := replica.Command{Op: replica.OpNack, Queue: queue, QueueID: res.Delivered[0].QueueID}
	for _, d := range res.Delivered {
		cmd.Items = append(cmd.Items, engine.Item{Seq: d.Seq, Deliv: d.Deliv, Value: -1})
	}
	return cmd, true
}

// parking is the loop's side: the receives parked per queue, and which
// queues have a publish or nack of this leader in flight.
type parking struct {
	byQueue map[string][]*Parked
	// coming[q] is the ID of the last command proposed that may make a
	// message of q ready; it is in flight while above appliedID, the
	// last of this node's commands applied (they apply in ID order).
	coming    map[string]uint64
	appliedID uint64
}

func newParking() parking {
	return parking{byQueue: map[string][]*Parked{}, coming: map[string]uint64{}}
}

// add parks p, dropping the queue's withdrawn ones.
func (pk *parking) add(p *Parked) {
	q := pk.byQueue[p.cmd.Queue][:0:0]
	for _, o := range pk.byQueue[p.cmd.Queue] {
		o.mu.Lock()
		if o.state == parkWaiting {
			q = append(q, o)
		}
		o.mu.Unlock()
	}
	pk.byQueue[p.cmd.Queue] = append(q, p)
}

// take marks as proposed, and returns, parked receives of queue whose
// Max together cover n messages (FIFO).
func (pk *parking) take(queue string, n int) []*Parked {
	var out []*Parked
	list := pk.byQueue[queue]
	for len(list) > 0 && n > 0 {
		p := list[0]
		list = list[1:]
		p.mu.Lock()
		if p.state == parkWaiting {
			p.state = parkProposed
			out = append(out, p)
			n -= max(p.cmd.Max, 1)
		}
		p.mu.Unlock()
	}
	if len(list) == 0 {
		delete(pk.byQueue, queue)
	} else {
		pk.byQueue[queue] = list
	}
	return out
}

// failAll answers every parked receive with err.
func (pk *parking) failAll(err error) {
	for q, list := range pk.byQueue {
		for _, p := range list {
			p.mu.Lock()
			if p.state == parkWaiting {
				p.state = parkProposed
				p.reply <- result{err: err}
			}
			p.mu.Unlock()
		}
		delete(pk.byQueue, q)
	}
	clear(pk.coming)
}

// deliver gives a parked receive its result; false if its caller left
// (the deliveries are to be handed back).
func (p *Parked) deliver(r result) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == parkAbandoned {
		return false
	}
	p.reply <- r
	return true
}

// readyIn calls fn with each queue or topic a command may make messages
// ready in at once, and how many: a publish's undelayed messages, a
// nack's immediate ones and hand-backs, a transaction's of each.
func readyIn(c *replica.Command, fn func(target string, n int)) {
	undelayed := func(msgs []replica.Msg) int {
		n := 0
		for _, m := range msgs {
			if m.Delay <= 0 {
				n++
			}
		}
		return n
	}
	settled := func(items []engine.Item, unstarted func(i int) bool) int {
		n := 0
		for i, it := range items {
			if it.Value < 0 || unstarted(i) {
				n++
			}
		}
		return n
	}
	switch c.Op {
	case replica.OpPublish:
		fn(c.Queue, undelayed(c.Msgs))
	case replica.OpNack:
		fn(c.Queue, settled(c.Items, func(i int) bool { return c.Unstarted != nil && c.Unstarted[i] }))
	case replica.OpTx:
		for _, p := range c.TxPubs {
			fn(p.Target, undelayed(p.Msgs))
		}
		for _, st := range c.TxSettles {
			if st.Type != engine.RecAck {
				fn(st.Queue, settled(st.Items, func(int) bool { return st.Type == engine.RecReturn }))
			}
		}
	}
}

// waiting is how many receives wait parked on queue.
func (pk *parking) waiting(queue string) int {
	n := 0
	for _, p := range pk.byQueue[queue] {
		p.mu.Lock()
		if p.state == parkWaiting {
			n++
		}
		p.mu.Unlock()
	}
	return n
}
