package apitest

import (
	"errors"

	"github.com/chutemq/chute"
)

// testRedriveMessages: chosen dead letters (by sequence in the dead-letter
// queue, or by message ID) go back to their source, in the order named
// while it has room, and wake a receiver waiting there;
// an in-flight one is refused with ErrMessageLeased, an unknown one with
// ErrMessageNotFound, one whose source is full with ErrQueueFull, and
// one whose source is gone with ErrQueueNotFound.
func testRedriveMessages(e *env) {
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 1, MaxMessages: 1})
	dlq := q + chute.DeadLetterSuffix
	var dead []uint64
	for _, body := range []string{"a", "b", "c"} {
		seq := e.publish(q, chute.Message{Body: []byte(body), ID: "id-" + body})[0].Seq
		e.nack(q, chute.Nack{Receipt: e.receiveOne(q).Receipt, Error: "boom"})
		dead = append(dead, e.getMessage(q, chute.BySeq(seq), chute.MessageDeadLettered).MovedSeq)
	}
	da, db, dc := dead[0], dead[1], dead[2]
	if d := e.receiveOne(dlq); d.Seq != da {
		e.t.Fatalf("received dead letter %d, want %d", d.Seq, da)
	}

	// A receiver waits on the empty source; the redrive wakes it.
	got := make(chan []chute.Delivery, 1)
	go func() {
		ds, _ := e.api.Receive(e.ctx, q, chute.ReceiveOptions{Max: 1, Wait: longWait})
		got <- ds
	}()
	rs, err := e.api.RedriveMessages(e.ctx, dlq, chute.ByID("id-b"), chute.BySeq(da), chute.BySeq(dc), chute.BySeq(999_999_999))
	if err != nil || len(rs) != 4 {
		e.t.Fatalf("redrive: %+v, %v", rs, err)
	}
	want := []struct {
		seq   uint64
		moved bool
		queue string
		state chute.MessageState
		err   error
	}{
		{db, true, q, chute.MessageRedriven, nil},
		{da, false, "", chute.MessageInFlight, chute.ErrMessageLeased},
		{dc, false, q, chute.MessageReady, chute.ErrQueueFull},
		{999_999_999, false, "", chute.MessageUnknown, chute.ErrMessageNotFound},
	}
	for i, w := range want {
		r := rs[i]
		if r.Seq != w.seq || r.Moved != w.moved || r.Queue != w.queue || r.State != w.state ||
			!errors.Is(r.Err, w.err) || (w.err == nil) != (r.Err == nil) || r.Moved != (r.NewSeq != 0) {
			e.t.Fatalf("redrive result %d: %+v; want %+v", i, r, w)
		}
	}
	if ds := <-got; len(ds) != 1 || string(ds[0].Body) != "b" || ds[0].Seq != rs[0].NewSeq || ds[0].DeadLetter != nil {
		e.t.Fatalf("the waiting receiver got %q, want the redriven b (seq %d)", bodies(ds), rs[0].NewSeq)
	}
	if info := e.getMessage(dlq, chute.BySeq(db), chute.MessageRedriven); info.MovedTo != q || info.MovedSeq != rs[0].NewSeq {
		e.t.Fatalf("redriven dead letter: %+v", info)
	}
	e.getMessage(dlq, chute.BySeq(dc), chute.MessageReady)
	if st := e.stats(q); st.Totals.Redriven != 1 {
		e.t.Fatalf("source totals: %+v", st.Totals)
	}

	// The source is gone: the dead letter stays.
	if err := e.api.DeleteQueue(e.ctx, q); err != nil {
		e.t.Fatal(err)
	}
	rs, err = e.api.RedriveMessages(e.ctx, dlq, chute.BySeq(dc))
	if err != nil || len(rs) != 1 || rs[0].Moved || rs[0].Queue != q || !errors.Is(rs[0].Err, chute.ErrQueueNotFound) {
		e.t.Fatalf("redrive to a deleted source: %+v, %v", rs, err)
	}
	e.getMessage(dlq, chute.BySeq(dc), chute.MessageReady)

	_, err = e.api.RedriveMessages(e.ctx, e.name("missing"), chute.BySeq(1))
	e.wantErr("redrive from a missing queue", err, chute.ErrQueueNotFound)
	_, err = e.api.RedriveMessages(e.ctx, dlq, chute.MessageRef{})
	e.wantErr("redrive of nothing", err, chute.ErrInvalidMessage)
}
