package engine

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The reference model: every message of every queue in one map, each with
// its state, and every question answered by looking at all of them. It is
// slow and obviously right; the engine must agree with it after every step.
//
// Scope: one source queue "src" and its dead-letter queue "src.dlq";
// priorities, delays, TTLs, ordering keys (on messages without delay, so
// that a key's order is publish order), message IDs (window and cap),
// producer sessions (in order, gaps, retries, expiry), depth limits with
// either overflow policy, leases, acks, nacks, extends, unstarted returns,
// leases returned by a graceful shutdown or released by a crash, redrive,
// purge, transactions (model_tx_test.go), lookups of every sequence and
// ID, cancels and the settled log with its window and cap
// (model_lookup_test.go), and time passing. The back-off
// is fixed and without jitter.

type mState int

const (
	mReady mState = iota
	mDelayed
	mLeased
)

type mMsg struct {
	seq      uint64
	queue    string
	prio     uint8
	key      string
	state    mState
	due      int64 // delayed: when it is due
	active   bool  // delayed for a retry (keeps its place)
	expire   int64 // 0: never
	deliv    uint16
	returned uint16 // deliveries handed back uncounted
	deadline int64
	lastErr  string
	dead     *DeadInfo
	body     string
}

type mQueue struct {
	name string
	cfg  QueueConfig
	id   int
}

type model struct {
	now      int64
	nextSeq  uint64
	queues   map[string]*mQueue
	msgs     map[string]map[uint64]*mMsg // queue → seq → message
	dedup    map[string]mDedup           // message IDs of src
	dedupOrd int                         // insertion counter: the oldest is forgotten first beyond MaxDedupIDs
	sessions map[string]*mSession        // of src
	txs      map[string][][]PubResult    // committed transactions by ID (model_tx_test.go)
	settled  mSettledLogs                // how messages left (model_lookup_test.go)
}

type mDedup struct {
	seq uint64
	at  int64
	ord int
}

// remember adds a message ID: expired ones are forgotten first; beyond
// MaxDedupIDs the oldest are forgotten early.
func (m *model) remember(id string, seq uint64) {
	cfg := m.queues["src"].cfg
	for k, d := range m.dedup {
		if d.at+int64(cfg.DedupWindow) <= m.now {
			delete(m.dedup, k)
		}
	}
	m.dedupOrd++
	m.dedup[id] = mDedup{seq: seq, at: m.now, ord: m.dedupOrd}
	for cfg.MaxDedupIDs > 0 && int64(len(m.dedup)) > cfg.MaxDedupIDs {
		oldest := ""
		for k, d := range m.dedup {
			if oldest == "" || d.ord < m.dedup[oldest].ord {
				oldest = k
			}
		}
		delete(m.dedup, oldest)
	}
}

// mSession is a producer session as the model sees it: the highest number
// stored, the last publish, and the answers of every batch ever stored
// (only the last SessionInFlight are remembered by the engine).
type mSession struct {
	hw      uint64
	last    int64
	batches []mBatch
}

type mBatch struct {
	first uint64
	res   []PubResult
}

// counted is how many deliveries count towards max deliveries.
func (x *mMsg) counted() uint16 { return x.deliv - x.returned }

func (m *model) inQueue(q string) []*mMsg {
	out := make([]*mMsg, 0, len(m.msgs[q]))
	for _, x := range m.msgs[q] {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b *mMsg) int { return int(a.seq) - int(b.seq) })
	return out
}

// deliverable: ready, and the oldest message of its key in the queue.
func (m *model) deliverable(q string) []*mMsg {
	var out []*mMsg
	all := m.inQueue(q)
	for _, x := range all {
		if x.state != mReady {
			continue
		}
		if x.key != "" && slices.ContainsFunc(all, func(y *mMsg) bool { return y.key == x.key && y.seq < x.seq }) {
			continue
		}
		out = append(out, x)
	}
	slices.SortStableFunc(out, func(a, b *mMsg) int { return int(b.prio) - int(a.prio) })
	return out
}

func (m *model) depth(q string) int { return len(m.msgs[q]) }

