package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestLookupSurvivesRestart: cancels and the settled log are in the
// journal and the checkpoint, so a reopened broker answers lookups as
// before, by sequence and by ID.
func TestLookupSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	opts, _ := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{SettledWindow: time.Hour})
	res := mustPublish(t, b, "q", chute.Message{Body: []byte("a"), ID: "a"}, chute.Message{Body: []byte("b")},
		chute.Message{Body: []byte("c"), Delay: time.Hour}, chute.Message{Body: []byte("d")})
	d := mustReceive(t, b, "q", chute.ReceiveOptions{})
	if err := b.Ack(ctx, "q", d[0].Receipt); err != nil {
		t.Fatal(err)
	}
	rs, err := b.CancelMessages(ctx, "q", chute.BySeq(res[1].Seq))
	if err != nil || !rs[0].Cancelled {
		t.Fatalf("cancel: %+v, %v", rs, err)
	}
	if err := b.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if rs, err := b.CancelMessages(ctx, "q", chute.BySeq(res[2].Seq)); err != nil || !rs[0].Cancelled {
		t.Fatalf("cancel after the checkpoint: %+v, %v", rs, err)
	}
	want := map[uint64]chute.MessageState{res[0].Seq: chute.MessageAcked, res[1].Seq: chute.MessageCancelled,
		res[2].Seq: chute.MessageCancelled, res[3].Seq: chute.MessageReady}
	check := func(b *broker.Broker, when string) {
		t.Helper()
		for seq, st := range want {
			if info, err := b.GetMessage(ctx, "q", chute.BySeq(seq)); err != nil || info.State != st {
				t.Fatalf("%s: message %d: %+v, %v; want %v", when, seq, info, err, st)
			}
		}
		if info, err := b.GetMessage(ctx, "q", chute.ByID("a")); err != nil || info.Seq != res[0].Seq || info.State != chute.MessageAcked {
			t.Fatalf("%s: by ID: %+v, %v", when, info, err)
		}
		if st, _ := b.QueueStats(ctx, "q"); st.Totals.Cancelled != 2 || st.Depth() != 1 {
			t.Fatalf("%s: stats %+v", when, st)
		}
	}
	checkAcrossRestart(t, b, "data", opts, check)
}

// checkAcrossRestart runs check on b, closes it, reopens dir with opts and
// runs check again; it returns the reopened broker, closed when t ends.
func checkAcrossRestart(t *testing.T, b *broker.Broker, dir string, opts *broker.Options, check func(*broker.Broker, string)) *broker.Broker {
	t.Helper()
	check(b, "before the restart")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	check(b, "after the restart")
	return b
}

// TestRedriveMessagesSurvivesRestart: a redrive of chosen dead letters is
// in the journal, and replaying it gives the same sequences and states.
func TestRedriveMessagesSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	opts, _ := chutetest.MemOptions(nil)
	opts.CheckpointBytes = -1
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "q", chute.QueueConfig{MaxDeliveries: 1})
	res := mustPublish(t, b, "q", chute.Message{Body: []byte("a"), Key: "k"}, chute.Message{Body: []byte("b")})
	for _, d := range mustReceive(t, b, "q", chute.ReceiveOptions{Max: 2}) {
		if err := b.Nack(ctx, "q", chute.Nack{Receipt: d.Receipt}); err != nil {
			t.Fatal(err)
		}
	}
	var dead []uint64
	for _, r := range res {
		info, err := b.GetMessage(ctx, "q", chute.BySeq(r.Seq))
		if err != nil || info.State != chute.MessageDeadLettered {
			t.Fatalf("message %d: %+v, %v", r.Seq, info, err)
		}
		dead = append(dead, info.MovedSeq)
	}
	rs, err := b.RedriveMessages(ctx, "q.dlq", chute.BySeq(dead[1]), chute.BySeq(dead[0]))
	if err != nil || len(rs) != 2 || !rs[0].Moved || !rs[1].Moved || rs[0].NewSeq >= rs[1].NewSeq {
		t.Fatalf("redrive: %+v, %v", rs, err)
	}
	check := func(b *broker.Broker, when string) {
		t.Helper()
		for i, r := range rs {
			if info, err := b.GetMessage(ctx, "q.dlq", chute.BySeq(r.Seq)); err != nil || info.State != chute.MessageRedriven ||
				info.MovedTo != "q" || info.MovedSeq != r.NewSeq {
				t.Fatalf("%s: dead letter %d: %+v, %v", when, i, info, err)
			}
		}
		if info, err := b.GetMessage(ctx, "q", chute.BySeq(rs[1].NewSeq)); err != nil || info.State != chute.MessageReady || info.Key != "k" {
			t.Fatalf("%s: redriven a: %+v, %v", when, info, err)
		}
		if st, _ := b.QueueStats(ctx, "q"); st.Totals.Redriven != 2 || st.Ready != 2 {
			t.Fatalf("%s: stats %+v", when, st)
		}
	}
	b = checkAcrossRestart(t, b, "data", opts, check)
	if _, err := b.RedriveMessages(ctx, "q.dlq", make([]chute.MessageRef, chute.MaxRedrive+1)...); !errors.Is(err, chute.ErrBatchTooLarge) {
		t.Fatalf("too many refs: %v", err)
	}
}
