package adapters

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/bench"
	"github.com/chutemq/chute/internal/serveproc"
)

// Chute is chute under comparison, through its public packages only.
//
// Embedded (NewChuteEmbedded) each queue is a fresh broker with its own
// journal in a directory under dir, as `chute bench` runs it, so that no
// run inherits another's journal or cache. Through an API (NewChuteAPI:
// a *client.Client dialled to a `chute serve`; NewChuteServer starts that
// server) each queue is a new queue on that server, deleted afterwards.
//
// Every queue implements Streams and DelayPublisher, with the client's
// defaults as the comparison asks (issue 11):
//   - a Producer is a client.Producer with ProducerOptions{} (batches
//     formed of what arrives while earlier ones are in flight, a few
//     batches in flight, a producer session). The comparison's window is
//     the adapter's own bound on unconfirmed messages around the
//     producer's futures, so at most min(window, what the producer's own
//     defaults hold unconfirmed) messages are in flight: the producer may
//     hold fewer than the window, never more;
//   - a Consumer is Receive with Max up to the prefetch, and acks sent
//     as one Ack call per batch by a goroutine of the consumer while it
//     receives the next batch (as the client's Runner settles); received
//     messages count against the prefetch until their ack is sent, so the
//     consumer never holds more than prefetch it has not acked. (The
//     answer to an Ack comes once the ack is synced; the Runner does not
//     wait for it, and NATS's MaxAckPending counts an ack from when its
//     server has it. Counting until the answer, as this adapter did until
//     the fifth session, bound the consumer to prefetch per two journal
//     commits: W2's consumer fell behind its producer and its end-to-end
//     p99 was the backlog's age, about a second.);
//   - the Producers and the Consumers each have a client (a connection)
//     of their own, as the NATS adapter's do (NewChuteServer);
//   - a topic (QueueOptions.Subscriptions > 0) is CreateTopic and one
//     Subscribe per subscription, each with the default queue config.
type Chute struct {
	name string
	dir  string         // embedded: the parent of each queue's journal
	opts broker.Options // embedded: options of each queue's broker
	api  chute.API      // through an API: the server (queue admin, Publish, Len)
	prod chute.API      // through an API: the Producers'
	cons chute.API      // through an API: the Consumers'
	seq  atomic.Int64   // numbers queues
}

// NewChuteEmbedded compares chute embedded in this process, with journals
// under dir (which the caller creates and removes). opts may be nil.
func NewChuteEmbedded(dir string, opts *broker.Options) *Chute {
	c := &Chute{name: "chute embedded", dir: dir}
	if opts != nil {
		c.opts = *opts
	}
	return c
}

// NewChuteAPI compares chute through api, usually a *client.Client; name
// labels its results ("chute network").
func NewChuteAPI(name string, api chute.API) *Chute {
	return NewChuteAPIs(name, api, api, api)
}

// NewChuteAPIs is NewChuteAPI with the Producers on prod and the
// Consumers on cons: three clients, three connections, as the NATS
// adapter shares its connections (an application's producers and
// consumers are usually processes of their own).
func NewChuteAPIs(name string, api, prod, cons chute.API) *Chute {
	return &Chute{name: name, api: api, prod: prod, cons: cons}
}

// Name implements System.
func (c *Chute) Name() string { return c.name }

// NewQueue implements System. The queue (or the topic's subscriptions)
// has the default configuration, as in `chute bench`.
func (c *Chute) NewQueue(ctx context.Context, opts QueueOptions) (Queue, error) {
	n := c.seq.Add(1)
	if c.api != nil {
		name := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n)
		q, err := newChuteQueue(ctx, c.api, c.prod, c.cons, name, opts.Subscriptions, nil)
		if err != nil {
			return nil, err // not a nil *chuteQueue in a Queue
		}
		return q, nil
	}
	dir := filepath.Join(c.dir, fmt.Sprintf("queue-%d", n))
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	opts2 := c.opts
	b, err := broker.Open(dir, &opts2)
	if err != nil {
		return nil, fmt.Errorf("open broker: %w", err)
	}
	closeBroker := func() error {
		err := b.Close()
		if rerr := os.RemoveAll(dir); err == nil {
			err = rerr
		}
		return err
	}
	q, err := newChuteQueue(ctx, b, b, b, "bench", opts.Subscriptions, closeBroker)
	if err != nil {
		closeBroker()
		return nil, err
	}
	return &embeddedQueue{q, b}, nil
}