// event is a timer: a delayed message's time (kind 0), a lease's deadline
// (kind 1), a ready message's expiry (kind 2).
func (m *model) nextEvent(q string) (at int64, kind int, x *mMsg) {
	for _, y := range m.inQueue(q) {
		var t int64
		var k int
		switch {
		case y.state == mDelayed:
			t, k = y.due, 0
			if y.expire != 0 && y.expire < t {
				t = y.expire
			}
		case y.state == mLeased:
			t, k = y.deadline, 1
		case y.expire != 0:
			t, k = y.expire, 2
		default:
			continue
		}
		if x == nil || t < at || t == at && k < kind {
			at, kind, x = t, k, y
		}
	}
	return at, kind, x
}

func (m *model) advance(now int64) {
	m.now = max(m.now, now)
	for {
		// Queues by (earliest event, id), each run up to now.
		var best *mQueue
		var bestAt int64
		for _, q := range m.queues {
			if at, _, x := m.nextEvent(q.name); x != nil && at <= m.now && (best == nil || at < bestAt || at == bestAt && q.id < best.id) {
				best, bestAt = q, at
			}
		}
		if best == nil {
			return
		}
		for {
			at, kind, x := m.nextEvent(best.name)
			if x == nil || at > m.now {
				break
			}
			switch kind {
			case 0:
				if x.expire != 0 && x.expire <= at {
					m.expire(x, at)
				} else {
					m.makeReady(x, at)
				}
			case 1:
				m.retry(x, 0, at)
			case 2:
				m.expire(x, at)
			}
		}
	}
}

func (m *model) makeReady(x *mMsg, t int64) {
	if x.expire != 0 && x.expire <= t {
		m.expire(x, t)
		return
	}
	x.state = mReady
}

func (m *model) expire(x *mMsg, t int64) {
	if m.queues[x.queue].cfg.DeadLetterExpired {
		m.deadLetter(x, ReasonExpired, t)
	} else {
		delete(m.msgs[x.queue], x.seq)
		m.settle(x.queue, x.seq, mSettled{state: stExpired, reason: ReasonExpired}, t)
	}
}

func (m *model) retry(x *mMsg, delay, t int64) {
	cfg := m.queues[x.queue].cfg
	if cfg.MaxDeliveries > 0 && int(x.counted()) >= cfg.MaxDeliveries {
		m.deadLetter(x, ReasonMaxDeliveries, t)
		return
	}
	if delay > 0 && (x.expire == 0 || x.expire > t) {
		x.state, x.due, x.active = mDelayed, t+delay, true
		return
	}
	m.makeReady(x, t)
}

func (m *model) deadLetter(x *mMsg, reason Reason, t int64) {
	src := m.queues[x.queue]
	delete(m.msgs[x.queue], x.seq)
	dlq := src.cfg.DeadLetterQueue
	if dlq == "" {
		m.settle(x.queue, x.seq, mSettled{state: stDiscarded, reason: reason}, t)
		return
	}
	n := &mMsg{seq: m.nextSeq, queue: dlq, prio: x.prio, body: x.body,
		dead: &DeadInfo{Source: src.name, Reason: reason, Deliveries: int(x.counted()), LastError: x.lastErr, At: t, OrigSeq: x.seq, Key: x.key}}
	m.settle(x.queue, x.seq, mSettled{state: stDeadLettered, reason: reason, movedTo: dlq, movedSeq: n.seq}, t)
	m.nextSeq++
	m.msgs[dlq][n.seq] = n
}

type mPub struct {
	prio          uint8
	delay, ttl    time.Duration
	key, id, body string
}

// giveBack returns a leased message without counting the delivery.
func (m *model) giveBack(x *mMsg, t int64) {
	if x.deliv > x.returned {
		x.returned++
	}
	m.makeReady(x, t)
}

// endLeases ends every lease, queue by queue (in id order), by deadline
// within a queue, as the engine's release and return of leases do.
func (m *model) endLeases(then func(x *mMsg)) {
	for _, q := range []string{"src", "src.dlq"} {
		var leased []*mMsg
		for _, x := range m.inQueue(q) {
			if x.state == mLeased {
				leased = append(leased, x)
			}
		}
		slices.SortStableFunc(leased, func(a, b *mMsg) int {
			if a.deadline != b.deadline {
				return int(a.deadline - b.deadline)
			}
			return int(a.seq) - int(b.seq)
		})
		for _, x := range leased {
			then(x)
		}
	}
}

// sessionFor returns the session of a publish, nil when it is unknown or
// expired (its numbers start again at 1).
func (m *model) sessionFor(id string) *mSession {
	s := m.sessions[id]
	if s == nil || s.last+int64(m.queues["src"].cfg.SessionWindow) <= m.now {
		return nil
	}
	return s
}

