package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// source is where a Runner gets messages and settles them: a Consume
// stream over the network, or Receive/Ack/Nack/Extend calls on any API.
type source interface {
	// fetch returns 1 to n deliveries, waiting for the first.
	fetch(ctx context.Context, n int) ([]chute.Delivery, error)
	// settle acks, nacks and extends (by lease) a batch of receipts.
	settle(ctx context.Context, s settlement) error
	// drain hands back deliveries received but not yet fetched (to be
	// returned to the queue when the runner pauses).
	drain() []chute.Delivery
	close()
}

type settlement struct {
	acks    []string
	nacks   []chute.Nack
	extends []string
	lease   time.Duration
}

func (s *settlement) empty() bool { return len(s.acks)+len(s.nacks)+len(s.extends) == 0 }

// pollSource uses the plain API calls; it works on any chute.API.
type pollSource struct {
	api   chute.API
	queue string
	lease time.Duration
}

func (p *pollSource) fetch(ctx context.Context, n int) ([]chute.Delivery, error) {
	for {
		ds, err := p.api.Receive(ctx, p.queue, chute.ReceiveOptions{Max: n, Lease: p.lease})
		if err != nil || len(ds) > 0 {
			return ds, err
		}
	}
}

func (p *pollSource) settle(ctx context.Context, s settlement) error {
	var errs []error
	if len(s.acks) > 0 {
		errs = append(errs, p.api.Ack(ctx, p.queue, s.acks...))
	}
	if len(s.nacks) > 0 {
		errs = append(errs, p.api.Nack(ctx, p.queue, s.nacks...))
	}
	if len(s.extends) > 0 {
		errs = append(errs, p.api.Extend(ctx, p.queue, s.lease, s.extends...))
	}
	return errors.Join(errs...)
}

// fetchWait is fetch with a bound on the wait, as in
// chute.ReceiveOptions.Wait: 0 waits until ctx ends, > 0 at most that long
// (then it returns none), < 0 not at all.
func (p *pollSource) fetchWait(ctx context.Context, n int, wait time.Duration) ([]chute.Delivery, error) {
	if wait == 0 {
		return p.fetch(ctx, n)
	}
	return p.api.Receive(ctx, p.queue, chute.ReceiveOptions{Max: n, Lease: p.lease, Wait: wait})
}

// settleWait is settle: the calls return once the broker has applied them.
func (p *pollSource) settleWait(ctx context.Context, s settlement) error { return p.settle(ctx, s) }

func (p *pollSource) drain() []chute.Delivery { return nil }

func (p *pollSource) close() {}

// streamSource is a Consume stream with credit: the server sends messages
// while the client has granted credit, so the client has up to the
// prefetch count of messages on hand without asking each time. When the
// stream breaks, fetch reports it and the next fetch opens a new one; the
// deliveries received on the broken stream and not yet fetched are
// dropped, since the server returns their leases when it sees the stream
// end (they will be redelivered).
//
// Settlements go over the stream too, each with an id: settle sends and
// returns (the Runner's settler; a failure reported later is logged),
// settleWait waits for the server's Settled answer with that id (the
// Consumer's Ack, Nack and Extend).
//
// Lock order: sendMu and mu are never held together (a Send may block on
// flow control while the reader needs mu).
type streamSource struct {
	c     *Client
	queue string
	lease time.Duration
	log   func(msg string, args ...any)
	// prefetch is the credit kept granted: each fetch tops the credit up
	// to it (when a quarter or more is used), so that messages keep
	// arriving between fetches (the Consumer). 0: each fetch grants just
	// what it asks for (the Runner, which counts its own room).
	prefetch int
	clock    chute.Clock // times fetchWait's bound

	sendMu  sync.Mutex // serialises Send; never held with mu
	mu      sync.Mutex
	stream  consumeStream           // guarded by mu
	cancel  context.CancelFunc      // guarded by mu
	buf     []chute.Delivery        // guarded by mu: received, not yet fetched
	owed    int                     // guarded by mu: credit granted and not yet used by the server
	err     error                   // guarded by mu: why the current stream ended
	pending map[uint64]settleWaiter // guarded by mu: settleWait calls waiting for Settled
	closed  bool                    // guarded by mu: close was called; fetch opens no stream
	more    chan struct{}           // signalled when buf grows or the stream ends
	nextID  uint64                  // guarded by mu
	wg      sync.WaitGroup          // the readers
}

// settleWaiter is a settleWait call waiting for the Settled answer to its
// id on stream; it fails when that stream ends first.
type settleWaiter struct {
	stream consumeStream
	answer chan error // buffered: the reader never blocks on it
}