// newChuteQueue creates queue name on api, or topic name with subs
// subscriptions, whose Producers will use prod and Consumers cons; after
// is run by Delete once they are deleted (nil: nothing).
func newChuteQueue(ctx context.Context, api, prod, cons chute.API, name string, subs int, after func() error) (*chuteQueue, error) {
	q := &chuteQueue{api: api, prod: prod, cons: cons, name: name, after: after}
	if subs <= 0 {
		if err := api.CreateQueue(ctx, name, chute.QueueConfig{}); err != nil {
			return nil, fmt.Errorf("create queue %s: %w", name, err)
		}
		return q, nil
	}
	if err := api.CreateTopic(ctx, name, chute.TopicConfig{}); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", name, err)
	}
	for i := range subs {
		sub := fmt.Sprintf("%s-s%d", name, i)
		if err := api.Subscribe(ctx, name, sub, chute.SubscriptionConfig{}); err != nil {
			q.deleteAll(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("subscribe %s: %w", sub, err)
		}
		q.subs = append(q.subs, sub)
	}
	return q, nil
}

// chuteQueue is one queue, or one topic and its subscriptions, through
// the chute.API.
type chuteQueue struct {
	api   chute.API    // admin, Publish, Len
	prod  chute.API    // NewProducer's
	cons  chute.API    // NewConsumer's
	name  string       // the queue, or the topic
	subs  []string     // the topic's subscription queues; nil for a queue
	after func() error // run by Delete (embedded: close the broker)

	shared     sync.Once
	sharedProd *client.Producer // Publish's, shared by its callers
}

// Publish implements Publisher: one message, confirmed when durable per
// the broker's sync policy, through one client.Producer shared by every
// caller — what the client's documentation gives goroutines that publish
// at once (the Producer batches what they have in flight). A Publish call
// each (client.Publish) is bound by the server's HTTP/2 writes at a few
// thousand per second from 256 goroutines (docs/benchmarks.md, W7).
func (q *chuteQueue) Publish(ctx context.Context, body []byte) error {
	q.shared.Do(func() { q.sharedProd = client.NewProducer(q.api, q.name, client.ProducerOptions{}) })
	f, err := q.sharedProd.Publish(ctx, chute.Message{Body: body})
	if err != nil {
		return err
	}
	_, err = f.Wait(ctx)
	return err
}

// Fill implements Queue through a client.Producer with its defaults (the
// fastest way the client offers, and the way `chute bench backlog
// --server` fills), every message with its own copy of a zero body.
func (q *chuteQueue) Fill(ctx context.Context, n, size int) error {
	p := client.NewProducer(q.api, q.name, client.ProducerOptions{})
	// Every message's future is checked: a publish that failed is not in
	// the backlog (Flush only waits). Checked as they come, the oldest
	// half at a time, so that the futures of a large fill do not keep
	// every batch in memory.
	var pending []*client.Future
	check := func(fs []*client.Future) error {
		for _, f := range fs {
			if _, err := f.Wait(ctx); err != nil {
				return fmt.Errorf("fill: a publish failed: %w", err)
			}
		}
		return nil
	}
	var err error
	for range n {
		var f *client.Future
		if f, err = p.Publish(ctx, chute.Message{Body: make([]byte, size)}); err != nil {
			break
		}
		if pending = append(pending, f); len(pending) >= 8192 {
			if err = check(pending[:4096]); err != nil {
				break
			}
			pending = append(pending[:0], pending[4096:]...)
		}
	}
	if err == nil {
		err = p.Flush(ctx)
	}
	if err == nil {
		err = check(pending)
	}
	return errors.Join(err, p.Close(context.WithoutCancel(ctx)))
}

// Len implements Queue: the queue's depth, or for a topic the smallest
// depth of its subscriptions (each should hold every message).
func (q *chuteQueue) Len(ctx context.Context) (int64, error) {
	if q.subs == nil {
		s, err := q.api.QueueStats(ctx, q.name)
		return s.Depth(), err
	}
	least := int64(-1)
	for _, sub := range q.subs {
		s, err := q.api.QueueStats(ctx, sub)
		if err != nil {
			return 0, err
		}
		if least < 0 || s.Depth() < least {
			least = s.Depth()
		}
	}
	return least, nil
}

