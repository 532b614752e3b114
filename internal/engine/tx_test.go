package engine

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// tx commits a transaction the way the broker does: prepare, store, apply.
func (h *harness) tx(tx *Tx) ([][]PubResult, error) {
	h.t.Helper()
	r, res, err := h.e.PrepareTx(h.now, tx)
	if err != nil || r == nil {
		return res, err
	}
	base := h.store(r)
	for _, p := range r.Parts {
		for _, m := range p.Msgs {
			h.blobs[base+uint64(m.BlobOff)] = slices.Clone(m.Blob)
		}
	}
	if err := h.e.Apply(r, base); err != nil {
		h.t.Fatalf("apply tx: %v", err)
	}
	return res, nil
}

func dumpTxs(t *txMemo) string {
	var b strings.Builder
	t.order.each(func(o *txMemoOrder) bool {
		if x, ok := t.m[o.id]; ok && x.gen == o.gen {
			fmt.Fprintf(&b, "tx %q at=%d res=%v\n", o.id, x.at, x.res)
		}
		return true
	})
	fmt.Fprintf(&b, "txs=%d results=%d\n", len(t.m), t.results)
	return b.String()
}

func ackOf(queue string, ds ...Delivered) TxSettle {
	s := TxSettle{Queue: queue, Type: RecAck}
	for _, d := range ds {
		s.Items = append(s.Items, Item{Seq: d.Seq, Deliv: d.Deliv})
	}
	return s
}

func groupHarness(t *testing.T, names ...string) *harness {
	h := newHarness(t)
	for _, n := range names {
		h.mustCreateQueue(n, QueueConfig{Group: "g"}.WithDefaults(n))
	}
	return h
}

