package client

import (
	"context"
	"errors"
	"sync"
	"time"

	"connectrpc.com/connect"

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

func (p *pollSource) drain() []chute.Delivery { return nil }

func (p *pollSource) close() {}

// streamSource is a Consume stream with credit: the server sends messages
// while the client has granted credit, so the client has up to the
// prefetch count of messages on hand without asking each time. When the
// stream breaks, fetch reports it and the next fetch opens a new one.
type streamSource struct {
	c     *Client
	queue string
	lease time.Duration
	log   func(msg string, args ...any)

	sendMu sync.Mutex // serialises Send; never held with mu
	mu     sync.Mutex
	stream *connect.BidiStreamForClient[chutev1.ConsumeRequest, chutev1.ConsumeResponse]
	cancel context.CancelFunc
	buf    []chute.Delivery // received, not yet fetched
	owed   int              // credit granted and not yet used by the server
	err    error            // why the current stream ended
	more   chan struct{}    // signalled when buf grows or the stream ends
	nextID uint64
	wg     sync.WaitGroup
}

func newStreamSource(c *Client, queue string, lease time.Duration, log func(string, ...any)) *streamSource {
	return &streamSource{c: c, queue: queue, lease: lease, log: log, more: make(chan struct{}, 1)}
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
	stream := s.c.msg.Consume(ctx)
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

func (s *streamSource) read(stream *connect.BidiStreamForClient[chutev1.ConsumeRequest, chutev1.ConsumeResponse]) {
	for {
		resp, err := stream.Receive()
		s.mu.Lock()
		if err != nil {
			if s.stream == stream {
				s.err = wire.FromConnect(err)
				s.stream = nil
				s.cancel()
			}
			stream.CloseResponse()
			s.mu.Unlock()
			s.signal()
			return
		}
		if ds := resp.GetDeliveries(); len(ds) > 0 {
			s.buf = append(s.buf, wire.DeliveriesFromPB(ds)...)
			s.owed -= len(ds)
		}
		s.mu.Unlock()
		if st := resp.GetSettled(); st != nil {
			if e := st.GetError(); e != nil {
				s.log("settlement failed", "queue", s.queue, "err", wire.FromStatus(e))
			} else if f := wire.FailuresFromPB(st.GetFailed()); f != nil {
				s.log("receipts not settled", "queue", s.queue, "err", f)
			}
		}
		s.signal()
	}
}

func (s *streamSource) fetch(ctx context.Context, n int) ([]chute.Delivery, error) {
	s.mu.Lock()
	if s.stream == nil {
		if err := s.openLocked(n + len(s.buf)); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	} else if want := n - s.owed - len(s.buf); want > 0 {
		s.owed += want
		stream := s.stream
		s.mu.Unlock()
		s.sendMu.Lock()
		err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Credit{Credit: uint32(want)}})
		s.sendMu.Unlock()
		s.mu.Lock()
		if err != nil && s.stream == stream {
			s.err, s.stream = wire.FromConnect(err), nil
			s.cancel()
			go stream.CloseResponse() // wakes the reader
		}
	}
	for len(s.buf) == 0 {
		if s.stream == nil {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = errStreamClosed
			}
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	k := min(n, len(s.buf))
	out := append([]chute.Delivery(nil), s.buf[:k]...)
	s.buf = s.buf[k:]
	s.mu.Unlock()
	return out, nil
}

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
	err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Settle{Settle: &chutev1.Settle{
		Id: id, Acks: st.acks, Nacks: wire.NacksToPB(st.nacks), Extends: st.extends, ExtendLease: wire.DurPB(st.lease)}}})
	return wire.FromConnect(err)
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
// that (at most 5 s) so that the last acks are not lost.
func (s *streamSource) close() {
	s.mu.Lock()
	stream, cancel := s.stream, s.cancel
	s.stream = nil
	s.mu.Unlock()
	if stream != nil {
		closeGracefully(&s.sendMu, stream.CloseRequest, &s.wg, func() { stream.CloseResponse() })
		cancel()
	}
	s.wg.Wait()
}
