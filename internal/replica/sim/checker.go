package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// checker watches every apply on every node and what the clients were
// told, and reports (Outcome.Violations):
//   - replicas that applied different results at the same index (every
//     node's result at an index is compared with the first node's), or
//     whose state hashes differ at the same index (every hashEvery-th
//     index, and once they have converged: world.converge);
//   - a message delivered again after it was acked;
//   - a message delivered while an earlier lease on it was still valid
//     (by the engine's time: the leader-stamped time of the commands),
//     extensions included;
//   - a message ID stored twice (a retried publish must be a duplicate);
//   - a delivered body that is not the one published, or headers not
//     its producer's (a command of version 2);
//   - a confirmed publish whose message was never acked, from its queue
//     or from the dead-letter queue, by the end of the run (lost);
//   - replicas that do not converge once the faults are over.
type checker struct {
	w           *world
	stopClients bool
	byIndex     map[uint64]string          // each index's result, as the first node to apply it saw it
	hashes      map[uint64][32]byte        // the state hash at every hashEvery-th index, as the first node had it
	msgs        map[msgKey]*msgState       // every stored message, by queue and sequence
	ids         map[string]msgKey          // every stored message ID, where it was first stored
	confirmed   map[string]bool            // IDs whose publish a producer saw confirmed
	acked       map[string]bool            // IDs acked from the queue or its dead-letter queue (from every subscription, for the topic's)
	ackedIn     map[string]map[string]bool // the queues (dead-letter queues counted as theirs) each ID was acked from
	fanout      map[string]bool            // IDs published to the topic
	headers     map[string]string          // each ID's "producer" header as published
	producing   int                        // producers not done yet
	leaders     map[[2]uint64]struct{}     // (term, leader) pairs seen
	trace       uint64
	// The histories of the linearizability checks (linear.go).
	publishes, admin, place []porcupine.Operation
}

type msgKey struct {
	queue string
	seq   uint64
}

type msgState struct {
	id       string
	leased   bool
	deadline int64
	acked    bool
}

func newChecker(w *world) *checker {
	return &checker{w: w, byIndex: map[uint64]string{}, msgs: map[msgKey]*msgState{}, ids: map[string]msgKey{},
		hashes: map[uint64][32]byte{}, confirmed: map[string]bool{}, acked: map[string]bool{},
		ackedIn: map[string]map[string]bool{}, fanout: map[string]bool{}, headers: map[string]string{}, leaders: map[[2]uint64]struct{}{}, trace: 14695981039346656037}
}

// summary is what must be equal about one index's result on every node.
func summary(r replica.Result) string {
	var b strings.Builder
	if r.Cmd == nil {
		return "-"
	}
	fmt.Fprintf(&b, "%v %d/%d t=%d err=%v pub=%v tx=%v", r.Cmd.Op, r.Cmd.Node, r.Cmd.ID, r.Time, r.Err, r.Published, r.TxPublished)
	for _, d := range r.Delivered {
		fmt.Fprintf(&b, " d%d/%d@%d", d.Seq, d.Deliv, d.Deadline)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(&b, " f%v", f != nil)
	}
	return b.String()
}

// hashEvery is how often (in log indexes) every replica's state hash is
// compared during a run; world.converge compares them once more at the end.
const hashEvery = 32

