package bench

import (
	"math"
	"sort"
	"time"
)

// RunResult is what a run measured; `chute bench run --json` prints it as
// is, so its JSON field names are stable (scripts and the comparison in
// bench/ read them).
type RunResult struct {
	Config RunEcho `json:"config"`
	// ElapsedS runs from the start to the last first delivery (to the end
	// of publishing when nothing was consumed), in seconds.
	ElapsedS float64 `json:"elapsed_s"`
	// Published counts messages handed to a producer; Confirmed those
	// confirmed durable; Expected is Confirmed times the copies each is
	// delivered as (a topic's subscriptions); Consumed counts first
	// deliveries, Redelivered later ones; Acked the acks that succeeded.
	Published   int64 `json:"published"`
	Confirmed   int64 `json:"confirmed"`
	Expected    int64 `json:"expected"`
	Consumed    int64 `json:"consumed"`
	Redelivered int64 `json:"redelivered"`
	Acked       int64 `json:"acked"`
	// RateSkipped counts paced slots given up because the producers fell
	// behind by more than a tick (Pacer): the rate asked for was not met.
	RateSkipped int64      `json:"rate_skipped"`
	Throughput  Throughput `json:"throughput"`
	// Latency: Confirm is publish call → confirmed; EndToEnd is publish
	// call → received, for messages without delay; Lateness is received −
	// (publish call + delay), for delayed ones (Early counts those received
	// before they were due, recorded as 0).
	Latency struct {
		Confirm  Percentiles `json:"confirm"`
		EndToEnd Percentiles `json:"end_to_end"`
		Lateness Percentiles `json:"lateness"`
	} `json:"latency_ms"`
	Early      int64      `json:"early"`
	Inversions Inversions `json:"inversions"`
	Errors     RunErrors  `json:"errors"`
}

// RunEcho is the configuration of a run, as reported.
type RunEcho struct {
	Target        string             `json:"target"`
	Sync          string             `json:"sync,omitempty"`
	Name          string             `json:"name"`
	Producers     int                `json:"producers"`
	Consumers     int                `json:"consumers"`
	Size          int                `json:"size"`
	Count         int64              `json:"count"`
	DurationS     float64            `json:"duration_s"`
	Rate          float64            `json:"rate"`
	Window        int                `json:"window"`
	Batch         int                `json:"batch"`
	Prefetch      int                `json:"prefetch"`
	Ack           AckMode            `json:"ack"`
	PriorityMix   Mix[int]           `json:"priority_mix"`
	DelayMix      Mix[time.Duration] `json:"delay_mix"`
	Topic         bool               `json:"topic"`
	Subscriptions int                `json:"subscriptions"`
	Queues        int                `json:"queues"`
}

// Throughput is messages per second: published and confirmed over the time
// to the last publish call and the last confirmation, consumed (first
// deliveries) over the time to the last one.
type Throughput struct {
	Published float64 `json:"published_per_s"`
	Confirmed float64 `json:"confirmed_per_s"`
	Consumed  float64 `json:"consumed_per_s"`
}

// Inversions are priority inversions (see runner.inversions); Checked is
// how many first deliveries were looked at (0 when the priority mix has
// one level, or with no consumers).
type Inversions struct {
	Count   int64 `json:"count"`
	Checked int64 `json:"checked"`
}

// RunErrors counts failed calls. A publish or receive failure stops the
// run (First is the first of them); a failed ack does not (its message
// comes back later).
type RunErrors struct {
	Publish int64  `json:"publish"`
	Receive int64  `json:"receive"`
	Ack     int64  `json:"ack"`
	First   string `json:"first,omitempty"`
}

