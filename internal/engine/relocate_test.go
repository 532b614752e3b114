package engine

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestRelocateMovesEveryEntryAndCheckpointCarriesIt(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{VisibilityTimeout: time.Minute})
	r, _ := h.e.CreateTopic(h.now, "t", TopicConfig{})
	h.commit(r)
	for _, s := range []string{"s1", "s2"} {
		r, _ := h.e.Subscribe(h.now, "t", s, QueueConfig{}, nil)
		h.commit(r)
	}
	sec := int64(time.Second)
	h.mustPublish("q", body("ready"), PubMsg{Body: []byte("ttl"), ExpireAt: h.now + 100*sec},
		PubMsg{Body: []byte("delayed"), DeliverAt: h.now + 10*sec}, body("leased"),
		PubMsg{Body: []byte("k1"), Key: "k"}, PubMsg{Body: []byte("k2"), Key: "k"})
	h.mustPublish("t", body("fan-out"))
	leased := h.receive("q", 1, 0)
	if h.body(leased[0]) != "ready" {
		t.Fatalf("leased %q", h.body(leased[0]))
	}
	// Move the blobs of unit 1 (everything so far) forward.
	h.unit, h.off = 9, 0
	cands := h.e.Candidates(map[uint32]bool{1: true}, 1<<30)
	if len(cands) != 7 {
		t.Fatalf("%d candidate blobs, want 7 (the fan-out blob once)", len(cands))
	}
	rec := &Record{Type: RecBlobs, Time: h.now}
	var olds []uint64
	for ref := range cands {
		rec.Msgs = append(rec.Msgs, PubMsg{Blob: h.blobs[ref]})
		olds = append(olds, ref)
	}
	base := h.store(rec)
	moved := map[uint64]uint64{}
	for i, m := range rec.Msgs {
		moved[olds[i]] = base + uint64(m.BlobOff)
		h.blobs[base+uint64(m.BlobOff)] = m.Blob
		delete(h.blobs, olds[i])
	}
	if err := h.e.Apply(rec, base); err != nil {
		t.Fatal(err)
	}
	if n := h.e.Relocate(moved); n != 8 {
		t.Fatalf("relocated %d entries, want 8", n)
	}
	if got := h.e.LiveUnits(); !slices.Equal(got, []uint32{9}) {
		t.Fatalf("live units %v after relocation", got)
	}
	checkInvariants(t, h.e)
	snap := bytes.Join(h.e.Snapshot(64), nil)
	mark := len(h.log)

	// Life goes on, on the relocated blobs.
	h.ack("q", leased...)
	h.advance(10 * time.Second)
	got := h.bodies(h.receive("q", 10, 0))
	if !slices.Equal(got, []string{"ttl", "delayed", "leased", "k1"}) {
		t.Fatalf("after relocation %v", got)
	}
	if got := h.bodies(h.receive("s2", 10, 0)); !slices.Equal(got, []string{"fan-out"}) {
		t.Fatalf("subscription after relocation %v", got)
	}
	e2, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	h.replay(e2, h.log[mark:])
	e2.Advance(h.e.Now())
	if a, b := dumpState(h.e), dumpState(e2); a != b {
		t.Fatalf("checkpoint + replay diverged:\nlive:\n%s\nrecovered:\n%s", a, b)
	}
}