// sessionResult is the answer a number got, if its batch is among the
// last SessionInFlight the engine remembers; else 0.
func (s *mSession) result(num uint64) uint64 {
	bs := s.batches[max(len(s.batches)-SessionInFlight, 0):]
	for _, b := range bs {
		if num >= b.first && num < b.first+uint64(len(b.res)) {
			return b.res[num-b.first].Seq
		}
	}
	return 0
}

// publish mirrors PreparePublish + Apply; it returns the expected results or
// the expected error.
func (m *model) publish(q string, sess Session, ps []mPub) ([]PubResult, error) {
	cfg := m.queues[q].cfg
	window := int64(cfg.DedupWindow)
	res := make([]PubResult, len(ps))
	skip := 0
	var ms *mSession
	if sess.ID != "" {
		ms = m.sessionFor(sess.ID)
		var hw uint64
		if ms != nil {
			hw = ms.hw
		}
		if sess.First > hw+1 {
			return nil, ErrOutOfOrder
		}
		if sess.First <= hw {
			skip = int(min(hw-sess.First+1, uint64(len(ps))))
		}
		for i := range skip {
			res[i] = PubResult{Seq: ms.result(sess.First + uint64(i)), Duplicate: true}
		}
	}
	var fresh []int
	inBatch := map[string]uint64{}
	seq := m.nextSeq
	for i, p := range ps {
		if i < skip {
			continue
		}
		if p.id != "" {
			if d, ok := m.dedup[p.id]; ok && d.at+window > m.now {
				res[i] = PubResult{Seq: d.seq, Duplicate: true}
				continue
			}
			if s, ok := inBatch[p.id]; ok {
				res[i] = PubResult{Seq: s, Duplicate: true}
				continue
			}
			inBatch[p.id] = seq
		}
		res[i] = PubResult{Seq: seq}
		seq++
		fresh = append(fresh, i)
	}
	if lim := cfg.MaxMessages; len(fresh) > 0 && lim > 0 && int64(m.depth(q)+len(fresh)) > lim {
		need := int64(m.depth(q)+len(fresh)) - lim
		if cfg.Overflow == OverflowReject || need > int64(len(m.deliverable(q))) {
			return nil, ErrQueueFull
		}
	}
	if sess.ID != "" && skip < len(ps) {
		if ms == nil {
			ms = &mSession{}
			m.sessions[sess.ID] = ms
		}
		ms.hw, ms.last = sess.First+uint64(len(ps))-1, m.now
		ms.batches = append(ms.batches, mBatch{first: sess.First + uint64(skip), res: res[skip:]})
	}
	for _, i := range fresh {
		p := ps[i]
		x := &mMsg{seq: m.nextSeq, queue: q, prio: p.prio, key: p.key, body: p.body}
		m.nextSeq++
		if p.id != "" {
			m.remember(p.id, x.seq)
		}
		if p.ttl > 0 {
			x.expire = m.now + int64(p.ttl)
		}
		if lim := cfg.MaxMessages; lim > 0 && cfg.Overflow == OverflowDropOldest {
			for int64(m.depth(q)+1) > lim {
				d := m.deliverable(q)
				if len(d) == 0 {
					break
				}
				victim := slices.MinFunc(d, func(a, b *mMsg) int { return int(a.seq) - int(b.seq) })
				m.deadLetter(victim, ReasonOverflow, m.now)
			}
		}
		m.msgs[q][x.seq] = x
		if p.delay > 0 {
			x.state, x.due = mDelayed, m.now+int64(p.delay)
		} else {
			m.makeReady(x, m.now)
		}
	}
	return res, nil
}

func (m *model) receive(q string, max int, lease int64) []*mMsg {
	if lease <= 0 {
		lease = int64(m.queues[q].cfg.VisibilityTimeout)
	}
	var out []*mMsg
	for len(out) < max {
		d := m.deliverable(q)
		if len(d) == 0 {
			break
		}
		x := d[0]
		x.state, x.deadline = mLeased, m.now+lease
		x.deliv++ // (never near saturation here)
		out = append(out, x)
	}
	return out
}

func (m *model) leased(q string, seq uint64, deliv uint16) *mMsg {
	x := m.msgs[q][seq]
	if x == nil || x.state != mLeased || x.deliv != deliv {
		return nil
	}
	return x
}

