package apitest

import (
	"errors"
	"slices"

	"github.com/chutemq/chute"
)

// groupQueues creates queues of one placement group (the check's own).
func (e *env) groupQueues(group string, names ...string) []string {
	e.t.Helper()
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = e.queue(n, chute.QueueConfig{Group: e.name(group)})
	}
	return out
}

func (e *env) commit(tx chute.Tx) chute.TxResult {
	e.t.Helper()
	res, err := e.api.Commit(e.ctx, tx)
	if err != nil {
		e.t.Fatalf("commit %s: %v", tx.ID, err)
	}
	if len(res.Published) != len(tx.Publish) {
		e.t.Fatalf("commit %s: %d publish results for %d publishes", tx.ID, len(res.Published), len(tx.Publish))
	}
	return res
}

// testTxAckPublish: a transaction acks its input and publishes its outputs
// to two queues of its group at once; the lease is released, the outputs
// are ready, and the results carry their sequences.
func testTxAckPublish(e *env) {
	qs := e.groupQueues("g", "in", "out1", "out2")
	in, out1, out2 := qs[0], qs[1], qs[2]
	e.publish(in, msg("input"))
	d := e.receiveOne(in)
	res := e.commit(chute.Tx{
		ID:      e.name("tx"),
		Ack:     []chute.TxAck{{Queue: in, Receipts: []string{d.Receipt}}},
		Publish: []chute.TxPublish{{Target: out1, Messages: []chute.Message{msg("a"), msg("b")}}, {Target: out2, Messages: []chute.Message{msg("c")}}},
	})
	if len(res.Published[0]) != 2 || len(res.Published[1]) != 1 || res.Published[0][0].Seq == 0 ||
		res.Published[0][1].Seq != res.Published[0][0].Seq+1 || res.Published[1][0].Seq != res.Published[0][1].Seq+1 {
		e.t.Fatalf("results %+v: want consecutive sequences", res.Published)
	}
	e.wantDepth(in, 0, 0, 0)
	e.wantBodies("out1", e.ready(out1, 10), "a", "b")
	e.wantBodies("out2", e.ready(out2, 10), "c")
	if s := e.stats(in); s.Totals.Acked != 1 {
		e.t.Fatalf("%s: acked %d, want 1", in, s.Totals.Acked)
	}
}

// testTxStale: a stale receipt fails the whole transaction with a
// *StaleReceiptsError naming it, and nothing of it takes effect.
func testTxStale(e *env) {
	qs := e.groupQueues("g", "in", "out")
	in, out := qs[0], qs[1]
	e.publish(in, msg("x"), msg("y"))
	ds := e.ready(in, 2)
	e.ack(in, ds[0])
	_, err := e.api.Commit(e.ctx, chute.Tx{
		Ack:     []chute.TxAck{{Queue: in, Receipts: receipts(ds)}},
		Publish: []chute.TxPublish{{Target: out, Messages: []chute.Message{msg("out")}}},
	})
	var se *chute.StaleReceiptsError
	if !errors.As(err, &se) || !errors.Is(err, chute.ErrStaleReceipt) {
		e.t.Fatalf("commit with a stale receipt: %v (%T), want a *chute.StaleReceiptsError", err, err)
	}
	if !slices.Equal(se.Receipts, []string{ds[0].Receipt}) {
		e.t.Fatalf("stale receipts %q, want %q", se.Receipts, ds[0].Receipt)
	}
	e.wantDepth(out, 0, 0, 0)
	e.wantDepth(in, 0, 0, 1) // y is still leased: its ack did not happen
	e.ack(in, ds[1])
}

// testTxCrossGroup: a transaction over two placement groups is refused;
// a topic and its subscriptions are one group; a group is fixed.
func testTxCrossGroup(e *env) {
	a := e.queue("a", chute.QueueConfig{})
	b := e.queue("b", chute.QueueConfig{})
	_, err := e.api.Commit(e.ctx, chute.Tx{Publish: []chute.TxPublish{
		{Target: a, Messages: []chute.Message{msg("1")}}, {Target: b, Messages: []chute.Message{msg("2")}}}})
	e.wantErr("publish to two groups", err, chute.ErrCrossGroup)
	e.wantDepth(a, 0, 0, 0)

	t := e.topic("t")
	sub := e.name("t-sub")
	e.subscribe(t, sub, nil)
	e.publish(t, msg("in"))
	d := e.receiveOne(sub)
	e.commit(chute.Tx{Ack: []chute.TxAck{{Queue: sub, Receipts: []string{d.Receipt}}},
		Publish: []chute.TxPublish{{Target: t, Messages: []chute.Message{msg("again")}}}})
	e.wantBodies(sub, e.ready(sub, 10), "again")

	err = e.api.UpdateQueue(e.ctx, a, chute.QueueConfig{Group: e.name("other")})
	e.wantErr("changing a queue's group", err, chute.ErrInvalidConfig)
}

// testTxRetry: a retry of a committed transaction (same ID) returns its
// original result and applies nothing, though its receipts are stale.
func testTxRetry(e *env) {
	qs := e.groupQueues("g", "in", "out")
	in, out := qs[0], qs[1]
	e.publish(in, msg("x"))
	d := e.receiveOne(in)
	tx := chute.Tx{ID: e.name("tx"),
		Ack:     []chute.TxAck{{Queue: in, Receipts: []string{d.Receipt}}},
		Publish: []chute.TxPublish{{Target: out, Messages: []chute.Message{msg("y")}}}}
	first := e.commit(tx)
	again := e.commit(tx)
	if first.Published[0][0] != again.Published[0][0] {
		e.t.Fatalf("retry answered %+v, the commit %+v", again.Published, first.Published)
	}
	e.wantDepth(out, 1, 0, 0)
	// Without an ID the retry is a new transaction: its receipt is stale.
	tx.ID = ""
	_, err := e.api.Commit(e.ctx, tx)
	e.wantErr("retry without an ID", err, chute.ErrStaleReceipt)
	e.wantDepth(out, 1, 0, 0)
}

// testTxNack: nacks in a transaction return their messages (unstarted
// ones without counting the delivery).
func testTxNack(e *env) {
	qs := e.groupQueues("g", "in", "out")
	in, out := qs[0], qs[1]
	e.publish(in, msg("x"), msg("y"))
	ds := e.ready(in, 2)
	e.commit(chute.Tx{
		Nack:    []chute.TxNack{{Queue: in, Nacks: []chute.Nack{{Receipt: ds[0].Receipt, Delay: -1, Error: "boom"}, {Receipt: ds[1].Receipt, Unstarted: true}}}},
		Publish: []chute.TxPublish{{Target: out, Messages: []chute.Message{msg("z")}}},
	})
	got := e.ready(in, 2)
	e.wantBodies(in, got, "x", "y")
	if got[0].LastError != "boom" || got[0].Deliveries != 2 || got[1].Deliveries != 1 {
		e.t.Fatalf("after the nacks: %s, %s", show(got[0]), show(got[1]))
	}
	e.ack(in, got...)
	e.wantDepth(out, 1, 0, 0)
}
