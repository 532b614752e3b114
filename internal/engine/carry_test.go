package engine

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// carry puts ds (dead letters of another engine, with their blobs in
// from) into dead-letter queue name of h, as a sharded cluster's
// forwarder does, and returns their new sequences.
func (h *harness) carry(from *harness, name string, ds []Delivered) []uint64 {
	h.t.Helper()
	msgs, dead := make([]PubMsg, len(ds)), make([]CarryIn, len(ds))
	for i, d := range ds {
		id, key, hdr, body, err := DecodeBlob(from.blobs[d.Ref])
		if err != nil {
			h.t.Fatal(err)
		}
		msgs[i] = PubMsg{Prio: d.Prio, ID: id, Key: key, Headers: hdr, Body: body}
		dead[i] = CarryIn{Pub: d.Pub, Info: *d.Dead}
	}
	r, err := h.e.PrepareCarry(h.now, name, msgs, dead)
	if err != nil {
		h.t.Fatalf("prepare dead letters: %v", err)
	}
	base := h.store(r)
	out := make([]uint64, len(r.Msgs))
	for i, m := range r.Msgs {
		h.blobs[base+uint64(m.BlobOff)] = slices.Clone(m.Blob)
		out[i] = r.FirstSeq + uint64(i)
	}
	if err := h.e.Apply(r, base); err != nil {
		h.t.Fatalf("apply dead letters: %v", err)
	}
	return out
}