func (m *model) redrive(dlq string, n int64) int64 {
	var moved int64
	for _, x := range m.deliverable(dlq) {
		if n > 0 && moved >= n {
			break
		}
		if !m.hasRoom(x.dead.Source) {
			continue
		}
		m.moveBack(dlq, x)
		moved++
	}
	return moved
}

// hasRoom reports whether one more message fits in q.
func (m *model) hasRoom(q string) bool {
	lim := m.queues[q].cfg.MaxMessages
	return lim <= 0 || int64(m.depth(q)+1) <= lim
}

// moveBack moves dead letter x of dlq back to its source and returns its
// new sequence there.
func (m *model) moveBack(dlq string, x *mMsg) uint64 {
	src := m.queues[x.dead.Source]
	delete(m.msgs[dlq], x.seq)
	y := &mMsg{seq: m.nextSeq, queue: src.name, prio: x.prio, key: x.dead.Key, body: x.body}
	m.settle(dlq, x.seq, mSettled{state: stRedriven, movedTo: src.name, movedSeq: y.seq}, m.now)
	m.nextSeq++
	m.msgs[src.name][y.seq] = y
	return y.seq
}

// The test: rapid draws a configuration, then a sequence of steps; after
// each, engine and model must agree on every count and every answer.

func TestEngineMatchesModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := QueueConfig{
			VisibilityTimeout: 5 * time.Second,
			MaxDeliveries:     rapid.IntRange(1, 4).Draw(rt, "maxDeliveries"),
			Backoff:           Backoff{Kind: BackoffFixed, Delay: 3 * time.Second, Jitter: -1},
			MaxMessages:       int64(rapid.SampledFrom([]int{0, 4, 8, 20}).Draw(rt, "maxMessages")),
			Overflow:          Overflow(rapid.IntRange(0, 1).Draw(rt, "overflow")),
			DeadLetterExpired: rapid.Bool().Draw(rt, "deadLetterExpired"),
			DedupWindow:       30 * time.Second,
			SessionWindow:     20 * time.Second,
			MaxDedupIDs:       int64(rapid.SampledFrom([]int{0, 0, 1, 2}).Draw(rt, "maxDedupIDs")),
			SettledWindow:     time.Duration(rapid.SampledFrom([]int{0, 0, 10, -1}).Draw(rt, "settledWindow")) * time.Second,
			MaxSettled:        int64(rapid.SampledFrom([]int{0, 0, 3, 8}).Draw(rt, "maxSettled")),
		}.WithDefaults("src")
		h := newHarness(rt)
		h.mustCreateQueue("src", cfg)
		m := &model{now: h.now, nextSeq: 1, dedup: map[string]mDedup{}, sessions: map[string]*mSession{},
			queues: map[string]*mQueue{
				"src":     {name: "src", cfg: cfg, id: 1},
				"src.dlq": {name: "src.dlq", cfg: DeadLetterQueueConfig().WithDefaults("src.dlq"), id: 2},
			},
			msgs: map[string]map[uint64]*mMsg{"src": {}, "src.dlq": {}},
		}
		held := map[string][]Delivered{} // receipts handed out, some now stale
		bodyN := 0
		next := map[string]uint64{} // per session: the next number a producer would use

		rt.Repeat(map[string]func(*rapid.T){
			"publish": func(rt *rapid.T) {
				n := rapid.IntRange(1, 4).Draw(rt, "n")
				ps := make([]mPub, n)
				msgs := make([]PubMsg, n)
				for i := range ps {
					p := mPub{
						prio: uint8(rapid.IntRange(0, 3).Draw(rt, "prio")) * 3,
						ttl:  time.Duration(rapid.SampledFrom([]int{0, 0, 2, 7, 20}).Draw(rt, "ttl")) * time.Second,
						id:   rapid.SampledFrom([]string{"", "", "", "i1", "i2", "i3"}).Draw(rt, "id"),
						key:  rapid.SampledFrom([]string{"", "", "a", "b"}).Draw(rt, "key"),
					}
					if p.key == "" {
						p.delay = time.Duration(rapid.SampledFrom([]int{0, 0, 1, 4}).Draw(rt, "delay")) * time.Second
					}
					bodyN++
					p.body = fmt.Sprint("m", bodyN)
					ps[i] = p
					msgs[i] = PubMsg{Prio: p.prio, ID: p.id, Key: p.key, Body: []byte(p.body)}
					if p.delay > 0 {
						msgs[i].DeliverAt = h.now + int64(p.delay)
					}
					if p.ttl > 0 {
						msgs[i].ExpireAt = h.now + int64(p.ttl)
					}
				}
				var sess Session
				if id := rapid.SampledFrom([]string{"", "", "s1", "s2"}).Draw(rt, "session"); id != "" {
					sess.ID = id
					// Mostly in order; sometimes a retry, a gap, or a start afresh.
					switch rapid.IntRange(0, 5).Draw(rt, "sessionStep") {
					case 0:
						sess.First = uint64(rapid.IntRange(1, int(next[id])+1).Draw(rt, "retryAt"))
					case 1:
						sess.First = next[id] + 2
					case 2:
						sess.First = 1
					default:
						sess.First = next[id] + 1
					}
				}
				want, wantErr := m.publish("src", sess, ps)
				got, err := h.publishIn("src", sess, msgs...)
				if !errors.Is(err, wantErr) || (wantErr == nil && !slices.Equal(got, want)) {
					rt.Fatalf("publish in %+v: got %v, %v; model %v, %v", sess, got, err, want, wantErr)
				}
				if err == nil && sess.ID != "" {
					next[sess.ID] = max(next[sess.ID], sess.First+uint64(n)-1)
					if s := m.sessionFor(sess.ID); s != nil {
						next[sess.ID] = s.hw
					}
				}
			},
			"receive": func(rt *rapid.T) {
				q := rapid.SampledFrom([]string{"src", "src", "src.dlq"}).Draw(rt, "queue")
				max := rapid.IntRange(1, 5).Draw(rt, "max")
				lease := time.Duration(rapid.SampledFrom([]int{0, 2, 9}).Draw(rt, "lease")) * time.Second
				want := m.receive(q, max, int64(lease))
				got := h.receive(q, max, lease)
				if len(got) != len(want) {
					rt.Fatalf("receive %s: got %v, model %d messages", q, seqs(got), len(want))
				}
				for i, x := range want {
					g := got[i]
					if g.Seq != x.seq || g.Deliv != x.deliv || g.Counted != x.counted() || g.Prio != x.prio || g.Deadline != x.deadline ||
						h.body(g) != x.body || g.LastErr != x.lastErr {
						rt.Fatalf("receive %s #%d: got %+v (%s), model %+v", q, i, g, h.body(g), *x)
					}
					if (g.Dead == nil) != (x.dead == nil) || g.Dead != nil && *g.Dead != *x.dead {
						rt.Fatalf("receive %s #%d: dead info %+v, model %+v", q, i, g.Dead, x.dead)
					}
				}
				held[q] = append(held[q], got...)
			},
			"ack":    func(rt *rapid.T) { settle(rt, h, m, held, RecAck) },
			"nack":   func(rt *rapid.T) { settle(rt, h, m, held, RecNack) },
			"extend": func(rt *rapid.T) { settle(rt, h, m, held, RecExtend) },
			"return": func(rt *rapid.T) { settle(rt, h, m, held, RecReturn) },
			"tx":     func(rt *rapid.T) { txStep(rt, h, m, held, &bodyN) },
			"shutdown": func(rt *rapid.T) {
				if rapid.IntRange(0, 4).Draw(rt, "rarely") != 0 {
					return
				}
				m.endLeases(func(x *mMsg) { m.giveBack(x, m.now) })
				h.commit(h.e.ReturnLeases(h.now))
			},
			"crash": func(rt *rapid.T) {
				if rapid.IntRange(0, 4).Draw(rt, "rarely") != 0 {
					return
				}
				m.endLeases(func(x *mMsg) { m.retry(x, 0, m.now) })
				h.commit(h.e.ReleaseLeases(h.now))
			},
			"advance": func(rt *rapid.T) {
				d := time.Duration(rapid.IntRange(0, 6000).Draw(rt, "ms")) * time.Millisecond
				h.advance(d)
				m.advance(h.now)
			},
			"redrive": func(rt *rapid.T) {
				n := int64(rapid.IntRange(0, 3).Draw(rt, "n"))
				want := m.redrive("src.dlq", n)
				r, got, err := h.e.Redrive(h.now, "src.dlq", n)
				h.commit(r)
				if err != nil || got != want {
					rt.Fatalf("redrive %d: got %d, %v; model %d", n, got, err, want)
				}
			},
			"purge": func(rt *rapid.T) {
				if rapid.IntRange(0, 9).Draw(rt, "rarely") != 0 {
					return
				}
				want := int64(m.depth("src"))
				m.purge("src")
				r, got, err := h.e.PurgeQueue(h.now, "src")
				h.commit(r)
				if err != nil || got != want {
					rt.Fatalf("purge: got %d, %v; model %d", got, err, want)
				}
			},
			"cancel":       func(rt *rapid.T) { cancelStep(rt, h, m) },
			"redrive-seqs": func(rt *rapid.T) { redriveSeqsStep(rt, h, m) },
			"":             func(rt *rapid.T) { compare(rt, h, m); compareLookups(rt, h, m) },
		})
		h.check()
	})
}

