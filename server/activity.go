package server

import (
	"cmp"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
)

// Active consumers and producers (issue 9): the broker knows leases, not
// who holds them, so the server, which sees every call, keeps track of
// its clients per queue.
//
// A client is the Chute-Client-Id header it sends (the Go client sends a
// random one per Client, or client.WithClientID's; the CLI sends one as
// it uses the Go client), or, when it sends none, the remote address of
// its connection: one client per connection. A client is an active
// consumer of a queue while it has a Consume stream open on it, or for
// RecentWindow after its last unary Receive, Ack, Nack or Extend on it;
// an active producer while it has a PublishStream open that has
// published to the queue, or for RecentWindow after its last unary
// Publish to it. A publish to a topic counts for the topic's name, not
// for the queues it routes to.
//
// Cost: one map lookup under one mutex per unary call and per stream (not
// per message, except a PublishStream's first publish to each target).
// Entries idle for longer than RecentWindow are dropped when counts are
// read, and at most every RecentWindow/6 when calls record.

// ClientIDHeader is the request header that identifies a client.
const ClientIDHeader = "Chute-Client-Id"

// RecentWindow is how long a unary caller stays active after its last
// call on a queue.
const RecentWindow = 60 * time.Second

// maxClientID bounds a client ID; a longer one is cut.
const maxClientID = 128

// QueueClients is the active consumers and producers of one queue.
type QueueClients struct {
	Queue     string
	Consumers int
	Producers int
}

// ClientActivity is one client active on one queue (ListConsumers).
type ClientActivity struct {
	ClientID string // empty: none sent; Address identifies it
	Address  string // the address of its latest call
	Consumer bool
	Producer bool
	// ConsumeStreams and PublishStreams are its streams open now on the
	// queue; Leases the leases they hold.
	ConsumeStreams, PublishStreams int
	Leases                         int64
	LastSeen                       time.Time
	// PublishRate and ReceiveRate are the messages per second it
	// published to the queue and was delivered from it, over the last
	// RecentWindow.
	PublishRate, ReceiveRate float64
}

type clientKey struct{ id, addr string } // id set: addr is empty

// clientOf identifies the caller of one call.
func clientOf(h interface{ Get(string) string }, peer connect.Peer) (clientKey, string) {
	id := h.Get(ClientIDHeader)
	if len(id) > maxClientID {
		id = id[:maxClientID]
	}
	if !utf8.ValidString(id) {
		id = ""
	}
	if id == "" {
		return clientKey{addr: peer.Addr}, peer.Addr
	}
	return clientKey{id: id}, peer.Addr
}

// holderName is how GetMessage names the holder of a lease: the client's
// ID and address ("worker-7 (10.0.0.5:41234)"), or its address alone.
func holderName(k clientKey, addr string) string {
	if k.id == "" {
		return addr
	}
	return k.id + " (" + addr + ")"
}

// activity tracks the clients of every queue. Lock order: activity.mu,
// then a consumer's mu (Leases reads each open stream's held receipts).
type activity struct {
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	queues map[string]map[clientKey]*clientState // guarded by mu
	pruned time.Time                             // guarded by mu: last prune
}

// clientState is one client on one queue.
type clientState struct {
	addr        string
	lastConsume time.Time // latest unary consumer call (or stream start)
	lastProduce time.Time // latest unary publish (or stream publish)
	lastSeen    time.Time
	consumers   map[*consumer]struct{} // open Consume streams
	publishers  int                    // open PublishStreams that published here
	published   minuteCount            // messages it published here
	received    minuteCount            // messages delivered to it from here
}

// minuteCount counts events over the last RecentWindow in rateBuckets
// buckets, for per-client rates: a few words per client and queue, and
// updated under activity.mu, which every call on the queue takes anyway.
type minuteCount struct {
	n  [rateBuckets]int64
	at [rateBuckets]int64 // the bucket's index (time / bucket length)
}

const rateBuckets = 6

func bucketOf(now time.Time) int64 { return now.UnixNano() / int64(RecentWindow/rateBuckets) }

func (c *minuteCount) add(now time.Time, n int) {
	i := bucketOf(now)
	s := i % rateBuckets
	if c.at[s] != i {
		c.at[s], c.n[s] = i, 0
	}
	c.n[s] += int64(n)
}

// perSecond is the count over the last minute (the current bucket and the
// five before it), per second.
func (c *minuteCount) perSecond(now time.Time) float64 {
	i := bucketOf(now)
	var sum int64
	for s := range c.n {
		if c.at[s] > i-rateBuckets {
			sum += c.n[s]
		}
	}
	return float64(sum) / RecentWindow.Seconds()
}

func newActivity(now func() time.Time) *activity {
	return &activity{window: RecentWindow, now: now, queues: map[string]map[clientKey]*clientState{}}
}

// stateLocked returns the client's state on queue, made if needed.
func (a *activity) stateLocked(queue string, k clientKey, addr string) *clientState {
	q := a.queues[queue]
	if q == nil {
		q = map[clientKey]*clientState{}
		a.queues[queue] = q
	}
	st := q[k]
	if st == nil {
		st = &clientState{consumers: map[*consumer]struct{}{}}
		q[k] = st
	}
	st.addr = addr
	return st
}

