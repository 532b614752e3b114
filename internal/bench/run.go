package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// Run is the general load generator behind `chute bench run` (issue 11),
// in the manner of `nats bench` and RabbitMQ's PerfTest: producers (each a
// client.Producer) and consumers (each a client.Consumer) against any
// chute.API, paced or flat out, with priority and delay mixes and topic
// fan-out, measuring confirm latency, end-to-end latency, the lateness of
// delayed messages and priority inversions.
//
// How a run goes, in order:
//
//  1. Create the queues (or the topic and its subscriptions) under
//     RunConfig.Name; they must not exist, so that nothing left over is
//     counted. They are deleted at the end unless Keep.
//  2. Start the consumers, then the producers. A producer takes a slot of
//     its window (at most Window messages unconfirmed), then the next
//     message number (stopping at Count), then waits for its due time
//     (Pacer) if Rate is set, stamps the body and publishes; its confirm
//     waiter records the confirm latency when the message's future is
//     done and gives the slot back.
//  3. Publishing stops at Count or after Duration (or at the first
//     publish or receive error, or when ctx ends). Each producer is then
//     closed, which flushes what it holds (within Drain).
//  4. The consumers drain: the run ends when they have consumed every
//     confirmed message (times the subscriptions of a topic), or Drain
//     after the last publish (plus the longest delay of the mix) has
//     passed, or ctx ends.
//
// One process and one clock measure both ends: the body starts with the
// send time (nanoseconds since the run's epoch, little-endian), then the
// message's delay, then its number:
//
//	[0:8) sent  [8:16) delay (only with a delay mix)  [16:24) number (only
//	when inversions are tracked)
//
// so that a consumer computes end-to-end latency (received − sent, for
// messages without delay) and lateness (received − (sent + delay), for
// delayed ones) without any table. Every goroutine of a run is started
// and waited for by Run.

// ErrBadConfig marks a RunConfig (or a mix) that cannot run; the command
// line maps it to a usage error.
var ErrBadConfig = errors.New("bad bench run configuration")

// AckMode says how consumers acknowledge.
type AckMode string

// Ack modes. There is no "none": an unacked message comes back when its
// lease ends, so a run without acks measures redeliveries, not a broker.
const (
	AckBatch AckMode = "batch" // one Ack per received batch (the default)
	AckEach  AckMode = "each"  // one Ack call per message
)

// RunConfig describes a run; see Run. Zero values take the defaults given.
type RunConfig struct {
	// Target and Sync only label the result (where the broker is, its
	// sync policy); Run does not read them.
	Target, Sync string
	// Name names the run's queues: Name itself for one queue, Name-0 …
	// Name-(K-1) for Queues K, or a topic Name with subscriptions Name-s0 …
	// Default "bench-run".
	Name string
	// Producers (default 1) each own a client.Producer; Consumers (0
	// publishes only) each loop Receive + Ack on one queue.
	Producers, Consumers int
	// Size is the body size in bytes; default 256. It must hold the stamps
	// described in Run (8 bytes, 16 with delays, 24 with inversions).
	Size int
	// Count is the total of messages to publish (0: no limit); Duration
	// bounds the publishing time (0: no limit). At least one must be set.
	Count    int64
	Duration time.Duration
	// Rate is messages per second across all producers; 0 publishes flat
	// out. See Pacer.
	Rate float64
	// Window is the most messages each producer keeps unconfirmed, a
	// semaphore on messages (default 1000); the producer's own window
	// (ProducerOptions.MaxInFlight batches of BatchSize) may bind first.
	Window int
	// Batch is ProducerOptions.BatchSize (0: the producer's default).
	Batch int
	// Linger is ProducerOptions.Linger (0: a batch goes as soon as a slot
	// of the producer's window is free).
	Linger time.Duration
	// Prefetch is each consumer's prefetch (client.ConsumerOptions: the
	// credit its Consume stream keeps granted) and the most one Receive
	// takes; default 1000.
	Prefetch int
	// Ack is the ack mode; default AckBatch.
	Ack AckMode
	// Priorities and Delays are the weighted mixes each message draws its
	// priority and delay from; empty means all 0.
	Priorities Mix[int]
	Delays     Mix[time.Duration]
	// Topic publishes to a topic with Subscriptions (default 1)
	// subscriptions; consumers are spread over the subscriptions.
	Topic         bool
	Subscriptions int
	// Queues spreads producers and consumers round-robin over this many
	// queues (default 1); not with Topic.
	Queues int
	// Drain caps the wait for consumers after publishing stops (plus the
	// longest delay); default 10 s. It also bounds the producers' flush.
	Drain time.Duration
	// Keep leaves the queues (or topic) in place after the run.
	Keep bool
	// Progress, if set, gets a progress line once a second; InPlace
	// rewrites it in place (a terminal) instead of one line each.
	Progress io.Writer
	InPlace  bool
	// Clock times the pacing, the duration and the drain cap, and stamps
	// the messages; default the system clock.
	Clock chute.Clock
	// TrackMax bounds the messages tracked for inversions (a 40-byte
	// record each); default 1,000,000.
	TrackMax int
}

