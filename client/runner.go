package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/chutemq/chute"
)

// Handler processes one message: nil acks it, an error nacks it (with the
// runner's NackDelay, or the queue's back-off), the error text kept as the
// message's last error.
type Handler func(ctx context.Context, d chute.Delivery) error

// BatchHandler processes a batch: nil acks every message, an error nacks
// them all.
type BatchHandler func(ctx context.Context, ds []chute.Delivery) error

// RunnerOptions tune a Runner; the zero value works.
type RunnerOptions struct {
	// Concurrency is how many handlers run at once; default 4.
	Concurrency int
	// Prefetch is how many messages the runner holds (running or waiting
	// for a handler); default 2 × Concurrency (× BatchSize for batches).
	Prefetch int
	// Lease is each delivery's lease; 0 means the queue's visibility
	// timeout. While a handler runs its lease is extended every half lease,
	// unless NoAutoExtend.
	Lease        time.Duration
	NoAutoExtend bool
	// NackDelay is the delay before a failed message is redelivered; 0
	// means the queue's back-off.
	NackDelay time.Duration
	// BatchSize and BatchWait shape the batches of a BatchHandler: up to
	// BatchSize messages (default 10), or what arrived within BatchWait
	// (default 100 ms).
	BatchSize int
	BatchWait time.Duration
	// Acks, nacks and extensions are sent together: up to SettleBatch
	// (default 128) or what SettleLinger gathers (default 1 ms).
	SettleBatch  int
	SettleLinger time.Duration
	// BreakerThreshold consecutive handler failures open the circuit
	// breaker (default 5; negative: never): receiving pauses for
	// BreakerCooldown (default 5 s), then one probe message is tried; if it
	// succeeds receiving resumes, else the breaker opens again. Messages
	// held when it opens are returned to the queue at once, unstarted
	// (chute.Nack.Unstarted: the delivery does not count towards the
	// queue's max deliveries).
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// Receive failures (server down or restarting) are retried with
	// exponential back-off from RetryDelay (default 100 ms) to
	// RetryMaxDelay (default 5 s); the stream is reopened.
	RetryDelay    time.Duration
	RetryMaxDelay time.Duration
	// Clock is the time source; default the system clock.
	Clock chute.Clock
	// Logger gets failures of receives and settlements; default discarded.
	Logger *slog.Logger
}

