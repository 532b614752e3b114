package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/recv"
	"github.com/chutemq/chute/internal/wire"
)

// messageService implements chute.v1.MessageService on the server's API.
type messageService struct{ s *Server }

func subscriptionConfig(m *chutev1.SubscribeRequest) chute.SubscriptionConfig {
	return chute.SubscriptionConfig{Filter: m.GetFilter(), Queue: wire.QueueConfigFromPB(m.GetQueue())}
}

func (m *messageService) Publish(ctx context.Context, req *connect.Request[chutev1.PublishRequest]) (*connect.Response[chutev1.PublishResponse], error) {
	msgs := wire.WithSession(wire.MessagesFromPB(req.Msg.GetMessages()), req.Msg.GetSession(), req.Msg.GetFirstSeq())
	res, err := m.s.api.Publish(ctx, req.Msg.GetTarget(), msgs...)
	stored := len(msgs)
	if err != nil {
		stored = 0
	}
	m.unary(req, req.Msg.GetTarget(), true, stored)
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	return connect.NewResponse(&chutev1.PublishResponse{Results: wire.ResultsToPB(res)}), nil
}

func (m *messageService) Receive(ctx context.Context, req *connect.Request[chutev1.ReceiveRequest]) (*connect.Response[chutev1.ReceiveResponse], error) {
	// On the wire a zero wait means "do not wait" (what curl wants); the
	// server caps any wait.
	m.unary(req, req.Msg.GetQueue(), false, 0)
	ctx = broker.WithHolder(ctx, holderName(clientOf(req.Header(), req.Peer())))
	wait := min(wire.Dur(req.Msg.GetWait()), m.s.opts.MaxReceiveWait)
	if wait <= 0 {
		wait = -1
	}
	ds, err := m.s.api.Receive(ctx, req.Msg.GetQueue(), chute.ReceiveOptions{
		Max: int(req.Msg.GetMax()), Lease: wire.Dur(req.Msg.GetLease()), Wait: wait})
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	k, addr := clientOf(req.Header(), req.Peer())
	m.s.activity.received(req.Msg.GetQueue(), k, addr, len(ds))
	return connect.NewResponse(&chutev1.ReceiveResponse{Deliveries: wire.DeliveriesToPB(ds)}), nil
}

func (m *messageService) Peek(ctx context.Context, req *connect.Request[chutev1.PeekRequest]) (*connect.Response[chutev1.PeekResponse], error) {
	ds, err := m.s.api.Peek(ctx, req.Msg.GetQueue(), int(req.Msg.GetMax()))
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	return connect.NewResponse(&chutev1.PeekResponse{Deliveries: wire.DeliveriesToPB(ds)}), nil
}

// failures splits a settlement's error into per-receipt failures (returned
// in the response) and a call error.
func failures(err error) ([]*chutev1.ReceiptFailure, error) {
	if err == nil {
		return nil, nil
	}
	fs, err := wire.FailuresToPB(err, 0)
	return fs, wire.ToConnect(err)
}

func (m *messageService) Ack(ctx context.Context, req *connect.Request[chutev1.AckRequest]) (*connect.Response[chutev1.AckResponse], error) {
	m.unary(req, req.Msg.GetQueue(), false, 0)
	fs, err := failures(m.s.api.Ack(ctx, req.Msg.GetQueue(), req.Msg.GetReceipts()...))
	return reply(&chutev1.AckResponse{Failed: fs}, err)
}

func (m *messageService) Nack(ctx context.Context, req *connect.Request[chutev1.NackRequest]) (*connect.Response[chutev1.NackResponse], error) {
	m.unary(req, req.Msg.GetQueue(), false, 0)
	fs, err := failures(m.s.api.Nack(ctx, req.Msg.GetQueue(), wire.NacksFromPB(req.Msg.GetNacks())...))
	return reply(&chutev1.NackResponse{Failed: fs}, err)
}

func (m *messageService) Extend(ctx context.Context, req *connect.Request[chutev1.ExtendRequest]) (*connect.Response[chutev1.ExtendResponse], error) {
	m.unary(req, req.Msg.GetQueue(), false, 0)
	fs, err := failures(m.s.api.Extend(ctx, req.Msg.GetQueue(), wire.Dur(req.Msg.GetLease()), req.Msg.GetReceipts()...))
	return reply(&chutev1.ExtendResponse{Failed: fs}, err)
}

// unary records a unary call's client as a consumer or producer of queue,
// with the messages it published (activity.go).
func (m *messageService) unary(req connect.AnyRequest, queue string, publish bool, published int) {
	k, addr := clientOf(req.Header(), req.Peer())
	m.s.activity.unary(queue, k, addr, publish, published)
}

