package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
)

// The dashboard's live feed and history (docs/dashboard.md, "The feed").
//
// One hub per server samples the broker's queues, topics and alerts:
// every second while at least one feed is open, else every HistoryStep
// (for history). A tick, in order:
//
//  1. read Queues and Topics from the API and the consumer and producer
//     counts from the activity tracker (outside the hub's lock);
//  2. for every queue, compute its rates from the difference of its
//     cumulative totals with the previous sample, encode its row (JSON)
//     into a scratch buffer and compare it with the row it sent last: a
//     row that did not change costs no allocation and is not sent;
//  3. queues seen last tick but not this one are "removed";
//  4. every HistoryStep, append r, d, f, pr, ar, w99 to each queue's ring;
//  5. encode the tick's event once — a delta, and a snapshot only if a
//     subscriber needs one (a new feed, or one that fell behind) — and
//     hand the same bytes to every subscriber.
//
// A subscriber has a channel of feedBacklog events. When it is full (the
// client reads too slowly), the hub empties it and puts a fresh snapshot
// in, so a slow client costs bounded memory and gets consistent state.
// A new feed wakes the hub, which ticks at once so that the first
// snapshot is current.

// feedBacklog is how many events a subscriber may be behind before it
// is sent a snapshot instead.
const feedBacklog = 8

// feedInterval is the hub's tick while a feed is open.
const feedInterval = time.Second

// feedPing is the silence after which a feed sends ": ping".
const feedPing = 15 * time.Second

// minRateGap is the shortest time between two samples a rate is computed
// over; an earlier tick (a feed that just opened) keeps the last rates.
const minRateGap = 500 * time.Millisecond

// resolvedAlertsShown is how long a resolved alert stays in the feed.
const resolvedAlertsShown = time.Hour

// histFields is the figures kept per history sample: r, d, f, pr, ar, w99.
const histFields = 6

type hub struct {
	s       *Server
	step    time.Duration // history step
	histLen int
	wake    chan struct{} // a new subscriber: tick now
	running atomic.Bool   // the loop runs (Serve was called)

	mu     sync.Mutex // serialises ticks; guards everything below
	subs   map[*feedSub]struct{}
	queues map[string]*queueState
	topics map[string]*topicState
	gen    uint64 // ticks so far
	// History: histT is a ring of the sample times (Unix ms), histN the
	// samples taken so far; sample i is at histT[i%histLen].
	histT    []int64
	histN    int
	lastHist time.Time
	// The last tick's queues in the API's order, and its other parts
	// encoded: what a snapshot is made of.
	cur                                []*queueState
	topicsJSON, alertsJSON, totalsJSON []byte
	// The last tick's changed rows and removed queues: a delta. buf is
	// scratch for one row.
	changed []*queueState
	removed []string
	buf     []byte
}

// queueState is what the hub keeps per queue.
type queueState struct {
	name       string
	gen        uint64 // the tick that last saw it
	dlqOf      uint64 // the tick in which some queue named it as its dead-letter queue
	row        []byte // its row as last encoded
	enq, del   int64  // baseline of the rates: cumulative totals at time at
	ack        int64
	at         time.Time
	pr, dr, ar float64
	histStart  int       // the history sample its history begins at
	hist       []float32 // histLen × histFields, a ring like hub.histT
}

type topicState struct {
	gen uint64
	pub int64
	at  time.Time
	pr  float64
}

// feedSub is one open feed.
type feedSub struct {
	ch    chan []byte // SSE frames; only the hub sends
	fresh bool        // guarded by hub.mu: its next event must be a snapshot
}

func newHub(s *Server, o DashboardOptions) *hub {
	return &hub{s: s, step: o.HistoryStep, histLen: o.HistoryLen, wake: make(chan struct{}, 1),
		subs: map[*feedSub]struct{}{}, queues: map[string]*queueState{}, topics: map[string]*topicState{},
		histT: make([]int64, o.HistoryLen)}
}

// loop ticks until Shutdown: every second while a feed is open, else
// every history step, and at once when a feed opens.
//
// Ticks are spaced from the start of one to the start of the next, so
// that a feed gets an event every second even when a tick takes a while
// (5,000 queues: tens of milliseconds).
func (h *hub) loop() {
	start := h.s.now()
	h.tick()
	for {
		interval := h.step
		if h.subscribers() > 0 {
			interval = feedInterval
		}
		wait := start.Add(interval).Sub(h.s.now())
		t := h.s.opts.Clock.NewTimer(max(wait, 0))
		select {
		case <-t.C():
		case <-h.wake:
			t.Stop()
			if !h.anyFresh() {
				// The feed that woke us was served by the tick that was
				// under way when it opened: a tick now would send its
				// subscribers an extra delta out of step with the clock.
				continue
			}
		case <-h.s.stop.Done():
			t.Stop()
			return
		}
		start = h.s.now()
		h.tick()
	}
}

