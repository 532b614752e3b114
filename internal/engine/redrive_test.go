package engine

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// deadLetters publishes one message per body to q, receives and nacks
// them (q allows one delivery), and returns their sequences in q's
// dead-letter queue.
func (h *harness) deadLetters(q string, msgs ...PubMsg) []uint64 {
	h.t.Helper()
	res := h.mustPublish(q, msgs...)
	for _, d := range h.receive(q, len(msgs), 0) {
		if err := h.nack(q, d, -1, "boom"); err != nil {
			h.t.Fatal(err)
		}
	}
	out := make([]uint64, len(res))
	for i, r := range res {
		info := h.wantState(q, r.Seq, chute.MessageDeadLettered)
		out[i] = info.MovedSeq
	}
	return out
}

// TestRedriveSeqs: chosen dead letters go back to their sources, ready or
// delayed ones only, in the order named, while their sources have room;
// the record replays to the same state.
func TestRedriveSeqs(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "dead", MaxMessages: 3})
	h.mustCreateQueue("p", QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "dead"})
	dl := h.deadLetters("q", PubMsg{Body: []byte("a")}, PubMsg{Body: []byte("b"), Key: "k"}, PubMsg{Body: []byte("c"), ID: "id-c"})
	da, db, dc, dd := dl[0], dl[1], dl[2], h.deadLetters("q", PubMsg{Body: []byte("d")})[0]
	dp := h.deadLetters("p", PubMsg{Body: []byte("p")})[0]
	h.commit(mustRecord(h.e.DeleteQueue(h.now, "p")))
	plain := h.mustPublish("dead", PubMsg{Body: []byte("not dead"), ID: "id-plain"})[0].Seq
	// IDs: as the dead-letter queue remembers them, else as a source does.
	for id, want := range map[string]uint64{"id-c": dc, "id-plain": plain} {
		if seq, err := h.e.DeadLetterSeqOfID("dead", id); err != nil || seq != want {
			t.Fatalf("dead letter of %s: %d, %v; want %d", id, seq, err, want)
		}
	}
	if _, err := h.e.DeadLetterSeqOfID("dead", "never"); !errors.Is(err, chute.ErrMessageNotFound) {
		t.Fatalf("unknown ID: %v", err)
	}

	// da in flight, db delayed (a retry with back-off).
	ds := h.receive("dead", 2, 0)
	if !slices.Equal(seqs(ds), []uint64{da, db}) {
		t.Fatalf("received %v, want %d %d", seqs(ds), da, db)
	}
	if err := h.nack("dead", ds[1], 10*time.Second, ""); err != nil {
		t.Fatal(err)
	}
	h.wantState("dead", db, chute.MessageDelayed)
	h.mustPublish("q", PubMsg{Body: []byte("x")}, PubMsg{Body: []byte("y")}) // room for one more

	named := []uint64{db, da, dc, dd, dp, plain, 999_999, db}
	r, out, err := h.e.RedriveSeqs(h.now, "dead", named)
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	if r == nil || !slices.Equal(r.Seqs, []uint64{db}) {
		t.Fatalf("record %+v, want one naming %d", r, db)
	}
	type want struct {
		state  chute.MessageState
		moved  bool
		source string
		err    error
	}
	wants := []want{
		{chute.MessageDelayed, true, "q", nil},
		{chute.MessageInFlight, false, "", chute.ErrMessageLeased},
		{chute.MessageReady, false, "q", ErrQueueFull},
		{chute.MessageReady, false, "q", ErrQueueFull},
		{chute.MessageReady, false, "p", ErrQueueNotFound},
		{chute.MessageReady, false, "", chute.ErrMessageNotFound},
		{chute.MessageUnknown, false, "", chute.ErrMessageNotFound},
		{chute.MessageDelayed, true, "q", nil},
	}
	for i, w := range wants {
		o := out[i]
		if o.State != w.state || o.Moved != w.moved || o.Source != w.source || !errors.Is(o.Err, w.err) || (o.Err == nil) != (w.err == nil) {
			t.Errorf("seq %d: %+v, want %+v", named[i], o, w)
		}
	}
	newSeq := out[0].NewSeq
	if out[7].NewSeq != newSeq || newSeq == 0 {
		t.Fatalf("new seqs %d and %d", newSeq, out[7].NewSeq)
	}
	// The dead letter is settled as redriven, with where it went; the new
	// message is ready in q with its key restored.
	if info := h.wantState("dead", db, chute.MessageRedriven); info.MovedTo != "q" || info.MovedSeq != newSeq {
		t.Fatalf("dead letter after redrive: %+v", info)
	}
	if info := h.wantState("q", newSeq, chute.MessageReady); info.Key != "k" {
		t.Fatalf("redriven message: %+v", info)
	}
	if s := h.stats("q"); s.Totals.Redriven != 1 || s.Depth() != 3 {
		t.Fatalf("q stats %+v", s)
	}
	// Nothing else moved.
	r, _, err = h.e.RedriveSeqs(h.now, "dead", []uint64{da, dc})
	if r != nil || err != nil {
		t.Fatalf("redrive into a full queue: %+v, %v", r, err)
	}
	if _, _, err := h.e.RedriveSeqs(h.now, "nope", []uint64{1}); !errors.Is(err, ErrQueueNotFound) {
		t.Fatal(err)
	}
	h.check()
	// A record that names a message that cannot move does not apply: a
	// damaged journal.
	for _, s := range []uint64{da, dc, db} {
		if err := h.e.Apply(&Record{Type: RecRedriveSeqs, Time: h.now, Name: "dead", Seqs: []uint64{s}}, 0); !errors.Is(err, ErrCorruptRecord) {
			t.Fatalf("redrive of %d applied: %v", s, err)
		}
	}
}

// TestRedriveSharesMove: the oldest-first form (Redrive) and the chosen
// form (RedriveSeqs) leave the same state behind.
func TestRedriveSharesMove(t *testing.T) {
	var dumps []string
	for _, chosen := range []bool{false, true} {
		h := newHarness(t)
		h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 1, MessageTTL: time.Hour})
		dl := h.deadLetters("q", PubMsg{Body: []byte("a"), Key: "k"}, PubMsg{Body: []byte("b"), Key: "j", Prio: 3})
		var r *Record
		var err error
		if chosen {
			slices.Sort(dl) // the order Redrive takes them in too: b (priority 3) died first
			r, _, err = h.e.RedriveSeqs(h.now, "q"+DeadLetterSuffix, dl)
		} else {
			r, _, err = h.e.Redrive(h.now, "q"+DeadLetterSuffix, 0)
		}
		if err != nil || r == nil {
			t.Fatalf("redrive: %v, %v", r, err)
		}
		h.commit(r)
		h.check()
		dumps = append(dumps, dumpState(h.e))
	}
	if dumps[0] != dumps[1] {
		t.Fatalf("redrive and redrive-seqs differ:\n%s\n%s", dumps[0], dumps[1])
	}
}

func mustRecord(r *Record, err error) *Record {
	if err != nil {
		panic(err)
	}
	return r
}