func (o RunnerOptions) withDefaults(batch bool) RunnerOptions {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10
	}
	if o.BatchWait <= 0 {
		o.BatchWait = 100 * time.Millisecond
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 2 * o.Concurrency
		if batch {
			o.Prefetch *= o.BatchSize
		}
	}
	if o.SettleBatch <= 0 {
		o.SettleBatch = 128
	}
	if o.SettleLinger <= 0 {
		o.SettleLinger = time.Millisecond
	}
	if o.BreakerThreshold == 0 {
		o.BreakerThreshold = 5
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 5 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 100 * time.Millisecond
	}
	if o.RetryMaxDelay <= 0 {
		o.RetryMaxDelay = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = chute.SystemClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// RunnerStats counts what a Runner did. Returned counts the messages it
// handed back unstarted (on Stop, or while its breaker was open).
type RunnerStats struct {
	Received, Succeeded, Failed, Extended, Returned int64
}

// Runner consumes a queue with a handler: it keeps up to Prefetch messages
// on hand (over the network, with a Consume stream's credit), runs
// Concurrency handlers, extends leases while they run, acks successes and
// nacks failures in batches, pauses on a run of failures (circuit
// breaker), and reconnects with back-off. It works on any chute.API.
type Runner struct {
	api     chute.API
	queue   string
	handler Handler
	batchH  BatchHandler
	txH     TxHandler // acks and publishes in one transaction (tx.go)
	opts    RunnerOptions
	breaker *breaker
	trace   tracing // consumer spans, children of the messages' trace context (tracing.go)

	received, succeeded, failed, extended, returned atomic.Int64
	stopping                                        atomic.Bool // Run's ctx ended: start no more handlers
}

// NewRunner returns a runner calling h for each message of queue.
func NewRunner(api chute.API, queue string, h Handler, opts RunnerOptions) *Runner {
	o := opts.withDefaults(false)
	return &Runner{api: api, queue: queue, handler: h, opts: o,
		breaker: newBreaker(max(o.BreakerThreshold, 0), o.BreakerCooldown, o.Clock), trace: newTracing("process", queue, trace.SpanKindConsumer)}
}

// NewBatchRunner returns a runner calling h with batches of messages.
func NewBatchRunner(api chute.API, queue string, h BatchHandler, opts RunnerOptions) *Runner {
	o := opts.withDefaults(true)
	return &Runner{api: api, queue: queue, batchH: h, opts: o,
		breaker: newBreaker(max(o.BreakerThreshold, 0), o.BreakerCooldown, o.Clock), trace: newTracing("process", queue, trace.SpanKindConsumer)}
}

// Breaker returns the circuit breaker's state.
func (r *Runner) Breaker() BreakerState { return r.breaker.current() }

// Stats returns the runner's counters.
func (r *Runner) Stats() RunnerStats {
	return RunnerStats{Received: r.received.Load(), Succeeded: r.succeeded.Load(), Failed: r.failed.Load(),
		Extended: r.extended.Load(), Returned: r.returned.Load()}
}

// Run consumes until ctx ends. It then stops receiving, returns the
// messages no handler has started to the queue (unstarted: those
// deliveries do not count towards the queue's max deliveries), lets
// running handlers finish (their context is not cancelled by ctx), sends
// the last acks and returns nil. It returns early only for an error that retrying cannot
// mend (the queue does not exist, the token is refused).
func (r *Runner) Run(ctx context.Context) error {
	var src source
	// A tx handler's commits settle outside the Consume stream, which
	// would hold their receipts until it ends: it polls instead.
	if c, ok := r.api.(*Client); ok && r.txH == nil {
		src = newStreamSource(c, r.queue, r.opts.Lease, r.logf)
	} else {
		src = &pollSource{api: r.api, queue: r.queue, lease: r.opts.Lease}
	}
	st := newSettler(src, r.opts, r.logf, &r.extended)
	work := make(chan chute.Delivery, r.opts.Prefetch)
	tokens := make(chan struct{}, r.opts.Prefetch) // one per message on hand
	x := newExtender(r, st, r.opts.Concurrency)
	quit := make(chan struct{})
	go x.run(quit)
	var workers sync.WaitGroup
	for w := range r.opts.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work(w, work, tokens, st, x)
		}()
	}
	err := r.fetchLoop(ctx, src, work, tokens, st)
	r.stopping.Store(true)
	close(work)
	workers.Wait()
	close(quit)
	<-x.done
	r.handBack(st, src.drain()) // received, never fetched
	st.close()
	src.close()
	return err
}

func (r *Runner) logf(msg string, args ...any) { r.opts.Logger.Warn(msg, args...) }

// fetchLoop takes messages while there is room (tokens) and the breaker
// allows, until ctx ends.
func (r *Runner) fetchLoop(ctx context.Context, src source, work chan<- chute.Delivery, tokens chan struct{}, st *settler) error {
	delay := r.opts.RetryDelay
	for {
		// Wait for room: for half the prefetch (so that messages are asked
		// for, and sent, in batches rather than one by one), or for one when
		// prefetch is not above concurrency.
		want := max(1, min(r.opts.Prefetch/2, r.opts.Prefetch-r.opts.Concurrency))
		room := 0
		for room < want {
			select {
			case tokens <- struct{}{}:
				room++
			case <-ctx.Done():
				for range room {
					<-tokens
				}
				return nil
			}
		}
		for room < r.opts.Prefetch {
			select {
			case tokens <- struct{}{}:
				room++
				continue
			default:
			}
			break
		}
		n, changed, wait := r.breaker.allowance(room)
		if n == 0 {
			for range room {
				<-tokens
			}
			r.handBack(st, src.drain()) // do not sit on them while paused
			if err := r.pause(ctx, changed, wait); err != nil {
				return nil
			}
			continue
		}
		for range room - n {
			<-tokens
		}
		ds, err := src.fetch(ctx, n)
		if err != nil {
			for range n {
				<-tokens
			}
			if ctx.Err() != nil {
				return nil
			}
			if permanent(err) {
				return err
			}
			r.logf("receive failed; retrying", "queue", r.queue, "err", err, "in", delay)
			if r.pause(ctx, nil, delay) != nil {
				return nil
			}
			delay = min(delay*2, r.opts.RetryMaxDelay)
			continue
		}
		delay = r.opts.RetryDelay
		r.breaker.taken(len(ds))
		r.received.Add(int64(len(ds)))
		for range n - len(ds) {
			<-tokens
		}
		for _, d := range ds {
			work <- d
		}
	}
}