// withDefaults fills the zero fields with the defaults documented on
// RunConfig (Consumers stays 0: a publish-only run).
func (c RunConfig) withDefaults() RunConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Producers, 1)
	def(&c.Size, 256)
	def(&c.Window, 1000)
	def(&c.Prefetch, 1000)
	def(&c.Subscriptions, 1)
	def(&c.Queues, 1)
	def(&c.TrackMax, 1_000_000)
	if c.Name == "" {
		c.Name = "bench-run"
	}
	if c.Ack == "" {
		c.Ack = AckBatch
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = chute.SystemClock()
	}
	return c
}

// trackInversions: inversions need two priorities or more to exist.
func (c RunConfig) trackInversions() bool { return len(c.Priorities.Values) > 1 }

// minSize is the body that holds the stamps this run needs.
func (c RunConfig) minSize() int {
	switch {
	case c.trackInversions():
		return 24
	case maxDelay(c.Delays) > 0:
		return 16
	}
	return 8
}

// Validate reports what cannot run, wrapping ErrBadConfig.
func (c RunConfig) Validate() error {
	c = c.withDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Producers < 1 || c.Consumers < 0:
		return bad("want producers ≥ 1 and consumers ≥ 0")
	case c.Count < 0 || c.Duration < 0 || c.Count == 0 && c.Duration == 0:
		return bad("want a count or a duration")
	case c.Size < c.minSize() || c.Size > 64<<20:
		return bad("size %d: the body must hold %d bytes of stamps (send time, delay, number) and at most 64 MiB", c.Size, c.minSize())
	case c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return bad("rate %v: want ≥ 0", c.Rate)
	case c.Window < 1 || c.Prefetch < 1 || c.Batch < 0 || c.Linger < 0:
		return bad("want window ≥ 1, prefetch ≥ 1, batch ≥ 0 and linger ≥ 0")
	case c.Ack != AckBatch && c.Ack != AckEach:
		return bad("ack %q: want batch or each", c.Ack)
	case c.Queues < 1 || c.Subscriptions < 1:
		return bad("want queues ≥ 1 and subscriptions ≥ 1")
	case c.Topic && c.Queues > 1:
		return bad("a topic run spreads over its subscriptions: leave queues at 1")
	case !c.Topic && c.Subscriptions > 1:
		return bad("subscriptions need a topic")
	case c.Consumers > 0 && c.Consumers < len(c.queueNames()):
		return bad("%d consumers for %d queues: every queue needs a consumer, or the run never drains", c.Consumers, len(c.queueNames()))
	}
	if err := chute.ValidateName(c.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return nil
}