// Delete implements Queue: the queue or the topic, its subscriptions and
// the dead-letter queues the default configuration made.
func (q *chuteQueue) Delete(ctx context.Context) error {
	var err error
	if q.sharedProd != nil {
		err = q.sharedProd.Close(ctx)
	}
	err = errors.Join(err, q.deleteAll(ctx))
	if q.after != nil {
		err = errors.Join(err, q.after())
	}
	return err
}

func (q *chuteQueue) deleteAll(ctx context.Context) error {
	var errs []error
	if q.subs == nil {
		errs = append(errs, q.api.DeleteQueue(ctx, q.name), deleteIfAny(ctx, q.api, q.name+chute.DeadLetterSuffix))
		return errors.Join(errs...)
	}
	for _, sub := range q.subs {
		errs = append(errs, q.api.Unsubscribe(ctx, q.name, sub), deleteIfAny(ctx, q.api, sub+chute.DeadLetterSuffix))
	}
	errs = append(errs, q.api.DeleteTopic(ctx, q.name))
	return errors.Join(errs...)
}

// deleteIfAny deletes queue name if it exists.
func deleteIfAny(ctx context.Context, api chute.API, name string) error {
	if err := api.DeleteQueue(ctx, name); err != nil && !errors.Is(err, chute.ErrQueueNotFound) {
		return err
	}
	return nil
}

// PublishMany implements DelayPublisher: one Publish call carrying every
// message with its delay and priority.
func (q *chuteQueue) PublishMany(ctx context.Context, msgs []DelayedMessage) error {
	ms := make([]chute.Message, len(msgs))
	for i, m := range msgs {
		ms[i] = chute.Message{Body: m.Body, Delay: m.Delay, Priority: m.Priority}
	}
	_, err := q.api.Publish(ctx, q.name, ms...)
	return err
}

// NewProducer implements Streams (see Chute for the window).
func (q *chuteQueue) NewProducer(ctx context.Context, window int) (Producer, error) {
	p := &chuteProducer{
		p:        client.NewProducer(q.prod, q.name, client.ProducerOptions{}),
		slots:    make(chan struct{}, max(window, 1)),
		inflight: make(chan pending, max(window, 1)+1),
		done:     make(chan struct{}),
	}
	go p.confirm()
	return p, nil
}

// NewConsumer implements Streams (see Chute for acks and the prefetch).
func (q *chuteQueue) NewConsumer(ctx context.Context, sub, prefetch int) (Consumer, error) {
	queue := q.name
	if q.subs != nil {
		if sub < 0 || sub >= len(q.subs) {
			return nil, fmt.Errorf("subscription %d of %d", sub, len(q.subs))
		}
		queue = q.subs[sub]
	} else if sub != 0 {
		return nil, fmt.Errorf("subscription %d of a plain queue", sub)
	}
	c := &chuteConsumer{
		cons:  client.NewConsumer(q.cons, queue, client.ConsumerOptions{Prefetch: max(prefetch, 1)}),
		queue: queue, prefetch: max(prefetch, 1),
		acks: make(chan []string, 64), freed: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go c.ackLoop()
	return c, nil
}

// chuteProducer bounds a client.Producer's unconfirmed messages to the
// window: a publish takes one of the window's slots, and the producer's
// goroutine (confirm) waits for the futures in publish order, calls each
// done and gives the slot back.
type chuteProducer struct {
	p        *client.Producer
	slots    chan struct{} // one per unconfirmed message; capacity the window
	inflight chan pending  // futures to wait for, in publish order; closed by Close
	done     chan struct{} // closed when confirm returns
	closing  sync.Once
}

// pending is one publish awaiting its confirmation, or a Flush marker
// (f nil, flushed non-nil).
type pending struct {
	f       *client.Future
	done    func(error)
	flushed chan struct{}
}

// Publish implements Producer; done may be nil.
func (p *chuteProducer) Publish(ctx context.Context, body []byte, done func(error)) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	f, err := p.p.Publish(ctx, chute.Message{Body: body})
	if err != nil {
		<-p.slots
		return err
	}
	// inflight has room for every slot (and Flush markers wait their
	// turn), so this send does not wait long.
	p.inflight <- pending{f: f, done: done}
	return nil
}