// result gathers the figures once every goroutine has ended; pubEnd is
// when publishing stopped (ns since the epoch).
func (r *runner) result(pubEnd int64) *RunResult {
	c := r.cfg
	res := &RunResult{
		Config: RunEcho{Target: c.Target, Sync: c.Sync, Name: c.Name, Producers: c.Producers, Consumers: c.Consumers,
			Size: c.Size, Count: c.Count, DurationS: c.Duration.Seconds(), Rate: c.Rate, Window: c.Window, Batch: c.Batch,
			Prefetch: c.Prefetch, Ack: c.Ack, PriorityMix: c.Priorities, DelayMix: c.Delays, Topic: c.Topic,
			Subscriptions: c.Subscriptions, Queues: c.Queues},
		Published: r.published.Load(), Confirmed: r.confirmed.Load(), Consumed: r.consumed.Load(),
		Redelivered: r.redelivered.Load(), Acked: r.acked.Load(), Early: r.early.Load(),
		Errors: RunErrors{Publish: r.pubErrs.Load(), Receive: r.recvErrs.Load(), Ack: r.ackErrs.Load()},
	}
	if !c.Topic {
		res.Config.Subscriptions = 0
	}
	if c.Consumers > 0 {
		res.Expected = res.Confirmed * r.fanout
	}
	if r.pacer != nil {
		res.RateSkipped = r.pacer.Skipped()
	}
	if r.firstErr != nil {
		res.Errors.First = r.firstErr.Error()
	}
	perS := func(n, until int64) float64 {
		if n == 0 || until <= 0 {
			return 0
		}
		return float64(n) / time.Duration(until).Seconds()
	}
	res.Throughput = Throughput{Published: perS(res.Published, r.lastPub.Load()), Confirmed: perS(res.Confirmed, r.lastConf.Load()),
		Consumed: perS(res.Consumed, r.lastCons.Load())}
	res.ElapsedS = time.Duration(max(r.lastCons.Load(), pubEnd)).Seconds()
	res.Latency.Confirm = r.confirmLat.Summary()
	res.Latency.EndToEnd = r.e2eLat.Summary()
	res.Latency.Lateness = r.lateness.Summary()
	if c.trackInversions() {
		res.Inversions.Count, res.Inversions.Checked = r.inversions()
	}
	return res
}

// inversions counts priority inversions among tracked first deliveries.
//
// A delivery B (priority p, returned by a Receive that started at t0 and
// returned at t1) is an inversion when, on the same queue, some message A
// of a higher priority was ready before t0 — confirmed to its producer
// before t0, and published without delay — and was first received only by
// a Receive that started after t1. A was then ready, and not leased,
// during the whole call that returned B instead: the broker chose a lower
// priority over a higher one it had. The rule errs towards not counting:
// confirm times are observed after the broker applied the publish,
// concurrent calls that overlap prove nothing, and messages never received
// in the run, or delayed, are not candidates for A. Each B counts once,
// however many As it jumped.
func (r *runner) inversions() (count, checked int64) {
	byQueue := map[int32][]recvEvent{}
	for _, es := range r.events {
		for _, e := range es {
			byQueue[e.queue] = append(byQueue[e.queue], e)
		}
	}
	for _, es := range byQueue {
		checked += int64(len(es))
		count += inversionsIn(es, r.ready)
	}
	return count, checked
}

// inversionsIn counts inversions among one queue's deliveries: a sweep
// over the deliveries by start time, adding the candidates (by ready time)
// ready before each start, keeping per priority the latest start of a
// candidate's receive.
func inversionsIn(es []recvEvent, ready []int64) int64 {
	cands := make([]recvEvent, 0, len(es))
	for _, e := range es {
		if ready[e.index] > 0 {
			cands = append(cands, e)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return ready[cands[i].index] < ready[cands[j].index] })
	bs := append([]recvEvent(nil), es...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].t0 < bs[j].t0 })
	var latest [10]int64 // per priority: the latest t0 of a candidate ready so far
	for i := range latest {
		latest[i] = math.MinInt64
	}
	var n int64
	next := 0
	for _, b := range bs {
		for ; next < len(cands) && ready[cands[next].index] < b.t0; next++ {
			a := cands[next]
			latest[a.prio] = max(latest[a.prio], a.t0)
		}
		for p := int(b.prio) + 1; p < len(latest); p++ {
			if latest[p] > b.t1 {
				n++
				break
			}
		}
	}
	return n
}