func TestTxAckAndPublish(t *testing.T) {
	h := groupHarness(t, "in", "out", "out2")
	h.mustPublish("in", PubMsg{Body: []byte("x")})
	d := h.receive("in", 1, time.Minute)
	res, err := h.tx(&Tx{ID: "t1",
		Pubs: []TxPub{{Target: "out", Msgs: []PubMsg{{Body: []byte("a")}, {Body: []byte("b")}}},
			{Target: "out2", Msgs: []PubMsg{{Body: []byte("c")}}}},
		Settle: []TxSettle{ackOf("in", d...)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := [][]uint64{resultSeqs(res[0]), resultSeqs(res[1])}; !slices.Equal(got[0], []uint64{2, 3}) || !slices.Equal(got[1], []uint64{4}) {
		t.Fatalf("results %v, want [2 3] [4]", got)
	}
	if s := h.stats("in"); s.InFlight != 0 || s.Totals.Acked != 1 {
		t.Fatalf("in: %+v", s)
	}
	got := h.receive("out", 10, time.Minute)
	if len(got) != 2 || h.body(got[0]) != "a" || h.body(got[1]) != "b" {
		t.Fatalf("out: %v", got)
	}
	if got := h.receive("out2", 10, time.Minute); len(got) != 1 || h.body(got[0]) != "c" {
		t.Fatalf("out2: %v", got)
	}
	h.check()
}

// A stale receipt fails the whole transaction, with nothing changed.
func TestTxStaleLeavesNoEffect(t *testing.T) {
	h := groupHarness(t, "in", "out")
	h.mustPublish("in", PubMsg{Body: []byte("x")}, PubMsg{Body: []byte("y")})
	ds := h.receive("in", 2, time.Minute)
	h.ack("in", ds[1])
	before := dumpState(h.e)
	nlog := len(h.log)
	_, err := h.tx(&Tx{ID: "t", Pubs: []TxPub{{Target: "out", Msgs: []PubMsg{{Body: []byte("o")}}}},
		Settle: []TxSettle{ackOf("in", ds...)}})
	var se *StaleError
	if !errors.As(err, &se) || !errors.Is(err, ErrStaleReceipt) || !slices.Equal(se.Items, []TxStale{{0, 1}}) {
		t.Fatalf("got %v, want a StaleError naming item 1", err)
	}
	if after := dumpState(h.e); after != before || len(h.log) != nlog {
		t.Fatalf("a failed transaction changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The same delivery named twice is refused too.
	_, err = h.tx(&Tx{Settle: []TxSettle{ackOf("in", ds[0]), {Queue: "in", Type: RecNack, Items: []Item{{Seq: ds[0].Seq, Deliv: ds[0].Deliv}}}}})
	if !errors.Is(err, ErrInvalidReceipt) {
		t.Fatalf("a receipt named twice: %v", err)
	}
	h.check()
}

func TestTxGroups(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("a", QueueConfig{}.WithDefaults("a"))
	h.mustCreateQueue("b", QueueConfig{}.WithDefaults("b"))
	h.mustCreateQueue("c", QueueConfig{Group: "a"}.WithDefaults("c")) // joins a's group
	r, err := h.e.CreateTopic(h.now, "t", TopicConfig{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	r, err = h.e.Subscribe(h.now, "t", "t-s", QueueConfig{}.WithDefaults("t-s"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	pub := func(names ...string) error {
		tx := &Tx{}
		for _, n := range names {
			tx.Pubs = append(tx.Pubs, TxPub{Target: n, Msgs: []PubMsg{{Body: []byte(n)}}})
		}
		_, err := h.tx(tx)
		return err
	}
	for _, ok := range [][]string{{"a", "c"}, {"t", "t-s"}, {"b"}} {
		if err := pub(ok...); err != nil {
			t.Fatalf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"a", "b"}, {"t", "a"}, {"t-s", "b"}} {
		if err := pub(bad...); !errors.Is(err, chute.ErrCrossGroup) {
			t.Fatalf("%v: got %v, want ErrCrossGroup", bad, err)
		}
	}
	if _, err := h.e.UpdateQueue(h.now, "c", QueueConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("changing a group: %v", err)
	}
	if _, err := h.e.UpdateTopic(h.now, "t", TopicConfig{Group: "x"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("changing a topic's group: %v", err)
	}
	h.check()
}

// A retry by ID returns the original result and applies nothing; the ID
// survives a snapshot and is forgotten after the window.
func TestTxRetryByID(t *testing.T) {
	h := groupHarness(t, "in", "out")
	h.mustPublish("in", PubMsg{Body: []byte("x")})
	d := h.receive("in", 1, time.Minute)
	tx := &Tx{ID: "retry-me", Pubs: []TxPub{{Target: "out", Msgs: []PubMsg{{Body: []byte("o")}}}}, Settle: []TxSettle{ackOf("in", d...)}}
	first, err := h.tx(tx)
	if err != nil {
		t.Fatal(err)
	}
	nlog := len(h.log)
	again, err := h.tx(tx)
	if err != nil || !slices.Equal(again[0], first[0]) || len(h.log) != nlog {
		t.Fatalf("retry: %v %v (first %v), %d records more", again, err, first, len(h.log)-nlog)
	}
	h.check() // replay and snapshots keep the ID

	e2, err := Restore(bytes.Join(h.e.Snapshot(1<<10), nil))
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := e2.txs.lookup("retry-me", h.now); !ok || !slices.Equal(res[0], first[0]) {
		t.Fatalf("restored memo: %v %v", res, ok)
	}

	h.advance(chute.TxWindow)
	if _, err := h.tx(tx); !errors.Is(err, ErrStaleReceipt) {
		t.Fatalf("retry after the window: %v, want a stale receipt", err)
	}
	h.check()
}

func TestTxMemoCaps(t *testing.T) {
	var m txMemo
	res := [][]PubResult{{{Seq: 1}}}
	for i := range chute.MaxTxIDs + 10 {
		m.remember(fmt.Sprint(i), int64(i), res)
	}
	if len(m.m) != chute.MaxTxIDs || m.results != chute.MaxTxIDs {
		t.Fatalf("%d IDs, %d results; want %d", len(m.m), m.results, chute.MaxTxIDs)
	}
	if _, ok := m.lookup("9", chute.MaxTxIDs); ok {
		t.Fatal("the oldest ID is still remembered")
	}
	if _, ok := m.lookup(fmt.Sprint(chute.MaxTxIDs+9), chute.MaxTxIDs); !ok {
		t.Fatal("the newest ID is forgotten")
	}
	m.remember("x", chute.MaxTxIDs+10, res)
	m.remember("x", chute.MaxTxIDs+11, [][]PubResult{{{Seq: 2}, {Seq: 3}}}) // remembered again: replaced
	if got, _ := m.lookup("x", chute.MaxTxIDs+11); len(got[0]) != 2 || m.results != chute.MaxTxIDs+1 {
		t.Fatalf("replaced: %v, %d results", got, m.results)
	}
}

// Nacks in a transaction dead-letter after the publishes took their
// sequences; replay reaches the same state.
func TestTxNackDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("in", QueueConfig{Group: "g", MaxDeliveries: 1}.WithDefaults("in"))
	h.mustCreateQueue("out", QueueConfig{Group: "g"}.WithDefaults("out"))
	h.mustPublish("in", PubMsg{Body: []byte("x")}, PubMsg{Body: []byte("y")})
	ds := h.receive("in", 2, time.Minute)
	res, err := h.tx(&Tx{
		Pubs: []TxPub{{Target: "out", Msgs: []PubMsg{{Body: []byte("o1")}, {ID: "id", Body: []byte("o2")}}}},
		Settle: []TxSettle{ackOf("in", ds[0]),
			{Queue: "in", Type: RecNack, Items: []Item{{Seq: ds[1].Seq, Deliv: ds[1].Deliv, Err: "boom"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resultSeqs(res[0]), []uint64{3, 4}) {
		t.Fatalf("results %v", res)
	}
	if s := h.stats("in" + DeadLetterSuffix); s.Ready != 1 {
		t.Fatalf("dead-letter queue: %+v", s)
	}
	// A duplicate by message ID in a later transaction is answered, not stored.
	res, err = h.tx(&Tx{Pubs: []TxPub{{Target: "out", Msgs: []PubMsg{{ID: "id", Body: []byte("again")}}}}})
	if err != nil || !res[0][0].Duplicate || res[0][0].Seq != 4 {
		t.Fatalf("duplicate: %v %v", res, err)
	}
	h.check()
}

// The blobs of a transaction's publishes are found at record position +
// BlobOff, through the codec, as a plain publish's.
func TestTxRecordBlobOffsets(t *testing.T) {
	r := &Record{Type: RecTx, Time: t0, Name: "id", TxResults: [][]PubResult{{{Seq: 7}, {Seq: 3, Duplicate: true}}},
		Parts: []*Record{
			{Type: RecPublish, Name: "q", FirstSeq: 7, Msgs: []PubMsg{{ID: "m", Headers: map[string]string{"k": "v"}, Body: []byte("hello")}}},
			{Type: RecAck, Name: "q", Items: []Item{{Seq: 1, Deliv: 2}}},
			{Type: RecNack, Name: "q", Items: []Item{{Seq: 2, Deliv: 1, Value: 5, Err: "e"}}},
		}}
	prefix := []byte("some bytes before")
	buf := r.Encode(slices.Clone(prefix))
	rec := buf[len(prefix):]
	m := r.Parts[0].Msgs[0]
	if !bytes.Equal(rec[m.BlobOff:int(m.BlobOff)+len(m.Blob)], m.Blob) {
		t.Fatalf("encoded BlobOff %d does not point at the blob", m.BlobOff)
	}
	d, err := Decode(rec)
	if err != nil {
		t.Fatal(err)
	}
	dm := d.Parts[0].Msgs[0]
	if dm.BlobOff != m.BlobOff || !bytes.Equal(dm.Blob, m.Blob) || dm.ID != "m" {
		t.Fatalf("decoded %+v, encoded %+v", dm, m)
	}
	if d.Name != "id" || len(d.Parts) != 3 || d.Parts[2].Items[0] != r.Parts[2].Items[0] || !slices.Equal(d.TxResults[0], r.TxResults[0]) {
		t.Fatalf("decoded %+v", d)
	}
	for cut := range len(rec) {
		if _, err := Decode(rec[:cut]); err == nil {
			t.Fatalf("a record cut at %d of %d decodes", cut, len(rec))
		}
	}
}

// FuzzDecodeTx is FuzzDecode seeded with transactions: no input may crash
// Decode (a transaction nested in one is refused before recursing), and
// whatever decodes round-trips with its parts.
func FuzzDecodeTx(f *testing.F) {
	f.Add((&Record{Type: RecTx, Time: t0, Name: "id", TxResults: [][]PubResult{{{Seq: 7}}},
		Parts: []*Record{
			{Type: RecPublish, Name: "q", FirstSeq: 7, Msgs: []PubMsg{{ID: "m", Body: []byte("hello")}}},
			{Type: RecAck, Name: "q", Items: []Item{{Seq: 1, Deliv: 2}}},
			{Type: RecReturn, Name: "q", Items: []Item{{Seq: 3, Deliv: 1}}},
		}}).Encode(nil))
	f.Add((&Record{Type: RecTx, Time: t0}).Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(r.Encode(nil))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if again.Type != r.Type || again.Name != r.Name || len(again.Parts) != len(r.Parts) || len(again.TxResults) != len(r.TxResults) {
			t.Fatalf("round trip changed the record: %+v → %+v", r, again)
		}
		for i, p := range r.Parts {
			if q := again.Parts[i]; q.Type != p.Type || len(q.Msgs) != len(p.Msgs) || len(q.Items) != len(p.Items) {
				t.Fatalf("part %d changed: %+v → %+v", i, p, q)
			}
		}
	})
}
