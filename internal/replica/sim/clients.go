package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// The simulated clients: one creates the queue, and a topic with two
// subscriptions; producers publish batches in producer sessions (a retry
// is a duplicate, not a second copy), to the queue, and one to the topic;
// consumers receive and ack, nack or drop (the lease runs out) what they
// get, one consumer drains the dead-letter queue, and one each
// subscription; a carrier carries dead letters in from another shard's
// outbox, as a sharded cluster's forwarder does, and one consumer drains
// the queue they go to.

// topicSubs are the topic's subscriptions (queues of their own): each
// gets a copy of every message published to the topic.
var topicSubs = [...]string{"t.a", "t.b"}

const (
	queueName    = "q"
	carriedName  = "carried" // the dead-letter queue the carrier's letters go to
	topicName    = "t"
	lease        = 500 * time.Millisecond
	maxDeliv     = 4
	callTimeout  = 300 * time.Millisecond
	retryBackoff = 10 * time.Millisecond
)

// client sends commands to the node it believes leads, and follows the
// leader hints of the nodes that do not.
type client struct {
	w      *world
	leader uint64 // 0: unknown, try any node
	// tries is how many attempts the call that just finished took (set
	// before its done runs): a retried command may have taken effect on
	// an attempt whose answer was lost.
	tries int
}

// hop is a client↔node network trip: a delay, sometimes a loss.
func (w *world) hop(fn func()) {
	if w.chance(0.01) {
		return
	}
	w.after(w.between(100*time.Microsecond, time.Millisecond), fn)
}

// call has cmd applied once and calls done with its result. A request or
// answer that is lost, or a node that does not lead, makes it try again
// (the same command: a retried publish carries its session numbers, so it
// is stored once). It gives up only when the run stops its clients.
func (c *client) call(cmd replica.Command, done func(replica.Result)) {
	w := c.w
	finished := false
	attempt := 0
	var try func()
	try = func() {
		if finished || w.chk.stopClients {
			return
		}
		attempt++
		a := attempt
		target := c.leader
		if target == 0 {
			target = w.pick().id
		}
		retry := func(hint uint64, after time.Duration) {
			if finished || a != attempt {
				return
			}
			c.leader = hint
			w.after(after, try)
		}
		w.hop(func() {
			n := w.node(target)
			if !n.up {
				return // the timeout retries
			}
			hint, ok := n.propose(cmd, func(res replica.Result) {
				w.hop(func() {
					if finished {
						return
					}
					finished = true
					c.leader = target
					c.tries = attempt
					done(res)
				})
			})
			if !ok {
				w.hop(func() { retry(hint, retryBackoff) })
			}
		})
		w.after(callTimeout, func() { retry(0, 0) })
	}
	try()
}

// startClients creates the queues, then starts the producers and
// consumers.
func (w *world) startClients() {
	w.chk.producing = w.cfg.Producers + 1 + admins + placers + 1 // the queue's producers, the topic's, the admins, the placers, the carrier
	admin := &client{w: w}
	// The set-up, one command after another: the queue, then the topic
	// and its two subscriptions.
	setup := []replica.Command{
		// Commands of version 2 (message headers, keys) after this.
		{Op: replica.OpClusterVersion, Max: int(replica.MaxVersion())},
		{Op: replica.OpCreateQueue, Queue: queueName, Visibility: lease, MaxDeliveries: maxDeliv},
		{Op: replica.OpCreateTopic, Queue: topicName},
		{Op: replica.OpCreateQueue, Queue: carriedName, Visibility: lease, MaxDeliveries: -1},
	}
	for _, sub := range topicSubs {
		setup = append(setup, replica.Command{Op: replica.OpSubscribe, Queue: topicName, Sub: sub, Visibility: lease})
	}
	var step func(int)
	step = func(i int) {
		if i < len(setup) {
			admin.call(setup[i], func(res replica.Result) {
				if res.Err != nil && !errIs(res.Err, engine.ErrExists) {
					w.violation("set-up %v: %v", setup[i].Op, res.Err)
					return
				}
				step(i + 1)
			})
			return
		}
		for i := range w.cfg.Producers {
			w.producer(i, queueName)
		}
		w.producer(w.cfg.Producers, topicName)
		for range w.cfg.Consumers {
			w.consumer(queueName, true)
		}
		for _, sub := range topicSubs {
			w.consumer(sub, false)
			w.consumer(sub+".dlq", false)
		}
		for i := range admins {
			w.admin(i)
		}
		for i := range placers {
			w.placer(i)
		}
		w.carrier()
		w.consumer(queueName+".dlq", false)
		w.consumer(carriedName, false)
	}
	step(0)
}