func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// anyFresh reports whether a subscriber still waits for its snapshot.
func (h *hub) anyFresh() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if sub.fresh {
			return true
		}
	}
	return false
}

func (h *hub) subscribe() *feedSub {
	sub := &feedSub{ch: make(chan []byte, feedBacklog), fresh: true}
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return sub
}

func (h *hub) unsubscribe(sub *feedSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// TickDashboard samples the broker for the dashboard now, as the hub does
// every tick, and sends the open feeds their event (benchmarks and tests
// drive it step by step). It does nothing when the dashboard is off.
func (s *Server) TickDashboard() {
	if s.dash != nil {
		s.dash.hub.tick()
	}
}

// tick takes one sample and sends it to the subscribers.
func (h *hub) tick() {
	ctx, cancel := context.WithTimeout(h.s.stop, 10*time.Second)
	defer cancel()
	qs, err := h.s.api.Queues(ctx)
	if err != nil {
		h.s.log.Debug("dashboard: list queues", "err", err)
		return
	}
	ts, err := h.s.api.Topics(ctx)
	if err != nil {
		h.s.log.Debug("dashboard: list topics", "err", err)
		return
	}
	clients := h.s.activity.counts()
	firing, resolved, _ := h.s.Alerts()
	now := h.s.now()

	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.sampleQueuesLocked(qs, clients, now)
	h.encodePartsLocked(qs, ts, firing, resolved, now)
	if now.Sub(h.lastHist) >= h.step || h.histN == 0 {
		h.historyLocked(qs, now)
	}
	if len(h.subs) > 0 {
		h.sendLocked(now)
	}
}

// sampleQueuesLocked updates every queue's state and row, and collects
// the changed rows and the removed queues.
func (h *hub) sampleQueuesLocked(qs []chute.QueueStats, clients []QueueClients, now time.Time) {
	h.changed, h.removed = h.changed[:0], h.removed[:0]
	h.cur = h.cur[:0]
	for i := range qs {
		q := &qs[i]
		st := h.queues[q.Name]
		if st == nil {
			st = &queueState{name: q.Name, at: now, enq: q.Totals.Enqueued, del: q.Totals.Delivered, ack: q.Totals.Acked}
			h.queues[q.Name] = st
		}
		st.gen = h.gen
		h.cur = append(h.cur, st)
	}
	for i := range qs { // mark dead-letter queues, now that every state exists
		if dlq := h.queues[qs[i].Config.DeadLetterQueue]; dlq != nil && qs[i].Config.DeadLetterQueue != "" {
			dlq.dlqOf = h.gen
		}
	}
	ci := 0 // clients is sorted by queue name; qs need not be
	byName := len(clients) > 0 && !sortedByName(qs)
	var cmap map[string]QueueClients
	if byName {
		cmap = make(map[string]QueueClients, len(clients))
		for _, c := range clients {
			cmap[c.Queue] = c
		}
	}
	for i := range qs {
		q, st := &qs[i], h.cur[i]
		st.rates(q.Totals, now)
		var qc QueueClients
		if byName {
			qc = cmap[q.Name]
		} else {
			for ci < len(clients) && clients[ci].Queue < q.Name {
				ci++
			}
			if ci < len(clients) && clients[ci].Queue == q.Name {
				qc = clients[ci]
			}
		}
		h.buf = appendQueueRow(h.buf[:0], q, st, qc)
		if !bytes.Equal(h.buf, st.row) {
			st.row = append(st.row[:0], h.buf...)
			h.changed = append(h.changed, st)
		}
	}
	for name, st := range h.queues {
		if st.gen != h.gen {
			delete(h.queues, name)
			h.removed = append(h.removed, name)
		}
	}
}

func sortedByName(qs []chute.QueueStats) bool {
	for i := 1; i < len(qs); i++ {
		if qs[i-1].Name >= qs[i].Name {
			return false
		}
	}
	return true
}

// rates updates the queue's rates from its totals, when at least
// minRateGap has passed since the baseline.
func (st *queueState) rates(t chute.QueueTotals, now time.Time) {
	dt := now.Sub(st.at)
	if dt < minRateGap {
		return
	}
	sec := dt.Seconds()
	st.pr = perSecond(t.Enqueued-st.enq, sec)
	st.dr = perSecond(t.Delivered-st.del, sec)
	st.ar = perSecond(t.Acked-st.ack, sec)
	st.enq, st.del, st.ack, st.at = t.Enqueued, t.Delivered, t.Acked, now
}

func perSecond(n int64, sec float64) float64 {
	if n <= 0 {
		return 0 // none, or the queue was made again
	}
	return float64(n) / sec
}

// appendQueueRow appends q's row (docs/dashboard.md, Q).
func appendQueueRow(b []byte, q *chute.QueueStats, st *queueState, qc QueueClients) []byte {
	b = append(b, `{"n":`...)
	b = appendJSONString(b, q.Name)
	b = append(b, `,"tp":`...)
	b = appendJSONString(b, q.Topic)
	b = append(b, `,"dl":`...)
	b = strconv.AppendBool(b, st.dlqOf == st.gen || q.DeadLetters > 0)
	b = append(b, `,"dlq":`...)
	b = appendJSONString(b, q.Config.DeadLetterQueue)
	b = appendInt(b, `,"r":`, q.Ready)
	b = appendInt(b, `,"d":`, q.Delayed)
	b = appendInt(b, `,"f":`, q.InFlight)
	b = appendInt(b, `,"b":`, q.Bytes())
	b = appendInt(b, `,"age":`, q.OldestAge.Milliseconds())
	b = appendFloat(b, `,"pr":`, st.pr)
	b = appendFloat(b, `,"dr":`, st.dr)
	b = appendFloat(b, `,"ar":`, st.ar)
	b = appendInt(b, `,"c":`, int64(qc.Consumers))
	b = appendInt(b, `,"p":`, int64(qc.Producers))
	b = appendInt(b, `,"dead":`, q.DeadLetters)
	b = appendFloat(b, `,"w50":`, ms(q.Latency.Wait.P50))
	b = appendFloat(b, `,"w99":`, ms(q.Latency.Wait.P99))
	b = appendFloat(b, `,"pc50":`, ms(q.Latency.Processing.P50))
	b = appendFloat(b, `,"pc99":`, ms(q.Latency.Processing.P99))
	b = append(b, `,"pause":`...)
	b = strconv.AppendBool(b, q.Paused)
	b = append(b, `,"brk":"`...)
	b = append(b, q.Breaker.String()...)
	b = appendInt(b, `","pub":`, q.Totals.Enqueued)
	b = appendInt(b, `,"ack":`, q.Totals.Acked)
	b = appendInt(b, `,"dlt":`, q.Totals.DeadLettered)
	return append(b, '}')
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func appendInt(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendFloat appends key and x rounded to two decimals (0 for NaN and
// the infinities, which JSON lacks).
func appendFloat(b []byte, key string, x float64) []byte {
	b = append(b, key...)
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, math.Round(x*100)/100, 'f', -1, 64)
}

// appendJSONString appends s as a JSON string; names are usually plain
// ASCII, which is copied as is.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Feed shapes of topics, alerts and totals (docs/dashboard.md: T, A,
// TOT). There are few topics and alerts: encoding/json is enough.
type feedTopicJSON struct {
	N    string             `json:"n"`
	Subs []feedSubscription `json:"subs"`
	Pub  int64              `json:"pub"`
	Unr  int64              `json:"unr"`
	PR   float64            `json:"pr"`
}

type feedSubscription struct {
	N string            `json:"n"`
	F map[string]string `json:"f,omitempty"`
}

type feedAlert struct {
	Rule    string  `json:"rule"`
	Q       string  `json:"q"`
	Sev     string  `json:"sev"`
	St      string  `json:"st"`
	V       float64 `json:"v"`
	Cur     float64 `json:"cur"`
	Th      float64 `json:"th"`
	Since   int64   `json:"since"`
	Start   int64   `json:"start"`
	Res     int64   `json:"res"`
	Summary string  `json:"sum"`
}

type feedTotals struct {
	Queues int     `json:"queues"`
	Topics int     `json:"topics"`
	R      int64   `json:"r"`
	D      int64   `json:"d"`
	F      int64   `json:"f"`
	PR     float64 `json:"pr"`
	DR     float64 `json:"dr"`
	AR     float64 `json:"ar"`
	Firing int     `json:"firing"`
}

// encodePartsLocked encodes the topics, alerts and totals of the tick.
func (h *hub) encodePartsLocked(qs []chute.QueueStats, ts []chute.TopicStats, firing, resolved []alerts.Alert, now time.Time) {
	filters := map[string]map[string]string{}
	tot := feedTotals{Queues: len(qs), Topics: len(ts), Firing: len(firing)}
	for i := range qs {
		q := &qs[i]
		if q.Topic != "" && len(q.Filter) > 0 {
			filters[q.Name] = q.Filter
		}
		tot.R += q.Ready
		tot.D += q.Delayed
		tot.F += q.InFlight
		st := h.cur[i]
		tot.PR += st.pr
		tot.DR += st.dr
		tot.AR += st.ar
	}
	round := func(x float64) float64 { return math.Round(x*100) / 100 }
	tot.PR, tot.DR, tot.AR = round(tot.PR), round(tot.DR), round(tot.AR)
	topics := make([]feedTopicJSON, len(ts))
	for i, t := range ts {
		st := h.topics[t.Name]
		if st == nil {
			st = &topicState{pub: t.Published, at: now}
			h.topics[t.Name] = st
		}
		st.gen = h.gen
		if dt := now.Sub(st.at); dt >= minRateGap {
			st.pr, st.pub, st.at = perSecond(t.Published-st.pub, dt.Seconds()), t.Published, now
		}
		ft := feedTopicJSON{N: t.Name, Subs: make([]feedSubscription, len(t.Subscriptions)),
			Pub: t.Published, Unr: t.Unrouted, PR: round(st.pr)}
		for j, sub := range t.Subscriptions {
			ft.Subs[j] = feedSubscription{N: sub, F: filters[sub]}
		}
		topics[i] = ft
	}
	for name, st := range h.topics {
		if st.gen != h.gen {
			delete(h.topics, name)
		}
	}
	as := make([]feedAlert, 0, len(firing)+len(resolved))
	for _, a := range firing {
		as = append(as, alertOf(a))
	}
	for _, a := range resolved {
		if now.Sub(a.Resolved) <= resolvedAlertsShown {
			as = append(as, alertOf(a))
		}
	}
	h.topicsJSON = mustJSON(topics)
	h.alertsJSON = mustJSON(as)
	h.totalsJSON = mustJSON(tot)
}

func alertOf(a alerts.Alert) feedAlert {
	unixMS := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	clean := func(x float64) float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0
		}
		return x
	}
	return feedAlert{Rule: a.Rule, Q: a.Queue, Sev: string(a.Severity), St: string(a.Status),
		V: clean(a.Value), Cur: clean(a.Current), Th: clean(a.Threshold),
		Since: unixMS(a.Since), Start: unixMS(a.Started), Res: unixMS(a.Resolved), Summary: a.Summary}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values, cleaned of NaN
	}
	return b
}

