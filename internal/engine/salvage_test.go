package engine

import (
	"slices"
	"testing"
	"time"
)

// damage applies a damaged record for seqs of queue through the harness,
// with replacement blobs whose body is "stub <seq>".
func (h *harness) damage(queue string, seqs ...uint64) {
	h.t.Helper()
	blobs := make([][]byte, len(seqs))
	for i, s := range seqs {
		blobs[i] = AppendBlob(nil, "", "", map[string]string{"chute-damaged": "x"}, []byte("stub "+string(rune('0'+s))))
	}
	r, err := h.e.Damaged(h.now, queue, seqs, blobs)
	if err != nil {
		h.t.Fatalf("damaged: %v", err)
	}
	base := h.store(r)
	for _, m := range r.Msgs {
		h.blobs[base+uint64(m.BlobOff)] = slices.Clone(m.Blob)
	}
	if err := h.e.Apply(r, base); err != nil {
		h.t.Fatalf("apply damaged: %v", err)
	}
}

// TestDamagedFromEveryPlace: a damaged message is taken out of wherever it
// is — ready, behind its ordering key, holding its key, delayed, leased,
// with a TTL — and dead-lettered with reason damaged and the replacement
// body; the rest of the queue is untouched, and replay and snapshots agree.
func TestDamagedFromEveryPlace(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 5})
	h.mustPublish("q",
		body("1"),                                                      // seq 1: leased below
		PubMsg{Body: []byte("2"), Key: "k"},                            // seq 2: holds key k
		PubMsg{Body: []byte("3"), Key: "k"},                            // seq 3: waits behind it
		PubMsg{Body: []byte("4"), Key: "k"},                            // seq 4: waits too
		PubMsg{Body: []byte("5"), DeliverAt: h.now + int64(time.Hour)}, // seq 5: delayed
		PubMsg{Body: []byte("6"), ExpireAt: h.now + int64(time.Hour)},  // seq 6: ready, TTL
		body("7"), body("8")) // seq 7 damaged in the middle of the fifo, 8 stays
	if got := seqs(h.receive("q", 1, time.Minute)); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("leased %v", got)
	}
	h.damage("q", 1, 2, 3, 5, 6, 7)
	h.check()
	s := h.stats("q")
	if s.Ready != 2 || s.Delayed != 0 || s.InFlight != 0 || s.Totals.DeadLettered != 6 {
		t.Fatalf("stats after damage %+v", s)
	}
	// Key k passed to 4; 8 is still there, in order.
	ds := h.receive("q", 10, time.Minute)
	if got := h.bodies(ds); !slices.Equal(got, []string{"4", "8"}) {
		t.Fatalf("left in q: %v", got)
	}
	dl := h.receive("q.dlq", 10, time.Minute)
	if len(dl) != 6 {
		t.Fatalf("%d dead letters", len(dl))
	}
	var orig []uint64
	for _, d := range dl {
		if d.Dead == nil || d.Dead.Reason != ReasonDamaged || d.Dead.Reason.String() != "damaged" || d.Dead.Source != "q" {
			t.Fatalf("dead letter %+v", d)
		}
		if b := h.body(d); b != "stub "+string(rune('0'+d.Dead.OrigSeq)) {
			t.Fatalf("dead letter of %d has body %q", d.Dead.OrigSeq, b)
		}
		orig = append(orig, d.Dead.OrigSeq)
	}
	slices.Sort(orig)
	if !slices.Equal(orig, []uint64{1, 2, 3, 5, 6, 7}) {
		t.Fatalf("dead letters of %v", orig)
	}
	// Nothing refers to the damaged blobs any more.
	h.ack("q", ds...)
	h.ack("q.dlq", dl...)
	h.check()
	if n := h.e.Entries(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	if _, err := h.e.Damaged(h.now, "q", []uint64{9}, [][]byte{nil}); err != nil {
		t.Fatal(err) // building is allowed; applying a missing message is not
	}
	r, _ := h.e.Damaged(h.now, "q", []uint64{4}, [][]byte{AppendBlob(nil, "", "", nil, nil)})
	if err := h.e.Apply(r, 1<<40); err == nil {
		t.Fatal("damaged record for an acked message applied")
	}
}

// TestReferringFindsFanOut: a blob shared by subscriptions is referred to
// by each of them.
func TestReferringFindsFanOut(t *testing.T) {
	h := newHarness(t)
	r, _ := h.e.CreateTopic(h.now, "t", TopicConfig{})
	h.commit(r)
	for _, s := range []string{"a", "b"} {
		r, err := h.e.Subscribe(h.now, "t", s, QueueConfig{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.commit(r)
	}
	h.mustPublish("t", body("x"), body("y"))
	var ref uint64
	for k, b := range h.blobs {
		if _, _, _, bd, _ := DecodeBlob(b); string(bd) == "x" {
			ref = k
		}
	}
	got := h.e.Referring(map[uint64]bool{ref: true})
	if len(got) != 2 || got[0].Queue != "a" || got[1].Queue != "b" || got[0].Seq != 1 || got[1].Seq != 1 {
		t.Fatalf("referring %+v", got)
	}
	h.damage("a", 1)
	h.damage("b", 1)
	h.check()
}