// settle acks, nacks or extends a few held receipts, fresh or stale.
func settle(rt *rapid.T, h *harness, m *model, held map[string][]Delivered, typ RecordType) {
	q := rapid.SampledFrom([]string{"src", "src", "src.dlq"}).Draw(rt, "queue")
	if len(held[q]) == 0 {
		return
	}
	n := rapid.IntRange(1, min(3, len(held[q]))).Draw(rt, "n")
	var items []Item
	var want []error
	for range n {
		d := held[q][rapid.IntRange(0, len(held[q])-1).Draw(rt, "which")]
		it := Item{Seq: d.Seq, Deliv: d.Deliv}
		x := m.leased(q, d.Seq, d.Deliv)
		if x == nil {
			want = append(want, ErrStaleReceipt)
			items = append(items, it)
			continue
		}
		want = append(want, nil)
		switch typ {
		case RecAck:
			delete(m.msgs[q], x.seq)
			m.settle(q, x.seq, mSettled{state: stAcked}, m.now)
		case RecNack:
			it.Value = int64(rapid.SampledFrom([]int{-1, 0, 2}).Draw(rt, "delay")) * int64(time.Second)
			if it.Value == 0 && q != "src" { // the model knows only src's fixed back-off
				it.Value = int64(2 * time.Second)
			}
			it.Err = rapid.SampledFrom([]string{"", "e1", "e2"}).Draw(rt, "err")
			if it.Err != "" {
				x.lastErr = it.Err
			}
			delay := it.Value
			switch {
			case delay == 0:
				delay = int64(m.queues[q].cfg.Backoff.Delay)
			case delay < 0:
				delay = 0
			}
			m.retry(x, delay, m.now)
		case RecExtend:
			it.Value = int64(rapid.IntRange(1, 8).Draw(rt, "s")) * int64(time.Second)
			x.deadline = m.now + it.Value
		case RecReturn:
			m.giveBack(x, m.now)
		}
		items = append(items, it)
	}
	got := h.items(typ, q, items...)
	for i := range want {
		if !errors.Is(got[i], want[i]) || (want[i] == nil) != (got[i] == nil) {
			rt.Fatalf("%v %s item %d (seq %d): got %v, model %v", typ, q, i, items[i].Seq, got[i], want[i])
		}
	}
}

