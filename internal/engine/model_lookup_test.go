package engine

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/chutemq/chute"
)

// The reference model's part for lookups and cancels: how messages left
// each queue (the settled log, with its window and cap, kept the obvious
// way), a cancel step, and a comparison of every lookup.

type mSettled struct {
	state    chute.MessageState
	reason   Reason
	movedTo  string
	movedSeq uint64
	at       int64
	ord      int
}

type mSettledLogs struct {
	m   map[string]map[uint64]mSettled // queue → seq → how it left
	ord int
}

// settledLimits mirrors queue.settledLimits.
func (m *model) settledLimits(q string) (window, limit int64) {
	cfg := m.queues[q].cfg
	window = int64(cfg.SettledWindow)
	if window == 0 {
		window = int64(cfg.DedupWindow)
		if window <= 0 {
			window = int64(DefaultDedupWindow)
		}
	}
	limit = cfg.MaxSettled
	if limit == 0 {
		limit = chute.DefaultMaxSettled
	}
	return window, limit
}

// settle remembers how seq left q at time t: what is past the window is
// forgotten first, then the oldest beyond the cap.
func (m *model) settle(q string, seq uint64, s mSettled, t int64) {
	if m.settled.m == nil {
		m.settled.m = map[string]map[uint64]mSettled{}
	}
	window, limit := m.settledLimits(q)
	log := m.settled.m[q]
	if window <= 0 {
		delete(m.settled.m, q)
		return
	}
	if log == nil {
		log = map[uint64]mSettled{}
		m.settled.m[q] = log
	}
	for k, x := range log {
		if x.at+window <= t {
			delete(log, k)
		}
	}
	m.settled.ord++
	s.at, s.ord = t, m.settled.ord
	log[seq] = s
	for limit > 0 && int64(len(log)) > limit {
		oldest := slices.MinFunc(slices.Collect(maps.Values(log)), func(a, b mSettled) int { return a.ord - b.ord })
		for k, x := range log {
			if x.ord == oldest.ord {
				delete(log, k)
			}
		}
	}
}

// purge empties q, remembering its messages as purged in sequence order.
func (m *model) purge(q string) {
	for _, x := range m.inQueue(q) {
		m.settle(q, x.seq, mSettled{state: stPurged}, m.now)
	}
	m.msgs[q] = map[uint64]*mMsg{}
}

// lookup is what the model says of message seq of q.
func (m *model) lookup(q string, seq uint64) (chute.MessageInfo, bool) {
	info := chute.MessageInfo{Queue: q, Seq: seq}
	if x := m.msgs[q][seq]; x != nil {
		info.Priority, info.Key, info.Deliveries, info.LastError = x.prio, x.key, int(x.counted()), x.lastErr
		switch x.state {
		case mReady:
			info.State = chute.MessageReady
			info.KeyWaiting = x.key != "" && slices.ContainsFunc(m.inQueue(q), func(y *mMsg) bool { return y.key == x.key && y.seq < x.seq })
		case mDelayed:
			info.State = chute.MessageDelayed
			info.DeliverAt = unixTime(x.due)
		case mLeased:
			info.State = chute.MessageInFlight
			info.LeaseDeadline = unixTime(x.deadline)
		}
		return info, true
	}
	s, ok := m.settled.m[q][seq]
	if window, _ := m.settledLimits(q); !ok || window <= 0 || s.at+window <= m.now {
		return chute.MessageInfo{}, false
	}
	info.State, info.SettledAt, info.MovedTo, info.MovedSeq = s.state, unixTime(s.at), s.movedTo, s.movedSeq
	if s.reason != 0 {
		info.Reason = s.reason.String()
	}
	return info, true
}