// historyLocked appends one history sample of every queue.
func (h *hub) historyLocked(qs []chute.QueueStats, now time.Time) {
	idx := h.histN % h.histLen
	h.histT[idx] = now.UnixMilli()
	for i := range qs {
		q, st := &qs[i], h.cur[i]
		if st.hist == nil {
			st.hist = make([]float32, h.histLen*histFields)
			st.histStart = h.histN
		}
		v := st.hist[idx*histFields : (idx+1)*histFields]
		v[0], v[1], v[2] = float32(q.Ready), float32(q.Delayed), float32(q.InFlight)
		v[3], v[4], v[5] = float32(st.pr), float32(st.ar), float32(ms(q.Latency.Wait.P99))
	}
	h.histN++
	h.lastHist = now
}

// sendLocked encodes the tick's delta (and a snapshot if one is needed)
// once, and hands it to every subscriber.
func (h *hub) sendLocked(now time.Time) {
	var delta, snap []byte
	for sub := range h.subs {
		if !sub.fresh {
			if delta == nil {
				delta = h.deltaLocked(now)
			}
			select {
			case sub.ch <- delta:
				continue
			default: // feedBacklog behind: replace the backlog by a snapshot
			}
		}
		drain(sub.ch)
		if snap == nil {
			snap = h.snapshotLocked(now)
		}
		sub.ch <- snap
		sub.fresh = false
	}
}