// unary records a unary call on queue: a consumer call, or a publish.
func (a *activity) unary(queue string, k clientKey, addr string, publish bool, published int) {
	if queue == "" {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.stateLocked(queue, k, addr)
	st.lastSeen = now
	if publish {
		st.lastProduce = now
		st.published.add(now, published)
	} else {
		st.lastConsume = now
	}
	if now.Sub(a.pruned) >= a.window/6 {
		a.pruneLocked(now)
	}
}

// received counts n messages delivered to a client by a unary Receive
// (marked active by unary before it waited).
func (a *activity) received(queue string, k clientKey, addr string, n int) {
	if queue == "" || n == 0 {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stateLocked(queue, k, addr).received.add(now, n)
}

// delivered counts n messages sent on a Consume stream (c.st is set by
// openConsumer before the stream's goroutines start).
func (a *activity) delivered(c *consumer, n int) {
	now := a.now()
	a.mu.Lock()
	c.st.received.add(now, n)
	a.mu.Unlock()
}

// openConsumer records a Consume stream; the returned func ends it.
func (a *activity) openConsumer(c *consumer, k clientKey, addr string) func() {
	now := a.now()
	a.mu.Lock()
	st := a.stateLocked(c.queue, k, addr)
	c.st = st
	st.consumers[c] = struct{}{}
	st.lastSeen, st.lastConsume = now, now
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(st.consumers, c)
		a.mu.Unlock()
	}
}

// publishStream tracks the targets of one PublishStream.
type publishStream struct {
	a       *activity
	k       clientKey
	addr    string
	targets map[string]*clientState // only the stream's goroutine uses it
}

func (a *activity) openPublisher(k clientKey, addr string) *publishStream {
	return &publishStream{a: a, k: k, addr: addr, targets: map[string]*clientState{}}
}

// publish records a publish of n messages to target on the stream.
func (p *publishStream) publish(target string, n int) {
	now := p.a.now()
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	st, ok := p.targets[target]
	if !ok {
		st = p.a.stateLocked(target, p.k, p.addr)
		st.publishers++
		p.targets[target] = st
	}
	st.lastSeen, st.lastProduce = now, now
	st.published.add(now, n)
}

// close ends the stream: it no longer counts.
func (p *publishStream) close() {
	p.a.mu.Lock()
	defer p.a.mu.Unlock()
	for _, st := range p.targets {
		st.publishers--
	}
	p.targets = nil
}

func (st *clientState) consumerAt(now time.Time, window time.Duration) bool {
	return len(st.consumers) > 0 || !st.lastConsume.IsZero() && now.Sub(st.lastConsume) < window
}

func (st *clientState) producerAt(now time.Time, window time.Duration) bool {
	return st.publishers > 0 || !st.lastProduce.IsZero() && now.Sub(st.lastProduce) < window
}

// pruneLocked drops clients that are neither consumers nor producers.
func (a *activity) pruneLocked(now time.Time) {
	a.pruned = now
	for name, q := range a.queues {
		for k, st := range q {
			if !st.consumerAt(now, a.window) && !st.producerAt(now, a.window) {
				delete(q, k)
			}
		}
		if len(q) == 0 {
			delete(a.queues, name)
		}
	}
}

// counts returns every queue with an active client, sorted by name.
func (a *activity) counts() []QueueClients {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	out := make([]QueueClients, 0, len(a.queues))
	for name := range a.queues {
		out = append(out, a.countLocked(name, now))
	}
	slices.SortFunc(out, func(x, y QueueClients) int { return cmp.Compare(x.Queue, y.Queue) })
	return out
}

// count returns one queue's active clients (zero counts when none).
func (a *activity) count(queue string) QueueClients {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.countLocked(queue, now)
}

func (a *activity) countLocked(queue string, now time.Time) QueueClients {
	qc := QueueClients{Queue: queue}
	for _, st := range a.queues[queue] {
		if st.consumerAt(now, a.window) {
			qc.Consumers++
		}
		if st.producerAt(now, a.window) {
			qc.Producers++
		}
	}
	return qc
}

// clients returns the active clients of one queue: consumers first, then
// by client ID and address.
func (a *activity) clients(queue string) []ClientActivity {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pruneLocked(now)
	var out []ClientActivity
	for k, st := range a.queues[queue] {
		ca := ClientActivity{ClientID: k.id, Address: st.addr, LastSeen: st.lastSeen,
			Consumer: st.consumerAt(now, a.window), Producer: st.producerAt(now, a.window),
			ConsumeStreams: len(st.consumers), PublishStreams: st.publishers,
			PublishRate: st.published.perSecond(now), ReceiveRate: st.received.perSecond(now)}
		for c := range st.consumers {
			c.mu.Lock()
			ca.Leases += int64(len(c.held))
			c.mu.Unlock()
		}
		out = append(out, ca)
	}
	slices.SortFunc(out, func(x, y ClientActivity) int {
		if x.Consumer != y.Consumer {
			if x.Consumer {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(x.ClientID, y.ClientID), cmp.Compare(x.Address, y.Address))
	})
	return out
}

// QueueClients returns the active consumers and producers of every queue
// that has any, sorted by queue name (for metrics and alerts).
func (s *Server) QueueClients() []QueueClients { return s.activity.counts() }

// Clients returns the active clients of one queue (ListConsumers).
func (s *Server) Clients(queue string) []ClientActivity { return s.activity.clients(queue) }
