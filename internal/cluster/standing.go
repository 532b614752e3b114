package cluster

import (
	"context"
	"time"

	"github.com/chutemq/chute/internal/replica"
)

// Standing receives. A parked receive (park.go) is out for a whole round
// once it is proposed, and what is published during that round commits
// with no receive waiting: under a steady load each message waited a
// round for the next receive (docs/replication.md, "Why end-to-end p50
// trails confirm p50"). A Consume stream instead keeps a standing receive
// at the leader: while the stream has credit, the leader proposes a
// receive for it right behind every publish (or nack) that makes messages
// of its queue ready, for as many as it brings, and queues the results
// to the stream in log order. So each message is delivered in its
// publish's commit.

// Standing is a Consume stream's standing receive (Node.Stand). Next and
// Close are for one goroutine, the stream's.
type Standing struct {
	n   *Node
	cmd replica.Command // the receive (Op, Queue, Lease); Max set per proposal

	// The loop's:
	credit   int              // what the stream can take, as of its last Next, less what it was given since
	reserved int              // Max of its receives proposed and not applied
	mailbox  []replica.Result // applied, not yet given to the stream
	boxed    int              // deliveries in mailbox
	waiting  chan standReply  // a Next waiting for results
	draining bool             // a receive for messages already ready is out
	closed   bool
	err      error // the node stopped leading: every Next fails with it

	last chan standReply // the stream's: the reply channel of its latest Next
}

type standReply struct {
	res []replica.Result
	err error
}

// standReq is a Standing's request to the loop.
type standReq struct {
	s     *Standing
	op    standOp
	max   int             // standNext: the stream's credit now
	reply chan standReply // standNext
	done  chan struct{}   // standClose
}

type standOp uint8

const (
	standNext  standOp = iota // results, or wait for them
	standPoll                 // a Next waited receivePoll: look again (timers)
	standClose                // the stream ends: hand back what it holds
)

// Stand registers a standing receive of queue for a Consume stream.
func (n *Node) Stand(queue string, lease time.Duration) *Standing {
	return &Standing{n: n, cmd: replica.Command{Op: replica.OpReceive, Queue: queue, Lease: lease}}
}

// request hands r to the loop.
func (s *Standing) request(ctx context.Context, r standReq) error {
	select {
	case s.n.stands <- r:
		return nil
	case <-s.n.stop:
		return ErrClosed
	case <-s.n.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the standing receive: what it holds and what its receives
// still out bring is handed back (nacked to be delivered again at once),
// as for an abandoned parked receive.
func (s *Standing) Close() {
	done := make(chan struct{})
	if s.request(context.Background(), standReq{s: s, op: standClose, done: done}) == nil {
		select {
		case <-done:
		case <-s.n.done:
		}
	}
	if s.last == nil {
		return
	}
	select { // a reply the stream's last Next left behind
	case r := <-s.last:
		for _, res := range r.res {
			if cmd, ok := handBack(s.cmd.Queue, res); ok {
				s.n.Submit(context.Background(), cmd) // best effort: the lease expires otherwise
			}
		}
	default:
	}
}

// standings is the loop's side: the standing receives per queue.
type standings struct {
	byQueue map[string][]*Standing
	next    map[string]int // round-robin start per queue
}

func newStandings() standings {
	return standings{byQueue: map[string][]*Standing{}, next: map[string]int{}}
}

func (ss *standings) add(s *Standing) {
	for _, o := range ss.byQueue[s.cmd.Queue] {
		if o == s {
			return
		}
	}
	ss.byQueue[s.cmd.Queue] = append(ss.byQueue[s.cmd.Queue], s)
}

func (ss *standings) remove(s *Standing) {
	list := ss.byQueue[s.cmd.Queue]
	for i, o := range list {
		if o == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(ss.byQueue, s.cmd.Queue)
		delete(ss.next, s.cmd.Queue)
	} else {
		ss.byQueue[s.cmd.Queue] = list
	}
}

// avail is how many more messages the stream can be given now.
func (s *Standing) avail() int { return s.credit - s.reserved - s.boxed }

// spread splits k messages of queue among its standing receives with
// credit, round-robin, calling fn with each share.
func (ss *standings) spread(queue string, k int, fn func(s *Standing, n int)) {
	list := ss.byQueue[queue]
	switch {
	case len(list) == 0 || k <= 0:
		return
	case len(list) == 1: // the usual case, on every publish: no shares to work out
		if n := min(k, list[0].avail()); n > 0 {
			fn(list[0], n)
		}
		return
	}
	start := ss.next[queue] % len(list)
	ss.next[queue] = start + 1
	// One message at a time across the streams, so that two consumers
	// share a publish of many; each stream's share is one receive.
	share := make([]int, len(list))
	for given := true; k > 0 && given; {
		given = false
		for i := range list {
			j := (start + i) % len(list)
			if k > 0 && share[j] < list[j].avail() {
				share[j]++
				k--
				given = true
			}
		}
	}
	for i, n := range share {
		if n > 0 {
			fn(list[i], n)
		}
	}
}

// reply gives a waiting Next the mailbox (the stream's credit goes down
// by what it is given, as the stream's own count does), or the error the
// standing receive ended with once the mailbox is empty.
func (s *Standing) reply() {
	if s.waiting == nil {
		return
	}
	switch {
	case len(s.mailbox) > 0:
		s.waiting <- standReply{res: s.mailbox}
		s.credit -= s.boxed
		s.mailbox, s.boxed = nil, 0
	case s.err != nil:
		s.waiting <- standReply{err: s.err}
	default:
		return
	}
	s.waiting = nil
}

// applied takes the result of one of the stream's receives (Max max).
// It reports the hand-back to propose when the stream has closed.
func (s *Standing) applied(res replica.Result, max int, drain bool) (replica.Command, bool) {
	s.reserved -= max
	if drain {
		s.draining = false
	}
	if s.closed {
		return handBack(s.cmd.Queue, res)
	}
	if len(res.Delivered) > 0 || res.Err != nil {
		s.mailbox = append(s.mailbox, res)
		s.boxed += len(res.Delivered)
	}
	s.reply()
	return replica.Command{}, false
}

// fail ends the standing receive with err (the node stopped leading):
// what it holds is still given to the stream (it was committed), then
// err.
func (s *Standing) fail(err error) {
	s.err = err
	s.reply()
}

// maxStandDrain bounds the receive a standing receive proposes for
// messages already ready.
const maxStandDrain = 512
