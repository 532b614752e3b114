package apitest

import (
	"errors"
	"time"

	"github.com/chutemq/chute"
)

// getMessage looks up a message that must be known, in state want.
func (e *env) getMessage(q string, ref chute.MessageRef, want chute.MessageState) chute.MessageInfo {
	e.t.Helper()
	info, err := e.api.GetMessage(e.ctx, q, ref)
	if err != nil || info.State != want {
		e.t.Fatalf("get message %s of %s: %+v, %v; want %v", ref, q, info, err, want)
	}
	if info.Queue != q || ref.Seq != 0 && info.Seq != ref.Seq || ref.ID != "" && info.ID != ref.ID {
		e.t.Fatalf("get message %s of %s: names %s seq %d id %q", ref, q, info.Queue, info.Seq, info.ID)
	}
	return info
}

// testMessageLookup: a message is looked up by sequence or ID without
// taking a delivery, in every state it passes through.
func testMessageLookup(e *env) {
	q := e.queue("q", chute.QueueConfig{MaxDeliveries: 1})
	res := e.publish(q, chute.Message{Body: []byte("a"), ID: "id-a", Priority: 4, Key: "k"},
		chute.Message{Body: []byte("later"), Delay: time.Hour})
	a, later := res[0].Seq, res[1].Seq

	info := e.getMessage(q, chute.BySeq(a), chute.MessageReady)
	if info.Priority != 4 || info.Key != "k" || info.Published.IsZero() || info.Deliveries != 0 {
		e.t.Fatalf("ready message: %+v", info)
	}
	if info := e.getMessage(q, chute.ByID("id-a"), chute.MessageReady); info.Seq != a {
		e.t.Fatalf("by ID: seq %d, want %d", info.Seq, a)
	}
	if info := e.getMessage(q, chute.BySeq(later), chute.MessageDelayed); time.Until(info.DeliverAt) < 50*time.Minute {
		e.t.Fatalf("delayed message: deliver at %v", info.DeliverAt)
	}
	e.wantDepth(q, 1, 1, 0) // a lookup takes no delivery

	d := e.receiveOne(q)
	if info := e.getMessage(q, chute.BySeq(a), chute.MessageInFlight); info.Deliveries != 1 || info.LeaseDeadline.IsZero() {
		e.t.Fatalf("in flight: %+v", info)
	}
	e.nack(q, chute.Nack{Receipt: d.Receipt, Error: "boom"})
	info = e.getMessage(q, chute.BySeq(a), chute.MessageDeadLettered)
	if info.MovedTo != q+chute.DeadLetterSuffix || info.MovedSeq == 0 || info.Reason != "max-deliveries" || info.SettledAt.IsZero() {
		e.t.Fatalf("dead-lettered: %+v", info)
	}
	dl := e.getMessage(info.MovedTo, chute.BySeq(info.MovedSeq), chute.MessageReady)
	if dl.DeadLetter == nil || dl.DeadLetter.Source != q || dl.DeadLetter.SourceSeq != a || dl.DeadLetter.LastError != "boom" {
		e.t.Fatalf("the dead letter: %+v", dl)
	}

	b := e.publish(q, msg("b"))[0].Seq
	e.ack(q, e.receiveOne(q))
	e.getMessage(q, chute.BySeq(b), chute.MessageAcked)

	_, err := e.api.GetMessage(e.ctx, q, chute.BySeq(999_999_999))
	e.wantErr("lookup of an unknown sequence", err, chute.ErrMessageNotFound)
	_, err = e.api.GetMessage(e.ctx, q, chute.ByID("never"))
	e.wantErr("lookup of an unknown ID", err, chute.ErrMessageNotFound)
	_, err = e.api.GetMessage(e.ctx, e.name("missing"), chute.BySeq(1))
	e.wantErr("lookup in a missing queue", err, chute.ErrQueueNotFound)
	_, err = e.api.GetMessage(e.ctx, q, chute.MessageRef{})
	e.wantErr("lookup by nothing", err, chute.ErrInvalidMessage)
	_, err = e.api.GetMessage(e.ctx, q, chute.MessageRef{Seq: a, ID: "id-a"})
	e.wantErr("lookup by both", err, chute.ErrInvalidMessage)
}

// testCancelMessages: ready and delayed messages are cancelled; an
// in-flight one is refused with ErrMessageLeased, a settled or unknown one
// with ErrMessageNotFound; cancelled ones are looked up as cancelled.
func testCancelMessages(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	res := e.publish(q, chute.Message{Body: []byte("a"), ID: "id-a"}, msg("b"),
		chute.Message{Body: []byte("later"), Delay: time.Hour}, msg("c"))
	a, b, later, c := res[0].Seq, res[1].Seq, res[2].Seq, res[3].Seq
	d := e.receiveOne(q) // a
	if d.Seq != a {
		e.t.Fatalf("received %d, want %d", d.Seq, a)
	}
	rs, err := e.api.CancelMessages(e.ctx, q, chute.ByID("id-a"), chute.BySeq(b), chute.BySeq(later), chute.BySeq(999_999_999))
	if err != nil || len(rs) != 4 {
		e.t.Fatalf("cancel: %v, %v", rs, err)
	}
	want := []struct {
		seq       uint64
		cancelled bool
		err       error
	}{{a, false, chute.ErrMessageLeased}, {b, true, nil}, {later, true, nil}, {999_999_999, false, chute.ErrMessageNotFound}}
	for i, w := range want {
		r := rs[i]
		if r.Seq != w.seq || r.Cancelled != w.cancelled || !errors.Is(r.Err, w.err) || (w.err == nil) != (r.Err == nil) {
			e.t.Fatalf("cancel result %d: %+v; want seq %d cancelled %v err %v", i, r, w.seq, w.cancelled, w.err)
		}
	}
	if rs[0].State != chute.MessageInFlight {
		e.t.Fatalf("cancel of an in-flight message: state %v", rs[0].State)
	}
	e.wantDepth(q, 1, 0, 1)
	e.getMessage(q, chute.BySeq(b), chute.MessageCancelled)
	e.getMessage(q, chute.BySeq(later), chute.MessageCancelled)
	if ds := e.ready(q, 10); len(ds) != 1 || ds[0].Seq != c {
		e.t.Fatalf("after cancel: %q", bodies(ds))
	}
	// Settled: not found.
	e.ack(q, d)
	rs, err = e.api.CancelMessages(e.ctx, q, chute.BySeq(a), chute.BySeq(b))
	if err != nil || len(rs) != 2 || rs[0].Cancelled || rs[1].Cancelled ||
		!errors.Is(rs[0].Err, chute.ErrMessageNotFound) || rs[0].State != chute.MessageAcked || rs[1].State != chute.MessageCancelled {
		e.t.Fatalf("cancel of settled messages: %+v, %v", rs, err)
	}
	if st := e.stats(q); st.Totals.Cancelled != 2 || st.Totals.Acked != 1 {
		e.t.Fatalf("totals: %+v", st.Totals)
	}
	_, err = e.api.CancelMessages(e.ctx, e.name("missing"), chute.BySeq(1))
	e.wantErr("cancel in a missing queue", err, chute.ErrQueueNotFound)
	_, err = e.api.CancelMessages(e.ctx, q, chute.MessageRef{})
	e.wantErr("cancel of nothing", err, chute.ErrInvalidMessage)
}