// queueNames are the queues consumers read (a topic's subscriptions).
func (c RunConfig) queueNames() []string {
	switch {
	case c.Topic:
		return names(c.Name+"-s", c.Subscriptions)
	case c.Queues == 1:
		return []string{c.Name}
	}
	return names(c.Name+"-", c.Queues)
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// Pacer hands out send times for a paced run: message i is due at
// start + i/rate, across all producers. A producer that falls behind sends
// at once, but never catches up by more than one tick: slots due more than
// a tick ago are given up (and counted in Skipped) rather than sent in a
// burst, which would measure the broker under a load nobody asked for.
// It takes the time as an argument, so a test drives it without a clock.
type Pacer struct {
	rate  float64
	start time.Time
	tick  time.Duration

	mu      sync.Mutex
	next    int64 // the next slot; guarded by mu
	skipped int64 // slots given up; guarded by mu
}

// PaceTick is the catch-up bound of a Pacer: at 2,000/s, a burst of at
// most 20 messages after a stall, while short scheduling hiccups (a few
// ms on a loaded machine) lose no slot.
const PaceTick = 10 * time.Millisecond

// NewPacer paces rate messages per second from start.
func NewPacer(rate float64, start time.Time, tick time.Duration) *Pacer {
	return &Pacer{rate: rate, start: start, tick: tick}
}

// Next reserves the next slot, given the time now, and returns when it is
// due (maybe in the past: send at once).
func (p *Pacer) Next(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The first slot due no earlier than now − tick.
	earliest := int64(math.Ceil(now.Add(-p.tick).Sub(p.start).Seconds() * p.rate))
	if earliest > p.next {
		p.skipped += earliest - p.next
		p.next = earliest
	}
	due := p.start.Add(time.Duration(math.Round(float64(p.next) * float64(time.Second) / p.rate)))
	p.next++
	return due
}

// Skipped is how many slots were given up because the producers fell
// behind by more than a tick.
func (p *Pacer) Skipped() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.skipped
}

// Body stamp offsets (see Run).
const (
	stampSent  = 0
	stampDelay = 8
	stampIndex = 16
)

// runner is one run's shared state. Counters are atomics, updated by the
// producers, their confirm waiters and the consumers; the histograms lock
// themselves.
type runner struct {
	cfg    RunConfig
	api    chute.API
	epoch  time.Time // the run's time zero: stamps are ns since it
	pacer  *Pacer    // nil when flat out
	queues []string  // what consumers read
	fanout int64     // copies consumed per confirmed message
	dlqs   []string  // dead-letter queues the run created (teardown deletes them)
	stop   context.CancelFunc

	// Counters, updated by any goroutine of the run.
	issued, published, confirmed atomic.Int64
	consumed, redelivered, acked atomic.Int64
	early                        atomic.Int64 // delayed messages received before due
	pubErrs, recvErrs, ackErrs   atomic.Int64
	lastPub, lastConf, lastCons  atomic.Int64 // ns since epoch
	target                       atomic.Int64 // consumed count that ends the drain; -1 while publishing

	confirmLat, e2eLat, lateness *Hist // lock themselves

	drained     chan struct{} // closed (under drainedOnce) when consumed reaches target
	drainedOnce sync.Once
	errOnce     sync.Once
	firstErr    error // written once under errOnce; read after the goroutines end

	// Inversion tracking. Each ready[i] is written only by the confirm
	// waiter of message i, each events[c] only by consumer c; both are read
	// once every goroutine has ended.
	ready  []int64       // per tracked message: ns since epoch it was confirmed (0: not, or delayed)
	events [][]recvEvent // per consumer: first deliveries of tracked messages
}

// recvEvent is one tracked first delivery: message index, queue, its
// priority, and when the Receive that returned it started and returned.
type recvEvent struct {
	index  int64
	t0, t1 int64
	queue  int32
	prio   int8
}

func (r *runner) since() int64 { return int64(r.cfg.Clock.Now().Sub(r.epoch)) }