// pause waits for the breaker to change, for wait, or for ctx.
func (r *Runner) pause(ctx context.Context, changed <-chan struct{}, wait time.Duration) error {
	var tc <-chan time.Time
	if wait > 0 {
		t := r.opts.Clock.NewTimer(wait)
		defer t.Stop()
		tc = t.C()
	}
	select {
	case <-changed:
	case <-tc:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// permanent errors end Run: retrying would not help.
func permanent(err error) bool {
	return errors.Is(err, chute.ErrQueueNotFound) || IsUnauthenticated(err) || errors.Is(err, chute.ErrClosed)
}

// work runs handlers on messages from work until it is closed. Messages
// taken while the breaker is open, or after Run's ctx ended, are returned
// to the queue at once instead.
func (r *Runner) work(w int, work <-chan chute.Delivery, tokens <-chan struct{}, st *settler, x *extender) {
	ctx := context.Background() // handlers finish even when Run is asked to stop
	for d := range work {
		if r.stopping.Load() || r.breaker.current() == BreakerOpen {
			r.handBack(st, []chute.Delivery{d})
			<-tokens
			continue
		}
		batch := []chute.Delivery{d}
		if r.batchH != nil {
			batch = r.gather(batch, work)
		}
		x.start(w, batch)
		var err error
		if r.batchH != nil {
			hctx, span := r.trace.startBatch(ctx, batch)
			err = r.safeBatch(hctx, batch)
			endProcess(span, err)
		} else {
			hctx, span := r.trace.startProcess(ctx, &d, r.opts.Clock.Now())
			err = r.safeHandle(hctx, d)
			endProcess(span, err)
		}
		x.stop(w)
		for _, d := range batch {
			if err == nil {
				if r.txH == nil { // a tx handler's commit acked it
					st.ack(d.Receipt)
				}
			} else {
				st.nack(chute.Nack{Receipt: d.Receipt, Delay: r.opts.NackDelay, Error: truncate(err.Error(), 1024)})
			}
			<-tokens
		}
		if err == nil {
			r.succeeded.Add(int64(len(batch)))
		} else {
			r.failed.Add(int64(len(batch)))
		}
		r.breaker.result(err == nil)
	}
}

// handBack returns deliveries no handler started: at once, and unstarted,
// so that they do not use up the queue's max deliveries.
func (r *Runner) handBack(st *settler, ds []chute.Delivery) {
	for _, d := range ds {
		st.nack(chute.Nack{Receipt: d.Receipt, Delay: -1, Unstarted: true})
		r.returned.Add(1)
	}
}

// gather fills a batch up to BatchSize, waiting at most BatchWait.
func (r *Runner) gather(batch []chute.Delivery, work <-chan chute.Delivery) []chute.Delivery {
	t := r.opts.Clock.NewTimer(r.opts.BatchWait)
	defer t.Stop()
	for len(batch) < r.opts.BatchSize {
		select {
		case d, ok := <-work:
			if !ok {
				return batch
			}
			batch = append(batch, d)
		case <-t.C():
			return batch
		}
	}
	return batch
}

func (r *Runner) safeHandle(ctx context.Context, d chute.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	if r.txH != nil {
		return r.handleTx(ctx, d)
	}
	return r.handler(ctx, d)
}

func (r *Runner) safeBatch(ctx context.Context, ds []chute.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return r.batchH(ctx, ds)
}

// extender extends the leases of messages while their handlers run. One
// goroutine looks at every worker's slot a few times per lease (rather than
// a timer per message): a message whose handler has run for half its lease
// gets it extended by a lease.
type extender struct {
	r     *Runner
	st    *settler
	slots []extendSlot
	tick  atomic.Int64 // how often to look, in ns: a quarter of the shortest lease seen
	kick  chan struct{}
	done  chan struct{}
}

type extendSlot struct {
	mu    sync.Mutex
	batch []chute.Delivery // nil when the worker is idle
	lease time.Duration
	due   time.Time // when to extend next
}

func newExtender(r *Runner, st *settler, workers int) *extender {
	x := &extender{r: r, st: st, slots: make([]extendSlot, workers), kick: make(chan struct{}, 1), done: make(chan struct{})}
	x.tick.Store(int64(time.Second))
	return x
}

// start records that worker w runs a handler on batch.
func (x *extender) start(w int, batch []chute.Delivery) {
	if x.r.opts.NoAutoExtend || len(batch) == 0 {
		return
	}
	now := x.r.opts.Clock.Now()
	lease := x.r.opts.Lease
	if lease <= 0 {
		lease = batch[0].LeaseDeadline.Sub(now)
	}
	if lease <= 0 {
		return
	}
	sl := &x.slots[w]
	sl.mu.Lock()
	sl.batch, sl.lease, sl.due = batch, lease, now.Add(lease/2)
	sl.mu.Unlock()
	if t := int64(lease / 4); t < x.tick.Load() {
		x.tick.Store(t)
		select {
		case x.kick <- struct{}{}:
		default:
		}
	}
}

// stop records that worker w's handler returned.
func (x *extender) stop(w int) {
	sl := &x.slots[w]
	sl.mu.Lock()
	sl.batch = nil
	sl.mu.Unlock()
}

func (x *extender) run(quit <-chan struct{}) {
	defer close(x.done)
	for {
		t := x.r.opts.Clock.NewTimer(time.Duration(x.tick.Load()))
		select {
		case <-t.C():
		case <-x.kick:
			t.Stop()
			continue
		case <-quit:
			t.Stop()
			return
		}
		now := x.r.opts.Clock.Now()
		for i := range x.slots {
			sl := &x.slots[i]
			sl.mu.Lock()
			if sl.batch != nil && !now.Before(sl.due) {
				for _, d := range sl.batch {
					x.st.extend(d.Receipt, sl.lease)
				}
				sl.due = now.Add(sl.lease / 2)
			}
			sl.mu.Unlock()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// settler gathers acks, nacks and extensions from the handlers and sends
// them in batches: up to SettleBatch, or what SettleLinger gathers.
type settler struct {
	src      source
	opts     RunnerOptions
	logf     func(string, ...any)
	extended *atomic.Int64 // extensions sent without error
	in       chan settleOp
	done     chan struct{}
}

type settleOp struct {
	ack    string
	nack   *chute.Nack
	extend string
	lease  time.Duration
}

func newSettler(src source, opts RunnerOptions, logf func(string, ...any), extended *atomic.Int64) *settler {
	s := &settler{src: src, opts: opts, logf: logf, extended: extended,
		in: make(chan settleOp, opts.SettleBatch), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *settler) ack(receipt string) { s.in <- settleOp{ack: receipt} }
func (s *settler) nack(n chute.Nack)  { s.in <- settleOp{nack: &n} }
func (s *settler) extend(receipt string, lease time.Duration) {
	s.in <- settleOp{extend: receipt, lease: lease}
}

// close sends what is left and stops.
func (s *settler) close() {
	close(s.in)
	<-s.done
}

func (s *settler) loop() {
	defer close(s.done)
	var cur settlement
	var n int
	var timer chute.Timer
	var lingered <-chan time.Time
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer, lingered = nil, nil
		}
		if cur.empty() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.src.settle(ctx, cur); err != nil {
			s.logf("settle failed", "err", err)
		} else {
			s.extended.Add(int64(len(cur.extends)))
		}
		cancel()
		cur, n = settlement{}, 0
	}
	for {
		select {
		case op, ok := <-s.in:
			if !ok {
				flush()
				return
			}
			switch {
			case op.ack != "":
				cur.acks = append(cur.acks, op.ack)
			case op.nack != nil:
				cur.nacks = append(cur.nacks, *op.nack)
			default:
				if cur.lease != 0 && cur.lease != op.lease {
					flush()
				}
				cur.extends = append(cur.extends, op.extend)
				cur.lease = op.lease
			}
			n++
			if n >= s.opts.SettleBatch {
				flush()
			} else if timer == nil {
				timer = s.opts.Clock.NewTimer(s.opts.SettleLinger)
				lingered = timer.C()
			}
		case <-lingered:
			timer, lingered = nil, nil
			flush()
		}
	}
}