// producer publishes cfg.Batches batches of 1–4 messages to target (a
// queue, or a topic that fans them out), one batch at a time, some
// delayed, with priorities.
func (w *world) producer(i int, target string) {
	c := &client{w: w}
	session := fmt.Sprintf("p%d", i)
	next, batches := uint64(1), 0
	var publish func()
	publish = func() {
		if batches == w.cfg.Batches {
			w.chk.producing--
			return
		}
		msgs := make([]replica.Msg, 1+w.rng.IntN(4))
		headers := map[string]string{"producer": session} // checked at delivery
		for j := range msgs {
			id := fmt.Sprintf("%s-%d", session, next+uint64(j))
			msgs[j] = replica.Msg{Prio: uint8(w.rng.IntN(10)), ID: id, Headers: headers, Body: []byte(id)}
			if w.rng.IntN(4) == 0 { // an ordering key: one of its messages out at a time
				msgs[j].Key = fmt.Sprintf("k%d", w.rng.IntN(3))
			}
			if w.rng.IntN(5) == 0 {
				msgs[j].Delay = w.between(0, 300*time.Millisecond)
			}
		}
		cmd := replica.Command{Op: replica.OpPublish, Queue: target, Session: session, SessionSeq: next, Msgs: msgs}
		call := w.now
		c.call(cmd, func(res replica.Result) {
			if res.Err != nil {
				w.violation("publish refused: %v", res.Err)
				return
			}
			for j, m := range msgs {
				w.chk.confirm(m.ID, res.Published[j])
			}
			w.chk.publishes = append(w.chk.publishes, porcupine.Operation{ClientId: i, Call: call, Return: w.now,
				Input: len(msgs), Output: res.Published})
			next += uint64(len(msgs))
			batches++
			w.after(w.between(0, 50*time.Millisecond), publish)
		})
	}
	publish()
}

// consumer receives from queue until the run stops its clients. Of what
// it gets, a flaky consumer acks most, nacks some and drops some (their
// leases run out, and they come back, up to the max deliveries); the
// dead-letter consumer acks all.
func (w *world) consumer(queue string, flaky bool) {
	c := &client{w: w}
	var receive func()
	receive = func() {
		if w.chk.stopClients {
			return
		}
		cmd := replica.Command{Op: replica.OpReceive, Queue: queue, Max: 1 + w.rng.IntN(8), Lease: lease}
		c.call(cmd, func(res replica.Result) {
			if res.Err != nil {
				w.violation("receive from %s refused: %v", queue, res.Err)
				return
			}
			if len(res.Delivered) == 0 {
				w.after(w.between(5*time.Millisecond, 50*time.Millisecond), receive)
				return
			}
			w.after(w.between(time.Millisecond, 30*time.Millisecond), func() {
				var acks, nacks []engine.Item
				var qids []uint32 // of acks
				for _, d := range res.Delivered {
					it := engine.Item{Seq: d.Seq, Deliv: d.Deliv}
					switch r := w.rng.IntN(20); {
					case !flaky || r < 16:
						acks, qids = append(acks, it), append(qids, d.QueueID)
					case r < 18:
						it.Value = -1
						if w.rng.IntN(2) == 0 {
							it.Value = int64(w.between(0, 100*time.Millisecond))
						}
						nacks = append(nacks, it)
					}
				}
				// Now and then the consumer needs longer: it extends the
				// leases of what it acks, and acks a while later.
				var extend []engine.Item
				if flaky && w.rng.IntN(5) == 0 {
					extend = acks
				}
				// Half the time the acks are a transaction (all or
				// nothing: a lease that ran out meanwhile refuses it, and
				// the messages come again).
				ack := func() { c.settle(replica.OpAck, queue, acks, receive) }
				if len(acks) > 0 && w.rng.IntN(2) == 0 {
					ack = func() { c.txAck(queue, acks, qids, receive) }
				}
				c.settle(replica.OpNack, queue, nacks, func() {
					c.extend(queue, extend, ack)
				})
			})
		})
	}
	receive()
}