// fail counts err against counter, and, for the first fatal error, keeps
// it and stops the run.
func (r *runner) fail(counter *atomic.Int64, err error, fatal bool) {
	counter.Add(1)
	if fatal {
		r.errOnce.Do(func() { r.firstErr = err; r.stop() })
	}
}

// storeMax raises v to t if t is later.
func storeMax(v *atomic.Int64, t int64) {
	for {
		cur := v.Load()
		if t <= cur || v.CompareAndSwap(cur, t) {
			return
		}
	}
}

// checkDrained closes drained once every expected copy is consumed.
func (r *runner) checkDrained() {
	if t := r.target.Load(); t >= 0 && r.consumed.Load() >= t {
		r.drainedOnce.Do(func() { close(r.drained) })
	}
}

// Run runs one load against api and returns what it measured. The error
// is the first publish or receive failure (which stops the run), ctx's, or
// a setup failure (then the result is nil); a result comes with the first
// two.
func Run(ctx context.Context, api chute.API, cfg RunConfig) (*RunResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := newRunner(api, cfg)
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer r.teardown(ctx)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.stop = stop
	pubCtx, stopPub := context.WithCancel(runCtx)
	defer stopPub()
	consCtx, stopCons := context.WithCancel(runCtx)
	defer stopCons()

	r.epoch = cfg.Clock.Now()
	if cfg.Rate > 0 {
		r.pacer = NewPacer(cfg.Rate, r.epoch, PaceTick)
	}
	var consumers, producers, progress sync.WaitGroup
	for c := range cfg.Consumers {
		consumers.Go(func() { r.consume(consCtx, c) })
	}
	for p := range cfg.Producers {
		producers.Go(func() { r.produce(pubCtx, runCtx, p) })
	}
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		progress.Go(func() { r.progress(progressDone) })
	}
	published := make(chan struct{})
	go func() { producers.Wait(); close(published) }() // ends with the producers; waitPublished waits for it

	r.waitPublished(runCtx, published, stopPub)
	pubEnd := r.since()
	r.waitDrained(runCtx)
	stopCons()
	consumers.Wait()
	close(progressDone)
	progress.Wait()

	res := r.result(pubEnd)
	err := r.firstErr
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

// newRunner prepares a run's state (cfg has its defaults).
func newRunner(api chute.API, cfg RunConfig) *runner {
	r := &runner{cfg: cfg, api: api, queues: cfg.queueNames(), fanout: 1, drained: make(chan struct{}),
		confirmLat: NewHist(), e2eLat: NewHist(), lateness: NewHist(), events: make([][]recvEvent, cfg.Consumers)}
	if cfg.Topic {
		r.fanout = int64(cfg.Subscriptions)
	}
	r.target.Store(-1)
	if cfg.trackInversions() {
		n := int64(cfg.TrackMax)
		if cfg.Count > 0 {
			n = min(n, cfg.Count)
		}
		r.ready = make([]int64, n)
	}
	return r
}

// waitPublished returns once publishing has ended — at Count (the
// producers return), after Duration, or when the run stops — and every
// producer has flushed and returned (published is closed).
func (r *runner) waitPublished(runCtx context.Context, published <-chan struct{}, stopPub context.CancelFunc) {
	var durC <-chan time.Time
	if r.cfg.Duration > 0 {
		t := r.cfg.Clock.NewTimer(r.cfg.Duration)
		defer t.Stop()
		durC = t.C()
	}
	select {
	case <-published:
	case <-durC:
	case <-runCtx.Done():
	}
	stopPub()
	<-published
}

// waitDrained waits until the consumers have consumed every confirmed
// copy, the drain cap (Drain plus the longest delay) has passed, or the
// run stops.
func (r *runner) waitDrained(runCtx context.Context) {
	if r.cfg.Consumers == 0 {
		return
	}
	r.target.Store(r.confirmed.Load() * r.fanout)
	r.checkDrained()
	t := r.cfg.Clock.NewTimer(r.cfg.Drain + maxDelay(r.cfg.Delays))
	defer t.Stop()
	select {
	case <-r.drained:
	case <-t.C():
	case <-runCtx.Done():
	}
}