// applied is called for every entry every node applies.
func (c *checker) applied(n *node, r replica.Result) {
	if r.Index%hashEvery == 0 && n.disk.rep != nil {
		h := n.shard().Hash()
		c.w.out.HashChecks++
		if first, ok := c.hashes[r.Index]; !ok {
			c.hashes[r.Index] = h
		} else if first != h {
			c.w.out.HashMismatch++
			c.w.violation("node %d's state hash at index %d differs from the first replica's there", n.id, r.Index)
		}
	}
	s := summary(r)
	h := fnv.New64a()
	fmt.Fprintf(h, "%d %d %d %s", c.trace, n.id, r.Index, s)
	c.trace = h.Sum64()
	c.w.out.Trace = c.trace
	if st := n.rn.Status(); st.IsLeader {
		c.leaders[[2]uint64{st.Term, n.id}] = struct{}{}
		c.w.out.Elections = len(c.leaders)
	}
	if first, ok := c.byIndex[r.Index]; ok {
		// With bugQuietDiverge planted the results are not compared, so
		// that its test shows the hash comparison catching it alone.
		if first != s && c.w.cfg.bug != bugQuietDiverge {
			c.w.violation("node %d applied index %d as %q, another node as %q", n.id, r.Index, s, first)
		}
		return
	}
	c.byIndex[r.Index] = s
	if r.Cmd == nil || r.Err != nil {
		return
	}
	c.effects(r)
}

// effects checks and records what an applied command did (once per
// index). A transaction's settles are checked as the acks and nacks they
// are (it was applied whole: no item failed).
func (c *checker) effects(r replica.Result) {
	cmd := r.Cmd
	switch cmd.Op {
	case replica.OpTx:
		for _, st := range cmd.TxSettles {
			op := replica.OpAck
			if st.Type != engine.RecAck {
				op = replica.OpNack
			}
			c.effects(replica.Result{Index: r.Index, Time: r.Time, Cmd: &replica.Command{Op: op, Queue: st.Queue, Items: st.Items},
				Failed: make([]error, len(st.Items))})
		}
		if len(cmd.TxPubs) > 0 {
			c.w.violation("a transaction with publishes: the simulation's clients send none (index %d)", r.Index)
		}
	case replica.OpPublish:
		for i, p := range r.Published {
			id := cmd.Msgs[i].ID
			k := msgKey{cmd.Queue, p.Seq}
			if first, ok := c.ids[id]; ok {
				if !p.Duplicate {
					c.w.violation("message %s stored twice: seq %d, then seq %d (index %d)", id, first.seq, p.Seq, r.Index)
				}
				continue
			}
			if p.Duplicate {
				c.w.violation("message %s reported a duplicate of seq %d, never stored (index %d)", id, p.Seq, r.Index)
				continue
			}
			c.ids[id] = k
			c.msgs[k] = &msgState{id: id}
			c.headers[id] = cmd.Msgs[i].Headers["producer"]
			if cmd.Queue == topicName {
				c.fanout[id] = true
			}
		}
	case replica.OpCarry:
		for i, p := range r.Published {
			id := cmd.Carry[i].Msg.ID
			_, stored := c.ids[id]
			switch {
			case p.Duplicate && !stored:
				c.w.violation("carried letter %s skipped as carried before, never stored (index %d)", id, r.Index)
			case !p.Duplicate && stored:
				c.w.violation("carried letter %s stored twice: %v, then seq %d (index %d)", id, c.ids[id], p.Seq, r.Index)
			case !p.Duplicate:
				k := msgKey{cmd.Queue, p.Seq}
				c.ids[id] = k
				c.msgs[k] = &msgState{id: id}
				c.headers[id] = cmd.Carry[i].Msg.Headers["producer"]
			}
		}
	case replica.OpReceive:
		for _, d := range r.Delivered {
			k := msgKey{cmd.Queue, d.Seq}
			st := c.msgs[k]
			if st == nil { // a dead letter: the same message under its dead-letter queue
				if _, ok := c.ids[d.ID]; !ok {
					c.w.violation("delivered %s (%s seq %d), never published (index %d)", d.ID, cmd.Queue, d.Seq, r.Index)
				}
				st = &msgState{id: d.ID}
				c.msgs[k] = st
			}
			switch {
			case st.id != d.ID:
				c.w.violation("%s seq %d delivered as %s, stored as %s (index %d)", cmd.Queue, d.Seq, d.ID, st.id, r.Index)
			case string(d.Body) != d.ID:
				c.w.violation("%s delivered with body %q (index %d)", d.ID, d.Body, r.Index)
			case d.Headers["producer"] != c.headers[d.ID]:
				c.w.violation("%s delivered with headers %v (index %d)", d.ID, d.Headers, r.Index)
			case st.acked:
				c.w.violation("%s delivered again after its ack (index %d, delivery %d)", d.ID, r.Index, d.Deliv)
			case st.leased && r.Time < st.deadline:
				c.w.violation("%s delivered at %d while its lease ran to %d (index %d)", d.ID, r.Time, st.deadline, r.Index)
			}
			st.leased, st.deadline = true, d.Deadline
			c.w.out.Delivered++
		}
	case replica.OpAck, replica.OpNack, replica.OpExtend:
		for i, it := range cmd.Items {
			if r.Failed[i] != nil {
				continue
			}
			st := c.msgs[msgKey{cmd.Queue, it.Seq}]
			if st == nil {
				c.w.violation("%v of %s seq %d, never delivered (index %d)", cmd.Op, cmd.Queue, it.Seq, r.Index)
				continue
			}
			if cmd.Op == replica.OpExtend {
				// The lease now runs from the command's time (the engine's,
				// after it ran) for the lease asked.
				st.deadline = r.Time + int64(cmd.Lease)
				c.w.out.Extended++
				continue
			}
			st.leased = false
			if cmd.Op == replica.OpAck {
				st.acked = true
				if c.ackedIn[st.id] == nil {
					c.ackedIn[st.id] = map[string]bool{}
				}
				c.ackedIn[st.id][strings.TrimSuffix(cmd.Queue, ".dlq")] = true
				// A message of the topic is done once every subscription
				// acked its copy.
				done := !c.fanout[st.id]
				if !done {
					done = true
					for _, sub := range topicSubs {
						done = done && c.ackedIn[st.id][sub]
					}
				}
				if done && !c.acked[st.id] {
					c.acked[st.id] = true
					c.w.out.Acked++
					if strings.HasSuffix(cmd.Queue, ".dlq") {
						c.w.out.DeadLettered++
					}
				}
			}
		}
	}
}