// confirm waits for each future in order and calls its done; it owns
// nothing else and ends when Close closes inflight.
func (p *chuteProducer) confirm() {
	defer close(p.done)
	for pe := range p.inflight {
		if pe.f == nil {
			close(pe.flushed)
			continue
		}
		<-pe.f.Done()
		if pe.done != nil {
			_, err := pe.f.Result()
			pe.done(err)
		}
		<-p.slots
	}
}

// Flush implements Producer: the producer sends what it holds, and the
// marker queued behind every earlier publish is reached once their done
// calls have been made.
func (p *chuteProducer) Flush(ctx context.Context) error {
	if err := p.p.Flush(ctx); err != nil {
		return err
	}
	marker := make(chan struct{})
	select {
	case p.inflight <- pending{flushed: marker}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-marker:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeTimeout bounds how long Close waits for publishes still in flight.
const closeTimeout = 30 * time.Second

// Close implements Producer: waits (up to closeTimeout) for what is in
// flight, then stops the producer and its confirm goroutine.
func (p *chuteProducer) Close() error {
	var err error
	p.closing.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		err = p.p.Close(ctx)
		close(p.inflight)
		<-p.done
	})
	return err
}

// chuteConsumer receives through a client.Consumer (over the network a
// Consume stream: the server pushes messages while the consumer has
// credit, the prefetch) and acks from its own goroutine (ackLoop), one
// Ack per batch. It is used by one goroutine at a time.
type chuteConsumer struct {
	cons     *client.Consumer
	queue    string
	prefetch int
	unacked  atomic.Int64  // received, ack not yet sent
	acks     chan []string // batches for ackLoop; closed by Close
	freed    chan struct{} // signalled when an ack is sent
	done     chan struct{} // closed when ackLoop returns
	ackErr   atomic.Pointer[error]
	closing  sync.Once
}

// Receive implements Consumer: at most prefetch minus the unacked
// messages, waiting first for acks to free room.
func (c *chuteConsumer) Receive(ctx context.Context, wait time.Duration) ([]Message, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	room := c.prefetch - int(c.unacked.Load())
	for room <= 0 {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-c.freed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.err(); err != nil {
			return nil, err
		}
		if room = c.prefetch - int(c.unacked.Load()); room <= 0 && !time.Now().Before(deadline) {
			return nil, nil
		}
	}
	w := time.Until(deadline)
	if w <= 0 {
		w = -1 // chute: a negative Wait does not wait; 0 would wait for ctx
	}
	ds, err := c.cons.ReceiveWait(ctx, room, w)
	if err != nil {
		return nil, err
	}
	c.unacked.Add(int64(len(ds)))
	out := make([]Message, len(ds))
	for i, d := range ds {
		out[i] = Message{Body: d.Body, Handle: d.Receipt}
	}
	return out, nil
}