func drain(ch chan []byte) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// deltaLocked is the tick's delta event.
func (h *hub) deltaLocked(now time.Time) []byte {
	n := 256 + len(h.topicsJSON) + len(h.alertsJSON) + len(h.totalsJSON)
	for _, st := range h.changed {
		n += len(st.row) + 1
	}
	for _, name := range h.removed {
		n += len(name) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, "event: delta\ndata: "...)
	b = appendInt(b, `{"t":`, now.UnixMilli())
	b = append(b, `,"queues":[`...)
	for i, st := range h.changed {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, st.row...)
	}
	b = append(b, `],"removed":[`...)
	for i, name := range h.removed {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
	}
	b = append(b, ']')
	return h.appendPartsLocked(b)
}

// snapshotLocked is the snapshot event of the current state.
func (h *hub) snapshotLocked(now time.Time) []byte {
	n := 256 + len(h.topicsJSON) + len(h.alertsJSON) + len(h.totalsJSON)
	for _, st := range h.cur {
		n += len(st.row) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, "event: snapshot\ndata: "...)
	b = appendInt(b, `{"t":`, now.UnixMilli())
	b = append(b, `,"queues":[`...)
	for i, st := range h.cur {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, st.row...)
	}
	b = append(b, ']')
	return h.appendPartsLocked(b)
}