// setup creates the run's queues, or its topic and subscriptions, and
// notes the dead-letter queues created with them (those that did not
// exist before) for teardown.
func (r *runner) setup(ctx context.Context) error {
	for _, q := range r.queues {
		dlq := q + chute.DeadLetterSuffix
		if _, err := r.api.QueueStats(ctx, dlq); errors.Is(err, chute.ErrQueueNotFound) {
			r.dlqs = append(r.dlqs, dlq)
		}
	}
	if r.cfg.Topic {
		if err := r.api.CreateTopic(ctx, r.cfg.Name, chute.TopicConfig{}); err != nil {
			return fmt.Errorf("create topic %s: %w", r.cfg.Name, err)
		}
		for _, q := range r.queues {
			if err := r.api.Subscribe(ctx, r.cfg.Name, q, chute.SubscriptionConfig{}); err != nil {
				return fmt.Errorf("subscribe %s: %w", q, err)
			}
		}
		return nil
	}
	for _, q := range r.queues {
		if err := r.api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			return fmt.Errorf("create queue %s: %w", q, err)
		}
	}
	return nil
}

// teardown deletes what setup created, even after ctx ended (within 30
// s), best effort: the run is over, and a failure only leaves a queue
// behind.
func (r *runner) teardown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if r.cfg.Topic {
		for _, q := range r.queues {
			_ = r.api.Unsubscribe(ctx, r.cfg.Name, q)
		}
		_ = r.api.DeleteTopic(ctx, r.cfg.Name)
	} else {
		for _, q := range r.queues {
			_ = r.api.DeleteQueue(ctx, q)
		}
	}
	for _, q := range r.dlqs {
		_ = r.api.DeleteQueue(ctx, q)
	}
}

// pending is a published message awaiting its confirmation.
type pending struct {
	f           *client.Future
	sent, index int64
	delay       time.Duration
}

// produce runs producer w until publishing stops, then flushes its
// Producer (bounded by Drain and runCtx) and waits for its confirm waiter.
func (r *runner) produce(ctx, runCtx context.Context, w int) {
	target := r.cfg.Name
	if !r.cfg.Topic {
		target = r.queues[w%len(r.queues)]
	}
	p := client.NewProducer(r.api, target, client.ProducerOptions{BatchSize: r.cfg.Batch, Linger: r.cfg.Linger})
	window := make(chan struct{}, r.cfg.Window)
	pend := make(chan pending, r.cfg.Window)
	var waiter sync.WaitGroup
	waiter.Go(func() { r.confirmAll(runCtx, pend, window) })
	rng := rand.New(rand.NewPCG(uint64(w), uint64(r.epoch.UnixNano())))
	for r.publishOne(ctx, p, rng, window, pend) {
	}
	close(pend)
	flushCtx, cancel := context.WithTimeout(runCtx, r.cfg.Drain)
	defer cancel()
	_ = p.Close(flushCtx) // messages it could not flush fail their futures: confirmAll counts them
	waiter.Wait()
}