// compare checks every count and the delivery order of both queues.
func compare(rt *rapid.T, h *harness, m *model) {
	checkInvariants(rt, h.e)
	for _, q := range []string{"src", "src.dlq"} {
		s := h.stats(q)
		var ready, delayed, leased int64
		for _, x := range m.msgs[q] {
			switch x.state {
			case mReady:
				ready++
			case mDelayed:
				delayed++
			case mLeased:
				leased++
			}
		}
		if s.Ready != ready || s.Delayed != delayed || s.InFlight != leased {
			rt.Fatalf("%s: engine ready/delayed/in flight %d/%d/%d, model %d/%d/%d",
				q, s.Ready, s.Delayed, s.InFlight, ready, delayed, leased)
		}
		peek, _ := h.e.Peek(q, 1000)
		var want []uint64
		for _, x := range m.deliverable(q) {
			want = append(want, x.seq)
		}
		if got := seqs(peek); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			rt.Fatalf("%s: engine delivery order %v, model %v", q, got, want)
		}
	}
	if s := h.stats("src"); s.DedupIDs != int64(len(m.dedup)) {
		rt.Fatalf("message IDs remembered: engine %d, model %d", s.DedupIDs, len(m.dedup))
	}
	if h.e.NextSeq() != m.nextSeq {
		rt.Fatalf("next sequence: engine %d, model %d", h.e.NextSeq(), m.nextSeq)
	}
}