func newStreamSource(c *Client, queue string, lease time.Duration, log func(string, ...any)) *streamSource {
	return &streamSource{c: c, queue: queue, lease: lease, log: log, clock: chute.SystemClock(),
		more: make(chan struct{}, 1), pending: map[uint64]settleWaiter{}}
}

func (s *streamSource) signal() {
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// openLocked starts a stream with the credit still owed carried over.
func (s *streamSource) openLocked(credit int) error {
	ctx, cancel := context.WithCancel(context.Background())
	stream := s.c.openConsume(ctx)
	s.sendMu.Lock()
	err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Start{Start: &chutev1.ConsumeStart{
		Queue: s.queue, Lease: wire.DurPB(s.lease), Credit: uint32(credit)}}})
	s.sendMu.Unlock()
	if err != nil {
		cancel()
		return wire.FromConnect(err)
	}
	s.stream, s.cancel, s.owed, s.err = stream, cancel, credit, nil
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.read(stream)
	}()
	return nil
}

// breakLocked forgets a stream that failed (if it is still the current
// one): the next fetch opens another. Its unfetched deliveries are dropped
// (the server returns their leases) and its waiting settlements fail.
func (s *streamSource) breakLocked(stream consumeStream, err error) {
	if s.stream == stream {
		s.err, s.stream, s.buf = err, nil, nil
		s.cancel()
	}
	s.failPendingLocked(stream, err)
}

// failPendingLocked fails the settlements waiting on a stream that ended:
// whether the server applied them is unknown.
func (s *streamSource) failPendingLocked(stream consumeStream, err error) {
	for id, w := range s.pending {
		if w.stream == stream {
			w.answer <- fmt.Errorf("%w before the server confirmed the settlement: %w", ErrStreamBroken, orClosed(err))
			delete(s.pending, id)
		}
	}
}

// orClosed names why a stream ended when nothing more specific is known.
func orClosed(err error) error {
	if err == nil {
		return errConsumeEnded
	}
	return err
}

func (s *streamSource) read(stream consumeStream) {
	var fatal error // a stream-wide failure the server reported before ending the stream
	for {
		resp, err := stream.Receive()
		s.mu.Lock()
		if err != nil {
			if fatal == nil {
				fatal = wire.FromConnect(err)
			}
			s.breakLocked(stream, fatal) // fails its waiting settlements even after close forgot it
			stream.CloseResponse()
			s.mu.Unlock()
			s.signal()
			return
		}
		if ds := resp.Deliveries; len(ds) > 0 && s.stream == stream {
			s.buf = append(s.buf, ds...)
			s.owed -= len(ds)
		}
		var w settleWaiter
		st := resp.Settled
		if st != nil && st.GetId() != 0 {
			w = s.pending[st.GetId()]
			delete(s.pending, st.GetId())
		}
		s.mu.Unlock()
		if st != nil {
			err := wire.FromStatus(st.GetError())
			if err == nil {
				err = wire.FailuresFromPB(st.GetFailed())
			}
			switch {
			case w.answer != nil:
				w.answer <- err
			case st.GetId() == 0 && err != nil:
				// Not an answer: the server could not go on delivering
				// (the queue was deleted…) and ends the stream.
				fatal = err
				s.log("consume failed", "queue", s.queue, "err", err)
			case err != nil:
				s.log("settlement failed", "queue", s.queue, "err", err)
			}
		}
		s.signal()
	}
}

func (s *streamSource) fetch(ctx context.Context, n int) ([]chute.Delivery, error) {
	return s.fetchWait(ctx, n, 0)
}