// sender serialises the sends of a bidirectional stream: many goroutines
// produce responses, one writes them.
type sender[Res any] struct {
	mu   sync.Mutex
	send func(*Res) error
	err  error
}

func (s *sender[Res]) Send(r *Res) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.send(r)
	}
	return s.err
}

// PublishStream keeps up to MaxStreamInFlight publishes in progress: each
// request is applied as soon as it arrives, in the order of the stream, and
// its confirmation is sent back (tagged with its id) as soon as it is
// durable. On server shutdown it stops reading and confirms what it has
// before ending.
func (m *messageService) PublishStream(ctx context.Context, stream *connect.BidiStream[chutev1.PublishStreamRequest, chutev1.PublishStreamResponse]) error {
	m.s.streams.Add(1)
	defer m.s.streams.Done()
	out := &sender[chutev1.PublishStreamResponse]{send: stream.Send}
	k, addr := clientOf(stream.RequestHeader(), stream.Peer())
	active := m.s.activity.openPublisher(k, addr)
	defer active.close()
	slots := make(chan struct{}, m.s.opts.MaxStreamInFlight)
	var inflight sync.WaitGroup
	var confirms chan confirm // to the confirming goroutine, once started
	defer func() {
		if confirms != nil {
			close(confirms)
		}
		inflight.Wait()
	}()
	// A node that does not lead ends the stream with its refusal (a
	// *chute.LeaderError): the error's metadata names the leader, which a
	// refusal per request could not carry, and the client opens its next
	// stream there. Requests taken before it are answered first.
	notLeader := make(chan error, 1)
	refused := func(err error) bool {
		var le *chute.LeaderError
		if !errors.As(err, &le) {
			return false
		}
		select {
		case notLeader <- err:
		default:
		}
		return true
	}
	reqs := make(chan *chutev1.PublishStreamRequest)
	recvErr := make(chan error, 1)
	go func() { // the reader: ends when the client closes its side or goes
		defer close(reqs)
		for {
			req, err := stream.Receive()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()
	for {
		var req *chutev1.PublishStreamRequest
		var ok bool
		select {
		case req, ok = <-reqs:
		case err := <-notLeader:
			return wire.ToConnect(err)
		case <-m.s.stop.Done():
			return connect.NewError(connect.CodeUnavailable, errors.New("server shutting down"))
		}
		if !ok {
			if err := <-recvErr; !errors.Is(err, io.EOF) {
				return err
			}
			if confirms != nil {
				close(confirms)
				confirms = nil
			}
			inflight.Wait()
			return out.err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		active.publish(req.GetTarget(), len(req.GetMessages()))
		msgs := wire.WithSession(wire.MessagesFromPB(req.GetMessages()), req.GetSession(), req.GetFirstSeq())
		r := &chutev1.PublishStreamResponse{Id: req.GetId()}
		ap, ok := m.s.api.(chute.AsyncPublisher)
		if !ok { // any API: publish concurrently, confirm as each finishes
			inflight.Add(1)
			go func() {
				defer func() { <-slots; inflight.Done() }()
				res, err := m.s.api.Publish(ctx, req.GetTarget(), msgs...)
				if refused(err) {
					return
				}
				out.Send(respond(r, res, err))
			}()
			continue
		}
		// Applied here, in the stream's order; confirmed by one goroutine
		// that waits for each in turn (they become durable in that order),
		// so the group syncs are pipelined without a goroutine per request.
		pp, err := ap.PublishAsync(ctx, req.GetTarget(), msgs...)
		if refused(err) {
			<-slots
			return wire.ToConnect(err)
		}
		if err != nil {
			out.Send(respond(r, nil, err))
			<-slots
			continue
		}
		if confirms == nil {
			confirms = make(chan confirm, m.s.opts.MaxStreamInFlight)
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				for c := range confirms {
					res, err := c.pp.Wait(ctx)
					if !refused(err) { // (else the stream ends with it)
						out.Send(respond(c.r, res, err))
					}
					<-slots
				}
			}()
		}
		confirms <- confirm{r, pp}
	}
}

type confirm struct {
	r  *chutev1.PublishStreamResponse
	pp chute.Pending
}

func respond(r *chutev1.PublishStreamResponse, res []chute.PublishResult, err error) *chutev1.PublishStreamResponse {
	if err != nil {
		r.Error = wire.ToStatus(err)
	} else {
		r.Results = wire.ResultsToPB(res)
	}
	return r
}

// Consume streams deliveries while the client has credit, and settles
// what the client sends. Three goroutines: this one reads requests (credit
// and settlements), a deliverer receives from the broker and sends, and
// settlements run in their own goroutines (bounded). Leases handed out on
// this stream and not settled when it ends are nacked (redelivered at
// once): a consumer that goes away does not sit on messages until their
// visibility timeout.
func (m *messageService) Consume(ctx context.Context, stream *connect.BidiStream[chutev1.ConsumeRequest, chutev1.ConsumeResponse]) error {
	m.s.streams.Add(1)
	defer m.s.streams.Done()
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("the first message of Consume must be start"))
	}
	if _, err := m.s.api.QueueStats(ctx, start.GetQueue()); err != nil {
		return wire.ToConnect(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(m.s.stop, cancel)
	defer stopWatch()

	c := &consumer{m: m, queue: start.GetQueue(), lease: wire.Dur(start.GetLease()),
		out: &sender[chutev1.ConsumeResponse]{send: stream.Send}, held: map[string]struct{}{},
		more: make(chan struct{}, 1), slots: make(chan struct{}, m.s.opts.MaxStreamInFlight)}
	c.grant(start.GetCredit())
	k, addr := clientOf(stream.RequestHeader(), stream.Peer())
	defer m.s.activity.openConsumer(c, k, addr)()
	ctx = broker.WithHolder(ctx, holderName(k, addr))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cancel()
		c.deliver(ctx)
	}()
	// The reader blocks in Receive, which a cancelled context does not
	// wake; on shutdown the handler returns without it (which ends the
	// stream, and so the reader).
	readErr := make(chan error, 1)
	go func() { readErr <- c.read(ctx, stream) }()
	select {
	case err = <-readErr:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	wg.Wait()
	c.mu.Lock()
	c.closing = true // no settlement starts after this
	c.mu.Unlock()
	c.settling.Wait()
	c.returnHeld(errors.Is(err, io.EOF) || m.s.stop.Err() != nil)
	c.mu.Lock()
	fatal := c.fatal
	c.mu.Unlock()
	if fatal != nil && m.s.stop.Err() == nil {
		return wire.ToConnect(fatal)
	}
	if errors.Is(err, io.EOF) || ctx.Err() != nil && m.s.stop.Err() != nil {
		return nil
	}
	return err
}

// consumer is the state of one Consume stream.
type consumer struct {
	m     *messageService
	st    *clientState // its client's activity (guarded by activity.mu; set before the stream runs)
	queue string
	lease time.Duration
	out   *sender[chutev1.ConsumeResponse]

	mu      sync.Mutex
	credit  uint64              // guarded by mu
	held    map[string]struct{} // guarded by mu: receipts delivered, not settled
	closing bool                // guarded by mu: the stream is ending
	fatal   error               // guarded by mu: a *chute.LeaderError that ended the deliveries
	more    chan struct{}       // signalled when credit arrives

	slots    chan struct{} // bounds settlements in progress
	settling sync.WaitGroup
}

func (c *consumer) grant(n uint32) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	c.credit += uint64(n)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// deliver receives from the broker whenever there is credit. With the
// embedded broker it does not wait for a batch's delivery record to be
// written before receiving the next: a sender goroutine waits for that,
// then sends, in order.
func (c *consumer) deliver(ctx context.Context) {
	ar, async := c.m.s.api.(chute.AsyncReceiver)
	type out struct {
		ds       []chute.Delivery
		recorded func(context.Context) error
	}
	pipe := make(chan out, 4)
	sent := make(chan struct{})
	go func() { // the sender
		defer close(sent)
		for o := range pipe {
			if o.recorded != nil {
				if err := o.recorded(ctx); err != nil {
					continue // the leases stay held and are returned at the end
				}
			}
			if err := c.out.Send(wire.ConsumeDeliveries(o.ds)); err != nil {
				for range pipe {
				}
				return
			}
			c.m.s.activity.delivered(c, len(o.ds))
		}
	}()
	defer func() { close(pipe); <-sent }()
	var standing recv.Standing
	if sr, ok := c.m.s.api.(recv.StandingReceiver); ok && !async {
		// A cluster's leader: the stream's receives ride behind every
		// publish while it has credit (internal/cluster/standing.go).
		standing = sr.StandingReceive(c.queue, c.lease)
		defer standing.Close()
	}
	for ctx.Err() == nil {
		c.mu.Lock()
		credit := c.credit
		c.mu.Unlock()
		if credit == 0 {
			select {
			case <-c.more:
				continue
			case <-ctx.Done():
				return
			}
		}
		opts := chute.ReceiveOptions{Max: int(min(credit, 512)), Lease: c.lease}
		var ds []chute.Delivery
		var recorded func(context.Context) error
		var err error
		switch {
		case async:
			ds, recorded, err = ar.ReceiveAsync(ctx, c.queue, opts)
		case standing != nil:
			ds, err = standing.Next(ctx, opts.Max)
		default:
			ds, err = c.m.s.api.Receive(ctx, c.queue, opts)
		}
		if err != nil {
			var le *chute.LeaderError
			if errors.As(err, &le) {
				// A cluster node that stopped leading: the stream ends with
				// the refusal as a call's error, whose Chute-Leader header
				// names the leader for the client to open the next one there.
				c.mu.Lock()
				c.fatal = err
				c.mu.Unlock()
				return
			}
			if ctx.Err() == nil {
				c.out.Send(&chutev1.ConsumeResponse{Settled: &chutev1.SettleResult{Error: wire.ToStatus(err)}})
			}
			return
		}
		c.mu.Lock()
		c.credit -= uint64(len(ds))
		for _, d := range ds {
			c.held[d.Receipt] = struct{}{}
		}
		c.mu.Unlock()
		if len(ds) > 0 {
			pipe <- out{ds, recorded}
		}
	}
}

// read handles credit and settlements until the client is done.
func (c *consumer) read(ctx context.Context, stream *connect.BidiStream[chutev1.ConsumeRequest, chutev1.ConsumeResponse]) error {
	for {
		req, err := stream.Receive()
		if err != nil {
			return err
		}
		switch k := req.GetKind().(type) {
		case *chutev1.ConsumeRequest_Credit:
			c.grant(k.Credit)
		case *chutev1.ConsumeRequest_Settle:
			select {
			case c.slots <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			c.mu.Lock()
			if c.closing {
				c.mu.Unlock()
				<-c.slots
				return ctx.Err()
			}
			c.settling.Add(1)
			c.mu.Unlock()
			go func() {
				defer func() { <-c.slots; c.settling.Done() }()
				// A settlement the client sent is carried out even if the
				// stream ends meanwhile: the client counts on it.
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				c.settle(sctx, k.Settle)
			}()
		default:
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("unexpected %T after start", k))
		}
	}
}

// settle applies one settlement (acks, then nacks, then extensions) and
// reports failures by their index in that order.
func (c *consumer) settle(ctx context.Context, st *chutev1.Settle) {
	res := &chutev1.SettleResult{Id: st.GetId()}
	api := c.m.s.api
	var failed []*chutev1.ReceiptFailure
	step := func(offset int, err error) bool {
		if err == nil {
			return true
		}
		fs, err := wire.FailuresToPB(err, offset)
		failed = append(failed, fs...)
		if err != nil {
			res.Error = wire.ToStatus(err)
			return false
		}
		return true
	}
	acks, nacks, extends := st.GetAcks(), st.GetNacks(), st.GetExtends()
	okAcks := len(acks) == 0 || step(0, api.Ack(ctx, c.queue, acks...))
	okNacks := okAcks && (len(nacks) == 0 || step(len(acks), api.Nack(ctx, c.queue, wire.NacksFromPB(nacks)...)))
	if okNacks && len(extends) > 0 {
		step(len(acks)+len(nacks), api.Extend(ctx, c.queue, wire.Dur(st.GetExtendLease()), extends...))
	}
	// Leases settled are no longer this stream's to return; those whose
	// settlement failed still are.
	bad := make(map[int]bool, len(failed))
	for _, f := range failed {
		bad[int(f.GetIndex())] = true
	}
	c.mu.Lock()
	if okAcks {
		for i, r := range acks {
			if !bad[i] {
				delete(c.held, r)
			}
		}
	}
	if okNacks {
		for i, n := range nacks {
			if !bad[len(acks)+i] {
				delete(c.held, n.GetReceipt())
			}
		}
	}
	c.mu.Unlock()
	res.Failed = failed
	c.out.Send(&chutev1.ConsumeResponse{Settled: res})
}

// returnHeld nacks, for immediate redelivery, every lease this stream
// still holds. When the stream ended cleanly — the client closed its side
// (a Runner that stops does, after its last acks: what it still holds was
// in transit, never started), or the server is shutting down — they go
// back unstarted, not using up deliveries. When the stream broke (the
// client crashed, or its connection did) they count, as leases lost in a
// crash do: a message that crashes its consumer must still reach its max
// deliveries.
func (c *consumer) returnHeld(clean bool) {
	unstarted := clean
	c.mu.Lock()
	nacks := make([]chute.Nack, 0, len(c.held))
	for r := range c.held {
		nacks = append(nacks, chute.Nack{Receipt: r, Delay: -1, Unstarted: unstarted})
	}
	c.held = nil
	c.mu.Unlock()
	for len(nacks) > 0 {
		n := min(len(nacks), 1000)
		// Some may have expired or been settled meanwhile: stale is fine.
		c.m.s.api.Nack(context.Background(), c.queue, nacks[:n]...)
		nacks = nacks[n:]
	}
}