// settle acks or nacks items (nothing to do: then at once).
func (c *client) settle(op replica.Op, queue string, items []engine.Item, then func()) {
	if len(items) == 0 {
		then()
		return
	}
	c.call(replica.Command{Op: op, Queue: queue, Items: items}, func(res replica.Result) {
		if res.Err != nil {
			c.w.violation("%v on %s refused: %v", op, queue, res.Err)
		}
		then()
	})
}

// txAck acks items in one transaction; one stale receipt (a lease that
// ran out) refuses it whole, which is no fault.
func (c *client) txAck(queue string, items []engine.Item, qids []uint32, then func()) {
	cmd := replica.Command{Op: replica.OpTx, TxSettles: []replica.TxSettle{{Queue: queue, Type: engine.RecAck, Items: items, QueueIDs: qids}}}
	c.call(cmd, func(res replica.Result) {
		switch {
		case errIs(res.Err, engine.ErrStaleReceipt):
			c.w.out.StaleTx++
		case res.Err != nil:
			c.w.violation("transaction on %s refused: %v", queue, res.Err)
		}
		c.w.out.Transactions++
		then()
	})
}

// admins is how many clients create and delete the queues in adminQueues,
// concurrently, for the linearizability check of admin commands.
const admins = 2

var adminQueues = [...]string{"x", "y"}

// admin creates or deletes one of adminQueues, opsPerAdmin times, with
// pauses; each call goes into the admin history.
func (w *world) admin(i int) {
	const opsPerAdmin = 25
	c := &client{w: w}
	ops := 0
	var next func()
	next = func() {
		if ops == opsPerAdmin {
			w.chk.producing--
			return
		}
		ops++
		in := adminInput{queue: w.rng.IntN(len(adminQueues)), create: w.rng.IntN(2) == 0}
		cmd := replica.Command{Op: replica.OpDeleteQueue, Queue: adminQueues[in.queue]}
		if in.create {
			cmd = replica.Command{Op: replica.OpCreateQueue, Queue: adminQueues[in.queue], Visibility: lease, MaxDeliveries: maxDeliv}
		}
		// Exactly-once: a retry whose first attempt took effect gets the
		// first attempt's answer, not a second effect.
		if !w.cfg.adminAtLeastOnce {
			cmd.Client, cmd.ClientSeq = fmt.Sprintf("admin%d", i), uint64(ops)
		}
		call := w.now
		c.call(cmd, func(res replica.Result) {
			out := adminOutput{err: res.Err, retried: c.tries > 1}
			w.chk.admin = append(w.chk.admin, porcupine.Operation{ClientId: i, Call: call, Return: w.now, Input: in, Output: out})
			w.after(w.between(0, 100*time.Millisecond), next)
		})
	}
	next()
}

// placers is how many clients place and unplace the names in
// placeNames (a sharded cluster's directory: replica.OpPlace), for the
// linearizability check of the directory.
const placers = 2

var placeNames = [...]string{"p0", "p1"}