// compareLookups looks up every sequence ever given in both queues, and
// every message ID, in the engine and in the model.
func compareLookups(rt *rapid.T, h *harness, m *model) {
	for _, q := range []string{"src", "src.dlq"} {
		for seq := uint64(1); seq < m.nextSeq; seq++ {
			want, ok := m.lookup(q, seq)
			got, err := h.e.Lookup(q, seq)
			if !ok {
				if !errors.Is(err, chute.ErrMessageNotFound) {
					rt.Fatalf("lookup %s %d: got %+v, %v; model: not found", q, seq, got, err)
				}
				continue
			}
			if err != nil {
				rt.Fatalf("lookup %s %d: %v; model %+v", q, seq, err, want)
			}
			got.Published = time.Time{} // the model keeps no publish times
			got.DeadLetter = nil        // checked by receive
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				rt.Fatalf("lookup %s %d:\n got   %+v\n model %+v", q, seq, got, want)
			}
		}
	}
	window := int64(m.queues["src"].cfg.DedupWindow)
	for _, id := range []string{"i1", "i2", "i3"} {
		d, ok := m.dedup[id]
		ok = ok && d.at+window > m.now
		seq, err := h.e.SeqOfID("src", id)
		if ok != (err == nil) || ok && seq != d.seq {
			rt.Fatalf("seq of id %s: got %d, %v; model %+v (remembered %v)", id, seq, err, d, ok)
		}
	}
}

// cancelStep cancels a few sequences of one queue, some of them not
// cancellable, and checks each answer against the model.
func cancelStep(rt *rapid.T, h *harness, m *model) {
	if m.nextSeq == 1 {
		return
	}
	q := rapid.SampledFrom([]string{"src", "src", "src.dlq"}).Draw(rt, "queue")
	n := rapid.IntRange(1, 3).Draw(rt, "n")
	seqs := make([]uint64, n)
	want := make([]chute.MessageState, n)
	for i := range seqs {
		seqs[i] = uint64(rapid.IntRange(1, int(m.nextSeq)-1).Draw(rt, "seq"))
	}
	for i, s := range seqs { // states before the cancel
		info, _ := m.lookup(q, s)
		want[i] = info.State
		if j := slices.Index(seqs, s); j < i && (want[j] == chute.MessageReady || want[j] == chute.MessageDelayed) {
			want[i] = chute.MessageCancelled // named twice: cancelled by the first
		}
	}
	for _, s := range seqs {
		if x := m.msgs[q][s]; x != nil && (x.state == mReady || x.state == mDelayed) {
			delete(m.msgs[q], s)
			m.settle(q, s, mSettled{state: stCancelled}, m.now)
		}
	}
	r, got, err := h.e.Cancel(h.now, q, seqs)
	h.commit(r)
	if err != nil || !slices.Equal(got, want) {
		rt.Fatalf("cancel %s %v: got %v, %v; model %v\nengine log %v\nmodel log %v", q, seqs, got, err, want, h.e.queues[q].settled.m, m.settled.m[q])
	}
}

// redriveSeqsStep redrives a few sequences of the dead-letter queue, some
// of them not dead letters or not ready, and checks each outcome against
// the model.
func redriveSeqsStep(rt *rapid.T, h *harness, m *model) {
	if m.nextSeq == 1 {
		return
	}
	const dlq = "src.dlq"
	seqs := make([]uint64, rapid.IntRange(1, 3).Draw(rt, "n"))
	for i := range seqs {
		seqs[i] = uint64(rapid.IntRange(1, int(m.nextSeq)-1).Draw(rt, "seq"))
	}
	want := make([]RedriveOutcome, len(seqs))
	for i, s := range seqs {
		if j := slices.Index(seqs, s); j < i {
			want[i] = want[j] // named twice: the first naming's outcome
			continue
		}
		info, _ := m.lookup(dlq, s)
		w := &want[i]
		w.State = info.State
		x := m.msgs[dlq][s]
		switch {
		case x == nil || x.state == mLeased:
			w.Err = chute.CancelError(w.State)
		case x.dead == nil:
			w.Err = chute.ErrMessageNotFound
		case !m.hasRoom(x.dead.Source):
			w.Source, w.Err = x.dead.Source, ErrQueueFull
		default:
			w.Source, w.Moved = x.dead.Source, true
			w.NewSeq = m.moveBack(dlq, x)
		}
	}
	r, got, err := h.e.RedriveSeqs(h.now, dlq, seqs)
	h.commit(r)
	if err != nil || !slices.EqualFunc(got, want, func(a, b RedriveOutcome) bool {
		return a.State == b.State && a.Moved == b.Moved && a.Source == b.Source && a.NewSeq == b.NewSeq && errors.Is(a.Err, b.Err) && (a.Err == nil) == (b.Err == nil)
	}) {
		rt.Fatalf("redrive %v: got %+v, %v; model %+v", seqs, got, err, want)
	}
}

func unixTime(ns int64) time.Time { return time.Unix(0, ns) }