// Ack implements Consumer: hands the receipts to ackLoop (waiting only if
// it is several batches behind) and returns the error of an earlier ack,
// if one failed.
func (c *chuteConsumer) Ack(ctx context.Context, msgs []Message) error {
	if err := c.err(); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	rs := make([]string, len(msgs))
	for i, m := range msgs {
		r, ok := m.Handle.(string)
		if !ok {
			return fmt.Errorf("ack: message handle %T is not a chute receipt", m.Handle)
		}
		rs[i] = r
	}
	select {
	case c.acks <- rs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ackLoop sends the receipts handed over, in order, and keeps the first
// error; it ends when Close closes acks. Receipts leave the prefetch's
// count as their call starts (see Chute). The batches handed over while an
// Ack call was out go in the next call together: an ack is a round trip
// (through a cluster, a commit of its own), and a loop one batch behind
// at a time filled acks and held the workload's next receive back, which
// counted as end-to-end latency (NATS's acks are sent without waiting).
// An ack whose outcome is unknown is sent again (ackSettled).
func (c *chuteConsumer) ackLoop() {
	defer close(c.done)
	for rs := range c.acks {
		rs = bench.CoalesceAcks(c.acks, rs)
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		n := len(rs)
		c.unacked.Add(-int64(n))
		select {
		case c.freed <- struct{}{}:
		default:
		}
		err := ackSettled(ctx, c.cons, rs)
		cancel()
		if err != nil {
			err = fmt.Errorf("ack %d on %s: %w", n, c.queue, err)
			c.ackErr.CompareAndSwap(nil, &err)
		}
	}
}

// ackRetryPause is how long ackSettled waits before it sends an ack
// again whose outcome was unknown: about an election on loopback (a
// publish confirmed again 156–364 ms after the leader's SIGKILL).
const ackRetryPause = 100 * time.Millisecond

// ackSettled acks rs and, when the call's outcome is unknown — a
// cluster's leader changed during it (chute.ErrOutcomeUnknown), or the
// consume stream broke before the answer (client.ErrStreamBroken, until
// the consumer has a new stream) — sends it again until it has an answer
// or ctx ends. An answer to a repeated call that refuses receipts only as
// stale is success: the call that went unanswered acked them (or their
// leases ended, and the messages come again, as they would after any
// late ack). Before, W6's drain on a cluster failed on the first such
// ack (an election mid-drain).
func ackSettled(ctx context.Context, a *client.Consumer, rs []string) error {
	repeated := false
	for {
		err := a.Ack(ctx, rs...)
		var re *chute.ReceiptErrors
		switch {
		case err == nil:
			return nil
		case repeated && errors.As(err, &re) && allStale(re):
			return nil
		case !errors.Is(err, chute.ErrOutcomeUnknown) && !errors.Is(err, client.ErrStreamBroken):
			return err
		}
		repeated = true
		t := time.NewTimer(ackRetryPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (the ack's outcome is unknown)", ctx.Err())
		}
	}
}

// allStale: every receipt in re failed as stale.
func allStale(re *chute.ReceiptErrors) bool {
	for _, f := range re.Failed {
		if !errors.Is(f.Err, chute.ErrStaleReceipt) {
			return false
		}
	}
	return len(re.Failed) > 0
}

// err is the first ack failure, if any.
func (c *chuteConsumer) err() error {
	if p := c.ackErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close implements Consumer: sends the acks handed over so far, waits for
// them, and returns the first ack failure. Leases not acked return to the
// queue when they expire.
func (c *chuteConsumer) Close() error {
	var err error
	c.closing.Do(func() {
		close(c.acks)
		<-c.done
		err = c.cons.Close()
	})
	return errors.Join(c.err(), err)
}

// embeddedQueue is a queue of its own embedded broker, whose journal
// counters it can read.
type embeddedQueue struct {
	*chuteQueue
	b *broker.Broker
}

// Syncs implements SyncCounter.
func (q *embeddedQueue) Syncs() (syncs, records int64) {
	s := q.b.JournalStats()
	return s.Syncs, s.Records
}

// ChuteServer is chute as users run it: a `chute serve` process on
// 127.0.0.1 with its defaults (sync always, metrics and alerts on, the
// default memory budget), reached through a *client.Client. It is a
// System (queues on that server) and a Server (its process and data
// directory).
type ChuteServer struct {
	*Chute
	c  *client.Client // queue admin, Publish, Len
	pc *client.Client // the Producers'
	cc *client.Client // the Consumers'

	p    *serveproc.Proc
	dir  string
	stop sync.Once
	err  error // Stop's outcome
}

// NewChuteServer starts `bin serve` with its data in dir, listening on a
// free port of 127.0.0.1 (serveproc), and dials it. The caller stops it
// with Stop. Only the listen address, the data directory and the log
// format are set, and no CHUTE_ variable reaches it (serve would read
// them as flags): it runs with its defaults.
func NewChuteServer(ctx context.Context, bin, dir string) (*ChuteServer, error) {
	p, err := serveproc.Start(ctx, bin, serveEnv(), "chute serve: ", "--data", dir)
	if err != nil {
		return nil, err
	}
	s := &ChuteServer{p: p, dir: dir}
	for _, c := range []**client.Client{&s.c, &s.pc, &s.cc} {
		if *c, err = client.Dial(p.Addr); err != nil {
			return nil, errors.Join(err, s.Stop())
		}
	}
	s.Chute = NewChuteAPIs("chute", s.c, s.pc, s.cc)
	return s, nil
}

// serveEnv is this process's environment without CHUTE_ variables.
func serveEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHUTE_") {
			env = append(env, kv)
		}
	}
	return env
}

// Addr is the server's host:port.
func (s *ChuteServer) Addr() string { return s.p.Addr }

// PID implements Server.
func (s *ChuteServer) PID() int { return s.p.PID() }

// DataDir implements Server.
func (s *ChuteServer) DataDir() string { return s.dir }

// Durability implements Server: chute serve's default sync policy,
// always, confirms a publish only once its journal record is synced.
func (s *ChuteServer) Durability() string { return "fsync before confirm (--sync always)" }

// Segments counts the journal's segment files (*.seg in the data
// directory), for the backlog workload's "space given back".
func (s *ChuteServer) Segments() int {
	es, _ := os.ReadDir(s.dir)
	n := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".seg") {
			n++
		}
	}
	return n
}