// placer places one of placeNames in a shard (0–2) or frees it,
// opsPerPlacer times, with pauses; each call goes into the place history.
func (w *world) placer(i int) {
	const opsPerPlacer = 25
	c := &client{w: w}
	ops := 0
	var next func()
	next = func() {
		if ops == opsPerPlacer {
			w.chk.producing--
			return
		}
		ops++
		in := placeInput{name: w.rng.IntN(len(placeNames)), shard: w.rng.IntN(3), unplace: w.rng.IntN(3) == 0}
		cmd := replica.Command{Op: replica.OpPlace, Queue: placeNames[in.name], Max: in.shard}
		if in.unplace {
			cmd = replica.Command{Op: replica.OpUnplace, Queue: placeNames[in.name]}
		}
		cmd.Client, cmd.ClientSeq = fmt.Sprintf("placer%d", i), uint64(ops)
		call := w.now
		c.call(cmd, func(res replica.Result) {
			// A retry of a refused place answered from the exactly-once
			// memory after a snapshot has the refusal's text and kind
			// (ErrExists), not its shard: -1.
			out := placeOutput{err: res.Err, in: -1}
			var pe *replica.PlacedError
			if errors.As(res.Err, &pe) {
				out.in = int(pe.Shard)
			}
			w.chk.place = append(w.chk.place, porcupine.Operation{ClientId: i, Call: call, Return: w.now, Input: in, Output: out})
			w.after(w.between(0, 100*time.Millisecond), next)
		})
	}
	next()
}

// carrier carries carrierLetters dead letters into carriedName as a
// forwarder carries an outbox of another shard (replica.OpCarry): the
// outbox's letters are numbered with gaps, a carry takes its oldest (up
// to 4, new ones arriving between carries), and once the carry is
// confirmed it drops them, except one time in four (a forwarder that
// failed between its carry and its cancel, or a new leader's): the next
// carry takes them again, with more. Each letter must be stored once,
// whatever the retries, failovers and snapshots, and acked from
// carriedName.
func (w *world) carrier() {
	const carrierLetters = 40
	c := &client{w: w}
	type letter struct {
		seq uint64
		id  string
	}
	var outbox []letter
	made, seq := 0, uint64(0)
	var next func()
	next = func() {
		for range w.rng.IntN(3) {
			if made < carrierLetters {
				seq += 1 + uint64(w.rng.IntN(3))
				outbox = append(outbox, letter{seq, fmt.Sprintf("c-%d", seq)})
				made++
			}
		}
		if len(outbox) == 0 {
			if made == carrierLetters {
				w.chk.producing--
				return
			}
			w.after(w.between(0, 50*time.Millisecond), next)
			return
		}
		batch := outbox[:min(len(outbox), 4)]
		cmd := replica.Command{Op: replica.OpCarry, Queue: carriedName, Client: "chute.fwd/9/out", ClientSeq: batch[len(batch)-1].seq}
		for _, l := range batch {
			cmd.Carry = append(cmd.Carry, replica.CarryMsg{Seq: l.seq,
				Msg:     replica.Msg{ID: l.id, Headers: map[string]string{"producer": "carrier"}, Body: []byte(l.id)},
				CarryIn: engine.CarryIn{Pub: w.now, Info: engine.DeadInfo{Source: "elsewhere", Reason: engine.ReasonMaxDeliveries, OrigSeq: l.seq}}})
		}
		c.call(cmd, func(res replica.Result) {
			if res.Err != nil {
				w.violation("carry refused: %v", res.Err)
				return
			}
			for _, l := range batch {
				w.chk.carried(l.id)
			}
			if w.rng.IntN(4) != 0 {
				outbox = outbox[len(batch):]
			}
			w.after(w.between(0, 50*time.Millisecond), next)
		})
	}
	next()
}

// extend extends items' leases to lease from now, then waits up to most
// of the old lease before it goes on (nothing to extend: at once).
func (c *client) extend(queue string, items []engine.Item, then func()) {
	if len(items) == 0 {
		then()
		return
	}
	c.call(replica.Command{Op: replica.OpExtend, Queue: queue, Items: items, Lease: lease}, func(res replica.Result) {
		if res.Err != nil {
			c.w.violation("extend on %s refused: %v", queue, res.Err)
		}
		c.w.after(c.w.between(0, lease*3/4), then)
	})
}