// TestCarry: dead letters of one engine (shard), carried
// into another's dead-letter queue, are dead letters there as they were:
// their body, ID, priority, publish time and death; the record replays
// and snapshots to the same state; a redrive takes them back to their
// source once the engine has it, key and all.
func TestCarry(t *testing.T) {
	src, dst := newHarness(t), newHarness(t)
	src.mustCreateQueue("a", QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "shared"})
	src.deadLetters("a", PubMsg{Body: []byte("one"), Prio: 4, ID: "id-1", Key: "k", Headers: map[string]string{"h": "v"}},
		PubMsg{Body: []byte("two")})
	out, err := src.e.Oldest("shared", 10)
	if err != nil || len(out) != 2 || out[0].Seq >= out[1].Seq {
		t.Fatalf("outbox: %+v, %v", out, err)
	}
	if o, _ := src.e.Oldest("shared", 1); len(o) != 1 || o[0].Seq != out[0].Seq {
		t.Fatalf("oldest 1: %+v", o)
	}

	dst.advance(time.Minute) // the other shard's time is its own
	dst.mustCreateQueue("b", QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "shared"})
	dst.deadLetters("b", PubMsg{Body: []byte("local")})
	seqs := dst.carry(src, "shared", out)
	if st := dst.stats("shared"); st.Ready != 3 {
		t.Fatalf("shared: %d ready, want 3", st.Ready)
	}
	got := dst.receive("shared", 3, time.Minute)
	if len(got) != 3 {
		t.Fatalf("received %d", len(got))
	}
	byseq := map[uint64]Delivered{}
	for _, d := range got {
		byseq[d.Seq] = d
	}
	for i, s := range seqs {
		d, ok := byseq[s]
		if !ok || d.Dead == nil {
			t.Fatalf("carried dead letter %d not delivered as one: %+v", s, d)
		}
		if *d.Dead != *out[i].Dead || d.Pub != out[i].Pub || d.Prio != out[i].Prio {
			t.Fatalf("carried %d: death %+v pub %d prio %d; was %+v %d %d", s, *d.Dead, d.Pub, d.Prio, *out[i].Dead, out[i].Pub, out[i].Prio)
		}
		if !bytes.Equal(dst.blobs[d.Ref], src.blobs[out[i].Ref]) {
			t.Fatalf("carried %d: blob %q, was %q", s, dst.blobs[d.Ref], src.blobs[out[i].Ref])
		}
	}
	if got[0].Seq != seqs[0] || got[0].Dead.Source != "a" {
		t.Fatalf("priority 4 first: %+v", got[0])
	}
	// Handed back: a redrive keeps them while "a" is not here.
	items := make([]Item, len(got))
	for i, d := range got {
		items[i] = Item{Seq: d.Seq, Deliv: d.Deliv, Value: -1}
	}
	dst.items(RecReturn, "shared", items...)
	r, n, err := dst.e.Redrive(dst.now, "shared", 0)
	if err != nil || n != 1 {
		t.Fatalf("redrive without a: %d, %v", n, err)
	}
	dst.commit(r)
	dst.mustCreateQueue("a", QueueConfig{MaxDeliveries: 1, DeadLetterQueue: "shared"})
	r, n, err = dst.e.Redrive(dst.now, "shared", 0)
	if err != nil || n != 2 {
		t.Fatalf("redrive with a: %d, %v", n, err)
	}
	dst.commit(r)
	back := dst.receive("a", 2, time.Minute)
	if len(back) != 2 || dst.body(back[0]) != "one" {
		t.Fatalf("back in a: %+v", back)
	}
	dst.check()

	// Redriven messages carried in (from a dead-letter queue in another
	// shard): into their queue as redriven, keys kept; the outbox they
	// came from lists those waiting behind their key too.
	src.mustCreateQueue("back", QueueConfig{})
	src.mustPublish("back", PubMsg{Key: "k", Body: []byte("k1")}, PubMsg{Key: "k", Body: []byte("k2")}, PubMsg{Body: []byte("free")})
	outbox, err := src.e.Oldest("back", 10)
	if err != nil || len(outbox) != 3 || outbox[0].Seq > outbox[1].Seq || outbox[1].Seq > outbox[2].Seq {
		t.Fatalf("an outbox with a key's waiting line: %+v, %v", outbox, err)
	}
	if _, err := dst.e.PrepareCarry(dst.now, "nowhere", []PubMsg{{}}, []CarryIn{{Redriven: true}}); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("redriven into no queue: %v", err)
	}
	if old := dst.receive("b", 10, time.Minute); len(old) != 1 || dst.body(old[0]) != "local" {
		t.Fatalf("b holds %+v, want its own redriven dead letter", old)
	} else {
		dst.ack("b", old...)
	}
	before := dst.stats("b").Totals.Redriven
	msgs, carry := make([]PubMsg, len(outbox)), make([]CarryIn, len(outbox))
	for i, d := range outbox {
		id, key, hdr, body, err := DecodeBlob(src.blobs[d.Ref])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i], carry[i] = PubMsg{Prio: d.Prio, ID: id, Key: key, Headers: hdr, Body: body}, CarryIn{Pub: d.Pub, Redriven: true}
	}
	r, err = dst.e.PrepareCarry(dst.now, "b", msgs, carry)
	if err != nil {
		t.Fatal(err)
	}
	base := dst.store(r)
	for _, m := range r.Msgs {
		dst.blobs[base+uint64(m.BlobOff)] = slices.Clone(m.Blob)
	}
	if err := dst.e.Apply(r, base); err != nil {
		t.Fatal(err)
	}
	if st := dst.stats("b"); st.Totals.Redriven != before+3 || st.Ready != 3 {
		t.Fatalf("b after three redriven, two of one key: %d redriven (was %d), %d ready", st.Totals.Redriven, before, st.Ready)
	}
	got = dst.receive("b", 10, time.Minute)
	if len(got) != 2 || dst.body(got[0]) != "k1" || dst.body(got[1]) != "free" || got[0].Dead != nil || got[0].Pub != outbox[0].Pub {
		t.Fatalf("b delivers %+v", got)
	}
	dst.ack("b", got[0])
	if next := dst.receive("b", 10, time.Minute); len(next) != 1 || dst.body(next[0]) != "k2" {
		t.Fatalf("after k1's ack: %+v", next)
	}
	dst.check()

	// Refused: a priority out of range, a bad name, counts that differ.
	if _, err := dst.e.PrepareCarry(dst.now, "shared", []PubMsg{{Prio: 10}}, []CarryIn{{}}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("priority 10: %v", err)
	}
	if _, err := dst.e.PrepareCarry(dst.now, "", []PubMsg{{}}, []CarryIn{{}}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("no name: %v", err)
	}
	if _, err := dst.e.PrepareCarry(dst.now, "shared", []PubMsg{{}}, nil); err == nil {
		t.Fatal("one message, no death: accepted")
	}
}

// TestOldest: the n lowest sequences of a queue's ready messages, of
// every priority, returned or not, and waiting behind a key or not.
func TestOldest(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	var all []uint64
	for i := range 30 {
		m := PubMsg{Prio: uint8(i * 7 % 10), Body: []byte{byte(i)}}
		if i%4 == 0 {
			m.Key = "k"
		}
		all = append(all, h.mustPublish("q", m)[0].Seq)
	}
	// Two handed back: into the retry heaps.
	ds := h.receive("q", 2, time.Minute)
	h.items(RecReturn, "q", Item{Seq: ds[0].Seq, Deliv: ds[0].Deliv}, Item{Seq: ds[1].Seq, Deliv: ds[1].Deliv})
	for n := 0; n <= len(all)+1; n++ {
		got, err := h.e.Oldest("q", n)
		if err != nil {
			t.Fatal(err)
		}
		if want := all[:min(n, len(all))]; !slices.Equal(seqs(got), want) {
			t.Fatalf("oldest %d: %v, want %v", n, seqs(got), want)
		}
	}
	if _, err := h.e.Oldest("nope", 1); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("no queue: %v", err)
	}
}