// Stop closes the client and stops the server (serveproc: interrupt,
// then kill after 30 s), waiting for it to exit. It leaves the data
// directory to the caller. Calling it again returns the first outcome.
func (s *ChuteServer) Stop() error {
	s.stop.Do(func() {
		for _, c := range []*client.Client{s.c, s.pc, s.cc} {
			if c != nil {
				c.Close()
			}
		}
		s.err = s.p.Stop()
	})
	return s.err
}

// ChuteCluster is a replicated chute (issue 12): three `chute serve
// --cluster-peers` processes on 127.0.0.1, every one syncing always,
// reached through one *client.Client that follows the leader. It is a
// System and a Server (node 1's process; the data of all three).
type ChuteCluster struct {
	*Chute
	c     *client.Client // queue admin, Publish, Len
	pc    *client.Client // the Producers'
	cc    *client.Client // the Consumers'
	procs []*serveproc.Proc
	dir   string
	stop  sync.Once
	err   error // Stop's outcome
}

// NewChuteCluster starts a cluster of n nodes with their data under dir
// (dir/1, dir/2, …) and dials it; it returns once a leader answers.
func NewChuteCluster(ctx context.Context, bin, dir string, n int) (*ChuteCluster, error) {
	addrs := make([]string, n)
	var peers []string
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addrs[i] = l.Addr().String()
		l.Close()
		peers = append(peers, fmt.Sprintf("%d=http://%s", i+1, addrs[i]))
	}
	s := &ChuteCluster{dir: dir}
	for i, addr := range addrs {
		p, err := serveproc.Start(ctx, bin, serveEnv(), fmt.Sprintf("chute node %d: ", i+1), "--listen", addr,
			"--data", filepath.Join(dir, strconv.Itoa(i+1)), "--cluster-id", "bench", "--node-id", strconv.Itoa(i+1),
			"--cluster-peers", strings.Join(peers, ","))
		if err != nil {
			return nil, errors.Join(err, s.Stop())
		}
		s.procs = append(s.procs, p)
	}
	for _, c := range []**client.Client{&s.c, &s.pc, &s.cc} {
		var err error
		if *c, err = client.Dial(addrs[0], client.WithEndpoints(addrs[1:]...)); err != nil {
			return nil, errors.Join(err, s.Stop())
		}
	}
	// Ready once a queue can be made (and removed): a leader is elected
	// and, with shards (--cluster-shards), the directory's leader too.
	const probe = "chute-compare-ready"
	ready := func() error {
		if err := s.c.CreateQueue(ctx, probe, chute.QueueConfig{}); err != nil && !errors.Is(err, chute.ErrExists) {
			return err
		}
		return s.c.DeleteQueue(ctx, probe)
	}
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for err = ready(); err != nil; err = ready() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, errors.Join(fmt.Errorf("no leader within 30 s: %w", err), s.Stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Chute = NewChuteAPIs("chute cluster", s.c, s.pc, s.cc)
	return s, nil
}

// PID implements Server: node 1's.
func (s *ChuteCluster) PID() int { return s.procs[0].PID() }

// DataDir implements Server.
func (s *ChuteCluster) DataDir() string { return s.dir }

// Durability implements Server.
func (s *ChuteCluster) Durability() string {
	return "quorum of 3 fsynced before confirm (--sync always on every node)"
}

// Stop closes the client and stops every node, waiting for them.
func (s *ChuteCluster) Stop() error {
	s.stop.Do(func() {
		for _, c := range []*client.Client{s.c, s.pc, s.cc} {
			if c != nil {
				c.Close()
			}
		}
		for _, p := range s.procs {
			s.err = errors.Join(s.err, p.Stop())
		}
	})
	return s.err
}