// fetchWait returns 1 to n deliveries, opening a stream if none is open.
// It waits for the first until ctx ends, or at most wait when wait > 0
// (then it returns none); wait < 0 does not wait.
//
// A stream that a cluster's follower refused, naming the leader (the
// Client targets it from then on: failover.go), is opened again at once,
// up to 3 times in one call: the wait goes on at the leader instead of
// failing. One refused while no leader is known (an election, or a
// leadership handed to another node) is opened again every
// failoverPause, for as long as a unary call would retry
// (failoverAttempts). The refused stream delivered nothing.
func (s *streamSource) fetchWait(ctx context.Context, n int, wait time.Duration) ([]chute.Delivery, error) {
	hints, elections := 0, 0
	for {
		ds, err := s.fetchOnce(ctx, n, wait)
		var le *chute.LeaderError
		switch {
		case err == nil || !errors.As(err, &le):
		case le.Addr != "" && hints < 3:
			hints++
			continue
		case le.Addr == "" && elections < failoverAttempts:
			elections++
			t := s.clock.NewTimer(failoverPause)
			select {
			case <-t.C():
				continue
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		return ds, err
	}
}

func (s *streamSource) fetchOnce(ctx context.Context, n int, wait time.Duration) ([]chute.Delivery, error) {
	s.mu.Lock()
	target := max(n, s.prefetch)
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, ErrConsumerClosed
	case s.stream == nil:
		if err := s.openLocked(target + len(s.buf)); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	default:
		if want := target - s.owed - len(s.buf); want > 0 && (s.prefetch == 0 || want >= max(1, s.prefetch/4)) {
			s.grantLocked(want)
		}
	}
	var timeout <-chan time.Time
	for len(s.buf) == 0 {
		if s.stream == nil {
			err := s.err
			if s.closed {
				err = ErrConsumerClosed
			}
			s.mu.Unlock()
			return nil, orClosed(err)
		}
		if wait < 0 {
			s.mu.Unlock()
			return nil, nil
		}
		s.mu.Unlock()
		if wait > 0 && timeout == nil {
			t := s.clock.NewTimer(wait)
			defer t.Stop()
			timeout = t.C()
		}
		select {
		case <-s.more:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			return nil, nil
		}
		s.mu.Lock()
	}
	k := min(n, len(s.buf))
	out := append([]chute.Delivery(nil), s.buf[:k]...)
	s.buf = s.buf[k:]
	s.mu.Unlock()
	return out, nil
}

// grantLocked sends want more credit on the current stream; mu is
// released around the Send (which may block on flow control while the
// reader needs mu) and held again on return.
func (s *streamSource) grantLocked(want int) {
	s.owed += want
	stream := s.stream
	s.mu.Unlock()
	s.sendMu.Lock()
	err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Credit{Credit: uint32(want)}})
	s.sendMu.Unlock()
	s.mu.Lock()
	if err != nil && s.stream == stream {
		s.breakLocked(stream, wire.FromConnect(err))
		go stream.CloseResponse() // wakes the reader
	}
}

// settle sends a settlement and returns without waiting for the server's
// answer (a failure it reports is logged).
func (s *streamSource) settle(ctx context.Context, st settlement) error {
	s.mu.Lock()
	stream := s.stream
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	if stream == nil {
		// The stream that delivered these is gone (and with it, on the
		// server, their leases): nothing to settle.
		return errStreamClosed
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return wire.FromConnect(stream.Send(settleRequest(id, st)))
}

// settleWait sends a settlement and waits for the server's answer: nil
// once every receipt is settled, a *chute.ReceiptErrors naming those that
// failed, or ErrStreamBroken when the stream ended first (or was already
// gone: the leases of its deliveries went back to the queue with it).
func (s *streamSource) settleWait(ctx context.Context, st settlement) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrConsumerClosed
	}
	stream := s.stream
	if stream == nil {
		err := s.err
		s.mu.Unlock()
		return fmt.Errorf("%w: its leases were returned: %w", ErrStreamBroken, orClosed(err))
	}
	s.nextID++
	id := s.nextID
	answer := make(chan error, 1)
	s.pending[id] = settleWaiter{stream: stream, answer: answer}
	s.mu.Unlock()
	s.sendMu.Lock()
	err := stream.Send(settleRequest(id, st))
	s.sendMu.Unlock()
	if err != nil {
		err = wire.FromConnect(err)
		s.mu.Lock()
		delete(s.pending, id)
		s.breakLocked(stream, err)
		s.mu.Unlock()
		go stream.CloseResponse() // wakes the reader
		return fmt.Errorf("%w: %w", ErrStreamBroken, err)
	}
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		return ctx.Err()
	}
}

func settleRequest(id uint64, st settlement) *chutev1.ConsumeRequest {
	return &chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Settle{Settle: &chutev1.Settle{
		Id: id, Acks: st.acks, Nacks: wire.NacksToPB(st.nacks), Extends: st.extends, ExtendLease: wire.DurPB(st.lease)}}}
}

func (s *streamSource) drain() []chute.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.buf
	s.buf = nil
	return out
}

// close ends the stream: the server finishes the settlements already sent,
// returns the leases it still holds, and ends its side; close waits for
// that (at most 5 s) so that the last acks are not lost. No stream opens
// after it.
func (s *streamSource) close() {
	s.mu.Lock()
	s.closed = true
	stream, cancel := s.stream, s.cancel
	s.stream = nil
	s.mu.Unlock()
	s.signal() // a fetch waiting returns ErrConsumerClosed
	if stream != nil {
		closeGracefully(&s.sendMu, stream.CloseRequest, &s.wg, func() { stream.CloseResponse() })
		cancel()
	}
	s.wg.Wait()
}
