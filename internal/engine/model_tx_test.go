package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"
)

// txStep is the model test's transaction: it publishes a few messages to
// src and acks and nacks a few held receipts of src (one placement group),
// under an ID that is sometimes one already committed. The model answers a
// remembered ID with its first result; otherwise a stale receipt or a
// refused publish fails the whole transaction with nothing changed, and
// a commit has the effects of the publish, then the acks, then the nacks.
func txStep(rt *rapid.T, h *harness, m *model, held map[string][]Delivered, bodyN *int) {
	if m.txs == nil {
		m.txs = map[string][][]PubResult{}
	}
	id := rapid.SampledFrom([]string{"", "", "t1", "t2", "t3", "t4"}).Draw(rt, "txID")
	n := rapid.IntRange(0, 2).Draw(rt, "txN")
	ps := make([]mPub, n)
	msgs := make([]PubMsg, n)
	for i := range ps {
		*bodyN++
		ps[i] = mPub{prio: uint8(rapid.IntRange(0, 1).Draw(rt, "txPrio")) * 5,
			id: rapid.SampledFrom([]string{"", "", "i1", "i4"}).Draw(rt, "txMsgID"), body: fmt.Sprint("m", *bodyN)}
		msgs[i] = PubMsg{Prio: ps[i].prio, ID: ps[i].id, Body: []byte(ps[i].body)}
	}
	// Distinct held receipts of src, each acked or nacked.
	var picks []Delivered
	seen := map[uint64]bool{}
	for range rapid.IntRange(0, min(3, len(held["src"]))).Draw(rt, "txSettle") {
		d := held["src"][rapid.IntRange(0, len(held["src"])-1).Draw(rt, "txWhich")]
		if !seen[d.Seq] {
			seen[d.Seq] = true
			picks = append(picks, d)
		}
	}
	ack := TxSettle{Queue: "src", Type: RecAck}
	nack := TxSettle{Queue: "src", Type: RecNack}
	var nackDelays []int64
	for _, d := range picks {
		it := Item{Seq: d.Seq, Deliv: d.Deliv}
		if rapid.Bool().Draw(rt, "txNack") {
			it.Value = int64(rapid.SampledFrom([]int{-1, 0, 2}).Draw(rt, "txDelay")) * int64(time.Second)
			it.Err = rapid.SampledFrom([]string{"", "e3"}).Draw(rt, "txErr")
			nack.Items = append(nack.Items, it)
			nackDelays = append(nackDelays, it.Value)
		} else {
			ack.Items = append(ack.Items, it)
		}
	}
	tx := &Tx{ID: id}
	if n > 0 {
		tx.Pubs = []TxPub{{Target: "src", Msgs: msgs}}
	}
	for _, s := range []TxSettle{ack, nack} {
		if len(s.Items) > 0 {
			tx.Settle = append(tx.Settle, s)
		}
	}

	before := dumpState(h.e)
	got, err := h.tx(tx)
	if want, ok := m.txs[id]; id != "" && ok {
		if err != nil || !txResultsEqual(got, want) {
			rt.Fatalf("retry of tx %s: got %v, %v; model %v", id, got, err, want)
		}
		return
	}
	stale := false
	for _, s := range tx.Settle {
		for _, it := range s.Items {
			stale = stale || m.leased("src", it.Seq, it.Deliv) == nil
		}
	}
	fail := func(wantErr error) {
		if err == nil || wantErr != nil && !errors.Is(err, wantErr) {
			rt.Fatalf("tx %+v: got %v, %v; model error %v", tx, got, err, wantErr)
		}
		if after := dumpState(h.e); after != before {
			rt.Fatalf("a failed tx (%v) changed the state", err)
		}
	}
	var want [][]PubResult
	if n > 0 {
		if stale { // the engine may report the publish's error (queue full) first
			fail(nil)
			return
		}
		res, perr := m.publish("src", Session{}, ps)
		if perr != nil {
			fail(perr)
			return
		}
		want = [][]PubResult{res}
	} else if stale {
		fail(ErrStaleReceipt)
		return
	}
	if err != nil || !txResultsEqual(got, want) {
		rt.Fatalf("tx %+v: got %v, %v; model %v", tx, got, err, want)
	}
	for _, it := range ack.Items {
		delete(m.msgs["src"], it.Seq)
		m.settle("src", it.Seq, mSettled{state: stAcked}, m.now) // model_lookup_test.go
	}
	for i, it := range nack.Items {
		x := m.leased("src", it.Seq, it.Deliv)
		if it.Err != "" {
			x.lastErr = it.Err
		}
		delay := nackDelays[i]
		switch {
		case delay == 0:
			delay = int64(m.queues["src"].cfg.Backoff.Delay)
		case delay < 0:
			delay = 0
		}
		m.retry(x, delay, m.now)
	}
	if id != "" {
		m.txs[id] = want
	}
}

func txResultsEqual(a, b [][]PubResult) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