// confirm records what a producer was told about one message.
func (c *checker) confirm(id string, p engine.PubResult) {
	if k, ok := c.ids[id]; !ok || k.seq != p.Seq {
		c.w.violation("publish of %s confirmed as seq %d, stored as %v", id, p.Seq, k)
	}
	c.confirmed[id] = true
	c.w.out.Confirmed++
}

// carried records that a carry of letter id was confirmed: it is stored
// (by this carry, or an earlier one), and must be acked.
func (c *checker) carried(id string) {
	if _, ok := c.ids[id]; !ok {
		c.w.violation("carry of %s confirmed, never stored", id)
	}
	if !c.confirmed[id] {
		c.confirmed[id] = true
		c.w.out.Confirmed++
	}
}

// done says the clients have nothing left to do: every producer finished
// and every confirmed message acked.
func (c *checker) done() bool {
	if c.producing > 0 {
		return false
	}
	for id := range c.confirmed {
		if !c.acked[id] {
			return false
		}
	}
	return true
}

// finish reports confirmed messages never acked (sorted, so that a seed's
// report is the same every time).
func (c *checker) finish() {
	c.checkLinear()
	var lost []string
	for id := range c.confirmed {
		if !c.acked[id] {
			lost = append(lost, id)
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		more := ""
		if len(lost) > 10 {
			more, lost = fmt.Sprintf(" and %d more", len(lost)-10), lost[:10]
		}
		c.w.violation("confirmed and never acked (lost, or stuck): %s%s", strings.Join(lost, " "), more)
	}
	if c.producing > 0 {
		c.w.violation("%d producers did not finish", c.producing)
	}
}

// errIs reports whether a command's refusal is target.
func errIs(err, target error) bool { return errors.Is(err, target) }