// publishOne publishes the next message; false when publishing is over.
func (r *runner) publishOne(ctx context.Context, p *client.Producer, rng *rand.Rand, window chan struct{}, pend chan<- pending) bool {
	select {
	case window <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	index := r.issued.Add(1) - 1
	if r.cfg.Count > 0 && index >= r.cfg.Count {
		<-window
		return false
	}
	if r.pacer != nil && !r.waitUntil(ctx, r.pacer.Next(r.cfg.Clock.Now())) {
		<-window
		return false
	}
	msg := chute.Message{Body: make([]byte, r.cfg.Size), Priority: r.cfg.Priorities.pick(rng), Delay: r.cfg.Delays.pick(rng)}
	if len(msg.Body) >= stampDelay+8 {
		binary.LittleEndian.PutUint64(msg.Body[stampDelay:], uint64(msg.Delay))
	}
	if len(msg.Body) >= stampIndex+8 {
		binary.LittleEndian.PutUint64(msg.Body[stampIndex:], uint64(index))
	}
	sent := r.since()
	binary.LittleEndian.PutUint64(msg.Body[stampSent:], uint64(sent))
	f, err := p.Publish(ctx, msg)
	if err != nil {
		<-window
		if ctx.Err() == nil {
			r.fail(&r.pubErrs, fmt.Errorf("publish: %w", err), true)
		}
		return false
	}
	r.published.Add(1)
	storeMax(&r.lastPub, sent)
	pend <- pending{f: f, sent: sent, index: index, delay: msg.Delay} // never blocks: window bounds it
	return true
}

// waitUntil waits for the clock to reach due; false if ctx ended first.
func (r *runner) waitUntil(ctx context.Context, due time.Time) bool {
	d := due.Sub(r.cfg.Clock.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := r.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// confirmAll waits for each pending message in publish order (a Producer
// completes its batches in order, so a later future is rarely done before
// an earlier one; when it is, its latency is read a little late), records
// its confirm latency and frees its window slot. Once the run is stopped
// (runCtx ended: interrupted, or an earlier failure), the messages the
// producer's flush gives up on are not failures of their own: they stay
// unconfirmed (published − confirmed).
func (r *runner) confirmAll(runCtx context.Context, pend <-chan pending, window <-chan struct{}) {
	for pd := range pend {
		<-pd.f.Done()
		now := r.since()
		<-window
		if _, err := pd.f.Result(); err != nil {
			if runCtx.Err() == nil {
				r.fail(&r.pubErrs, fmt.Errorf("publish: %w", err), true)
			}
			continue
		}
		r.confirmLat.Record(time.Duration(now - pd.sent))
		r.confirmed.Add(1)
		storeMax(&r.lastConf, now)
		if pd.delay == 0 && pd.index < int64(len(r.ready)) {
			r.ready[pd.index] = now
		}
	}
}

// consume receives from queue c mod queues and acks until ctx ends,
// through a client.Consumer — over the network a Consume stream, which
// pushes deliveries while its prefetch lasts — with the acks sent from a
// goroutine of their own, so that the loop goes on receiving while an ack
// waits for the server (a Receive-then-Ack loop held every message that
// arrived meanwhile for the ack's round trip, and measured it as latency).
func (r *runner) consume(ctx context.Context, c int) {
	qi := c % len(r.queues)
	q := r.queues[qi]
	cons := client.NewConsumer(r.api, q, client.ConsumerOptions{Prefetch: r.cfg.Prefetch})
	acks := make(chan []string, 64)
	var acker sync.WaitGroup
	acker.Go(func() {
		// Every batch received is acked, also those received just before
		// the run ended (ctx): acked counts them. Each ack is bounded.
		// The batches received while an ack was out go in one call: an
		// ack is a round trip (through a cluster, a commit of its own),
		// and an acker a batch behind at a time filled this channel and
		// held the loop's next receive back, which the run counted as
		// end-to-end latency.
		for rs := range acks {
			rs = CoalesceAcks(acks, rs)
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			r.ack(actx, cons, rs)
			cancel()
		}
	})
	defer func() {
		close(acks)
		acker.Wait()
		cons.Close()
	}()
	var e2e, late []time.Duration
	var receipts []string
	for {
		t0 := r.since()
		ds, err := cons.Receive(ctx, r.cfg.Prefetch)
		t1 := r.since()
		if err != nil {
			if ctx.Err() == nil {
				r.fail(&r.recvErrs, fmt.Errorf("receive %s: %w", q, err), true)
			}
			return
		}
		e2e, late = e2e[:0], late[:0]
		receipts = make([]string, 0, len(ds)) // the ack goroutine's from here
		var first int64
		for _, d := range ds {
			receipts = append(receipts, d.Receipt)
			if d.Deliveries > 1 {
				r.redelivered.Add(1)
				continue
			}
			first++
			sent, delay, index := stamps(d.Body)
			switch {
			case delay == 0:
				e2e = append(e2e, time.Duration(t1-sent))
			case t1 < sent+int64(delay):
				r.early.Add(1)
				late = append(late, 0)
			default:
				late = append(late, time.Duration(t1-sent)-delay)
			}
			if index >= 0 && index < int64(len(r.ready)) {
				r.events[c] = append(r.events[c], recvEvent{index: index, t0: t0, t1: t1, queue: int32(qi), prio: int8(d.Priority)})
			}
		}
		r.e2eLat.RecordAll(e2e)
		r.lateness.RecordAll(late)
		if len(receipts) > 0 {
			acks <- receipts // the acker ends only when acks is closed: this never waits for ever
		}
		if first > 0 {
			storeMax(&r.lastCons, t1)
			r.consumed.Add(first)
			r.checkDrained()
		}
	}
}

// stamps reads a body's send time, delay and index (-1 if absent).
func stamps(b []byte) (sent int64, delay time.Duration, index int64) {
	index = -1
	if len(b) >= stampSent+8 {
		sent = int64(binary.LittleEndian.Uint64(b[stampSent:]))
	}
	if len(b) >= stampDelay+8 {
		delay = time.Duration(binary.LittleEndian.Uint64(b[stampDelay:]))
	}
	if len(b) >= stampIndex+8 {
		index = int64(binary.LittleEndian.Uint64(b[stampIndex:]))
	}
	return sent, delay, index
}

// ack settles a received batch in one call, or one call per message. A
// failed ack is counted, not fatal: its message comes back when its lease
// ends and is counted as redelivered.
func (r *runner) ack(ctx context.Context, cons *client.Consumer, receipts []string) {
	if len(receipts) == 0 {
		return
	}
	calls := [][]string{receipts}
	if r.cfg.Ack == AckEach {
		calls = calls[:0]
		for i := range receipts {
			calls = append(calls, receipts[i:i+1])
		}
	}
	for _, rs := range calls {
		if err := cons.Ack(ctx, rs...); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.fail(&r.ackErrs, err, false)
			continue
		}
		r.acked.Add(int64(len(rs)))
	}
}

// CoalesceAcks appends to rs every batch of receipts waiting in acks: an
// acker that sends them in one call keeps up with a consumer whatever an
// ack's round trip (the comparison's chute adapter uses it too).
func CoalesceAcks(acks <-chan []string, rs []string) []string {
	for {
		select {
		case more, ok := <-acks:
			if !ok {
				return rs
			}
			rs = append(rs, more...)
		default:
			return rs
		}
	}
}

// progress prints a line a second until done is closed.
func (r *runner) progress(done <-chan struct{}) {
	var lastPub, lastCons int64
	for {
		t := r.cfg.Clock.NewTimer(time.Second)
		select {
		case <-done:
			t.Stop()
			if r.cfg.InPlace {
				fmt.Fprint(r.cfg.Progress, "\r\033[K")
			}
			return
		case <-t.C():
		}
		pub, cons := r.published.Load(), r.consumed.Load()
		line := fmt.Sprintf("%6.1fs  published %d (%d/s)  in flight %d  consumed %d (%d/s)  p99 confirm %.2f ms  e2e %.2f ms",
			time.Duration(r.since()).Seconds(), pub, pub-lastPub, pub-r.confirmed.Load(), cons, cons-lastCons,
			r.confirmLat.Summary().P99, r.e2eLat.Summary().P99)
		lastPub, lastCons = pub, cons
		if r.cfg.InPlace {
			fmt.Fprint(r.cfg.Progress, "\r\033[K"+line)
		} else {
			fmt.Fprintln(r.cfg.Progress, line)
		}
	}
}