func (h *hub) appendPartsLocked(b []byte) []byte {
	b = append(b, `,"topics":`...)
	b = append(b, h.topicsJSON...)
	b = append(b, `,"alerts":`...)
	b = append(b, h.alertsJSON...)
	b = append(b, `,"totals":`...)
	b = append(b, h.totalsJSON...)
	return append(b, "}\n\n"...)
}

// dashFeed serves GET /ui/api/feed: server-sent events until the client
// goes or the server shuts down.
func (s *Server) dashFeed(w http.ResponseWriter, r *http.Request) {
	if !s.dashRead(w, r) {
		return
	}
	h := s.dash.hub
	if !h.running.Load() {
		writeJSON(w, http.StatusServiceUnavailable, jsonError{"the dashboard feed runs only under Serve"})
		return
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	sub := h.subscribe()
	defer h.unsubscribe(sub)
	ping := s.opts.Clock.NewTimer(feedPing) // re-armed after every frame
	defer func() { ping.Stop() }()
	for {
		var frame []byte
		select {
		case frame = <-sub.ch:
		case <-ping.C():
			frame = pingFrame
		case <-r.Context().Done():
			return
		case <-s.stop.Done():
			return
		}
		_ = rc.SetWriteDeadline(time.Now().Add(feedWriteTimeout))
		if _, err := w.Write(frame); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		ping.Stop()
		ping = s.opts.Clock.NewTimer(feedPing)
	}
}

var pingFrame = []byte(": ping\n\n")

// feedWriteTimeout bounds one event's write to a client that stopped
// reading (real time: it guards the connection, not the feed's content).
const feedWriteTimeout = 30 * time.Second

// historyJSON is the answer of GET /ui/api/history.
type historyJSON struct {
	Step int64     `json:"step"`
	T    []int64   `json:"t"`
	R    []float32 `json:"r"`
	D    []float32 `json:"d"`
	F    []float32 `json:"f"`
	PR   []float32 `json:"pr"`
	AR   []float32 `json:"ar"`
	W99  []float32 `json:"w99"`
}

// dashHistory serves GET /ui/api/history?queue=NAME.
func (s *Server) dashHistory(w http.ResponseWriter, r *http.Request) {
	if !s.dashRead(w, r) {
		return
	}
	name := r.URL.Query().Get("queue")
	out, ok := s.dash.hub.history(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, jsonError{"queue " + strconv.Quote(name) + " not found"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// history returns a queue's history, oldest first.
func (h *hub) history(name string) (historyJSON, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.queues[name]
	if st == nil {
		return historyJSON{}, false
	}
	out := historyJSON{Step: h.step.Milliseconds()}
	from := max(st.histStart, h.histN-h.histLen)
	if st.hist == nil {
		from = h.histN
	}
	n := h.histN - from
	out.T = make([]int64, n)
	cols := [histFields][]float32{}
	for k := range cols {
		cols[k] = make([]float32, n)
	}
	for i := range n {
		idx := (from + i) % h.histLen
		out.T[i] = h.histT[idx]
		for k := range cols {
			v := st.hist[idx*histFields+k]
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				v = 0
			}
			cols[k][i] = v
		}
	}
	out.R, out.D, out.F, out.PR, out.AR, out.W99 = cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
	return out, true
}
