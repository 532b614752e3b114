package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chutemq/chute/bench/peers"
)

// This file holds what the peer adapters (nats.go, redis.go, rabbitmq.go)
// share: the Server side taken from a bench/peers.Peer, connections shared
// by a System's queues, producers or consumers, the window of unconfirmed
// publishes a Producer keeps, and a Receive over a channel of arrived
// messages.

// ErrProducerClosed fails publishes on a closed Producer, and the done
// calls of publishes still unconfirmed when it was closed.
var ErrProducerClosed = errors.New("producer closed")

// ErrConsumerClosed is returned by Receive once the consumer's delivery
// stream has ended (Close, or the server closed it).
var ErrConsumerClosed = errors.New("consumer closed")

// ErrNacked is passed to a done callback when the system refused a
// publish (RabbitMQ's basic.nack).
var ErrNacked = errors.New("publish not confirmed (nack)")

// ForPeer returns the System for a server started by bench/peers. It
// also implements Server, with the peer's PID, data directory and
// durability (a System made with NewNATS, NewRedis or NewRabbitMQ for a
// server started by hand does not: its process is unknown).
func ForPeer(p *peers.Peer) (System, error) {
	var sys System
	switch p.Kind {
	case peers.NATS:
		sys = NewNATS(p.URL)
	case peers.NATSR3:
		sys = NewNATSReplicated(p.URL, 3)
	case peers.Redis:
		sys = NewRedis(p.Addr)
	case peers.RabbitMQ:
		sys = NewRabbitMQ(p.URL)
	default:
		return nil, fmt.Errorf("no adapter for peer kind %q", p.Kind)
	}
	return peerSystem{System: sys, p: p}, nil
}

// peerSystem is a peer adapter's System with the Server side of the
// process bench/peers started.
type peerSystem struct {
	System
	p *peers.Peer
}

// PID implements Server.
func (s peerSystem) PID() int { return s.p.PID }

// DataDir implements Server.
func (s peerSystem) DataDir() string { return s.p.DataDir }

// Durability implements Server.
func (s peerSystem) Durability() string { return s.p.Durability }

// shared is a connection that the queues, producers or consumers of one
// System share, as an application shares its connections: opened by the
// first acquire, closed by the last release. A run with a thousand queues
// (W8) then opens a few connections, not thousands.
type shared[T any] struct {
	open  func() (T, error)
	close func(T)

	mu   sync.Mutex // guards v and refs
	v    T
	refs int
}

// newShared returns a shared connection that open dials and close closes.
func newShared[T any](open func() (T, error), close func(T)) *shared[T] {
	return &shared[T]{open: open, close: close}
}

// acquire returns the connection, opening it if no one holds it.
func (s *shared[T]) acquire() (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs == 0 {
		v, err := s.open()
		if err != nil {
			return v, err
		}
		s.v = v
	}
	s.refs++
	return s.v, nil
}

// release gives back a connection acquire returned, closing it if no one
// else holds it.
func (s *shared[T]) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs--; s.refs == 0 {
		s.close(s.v)
		var zero T
		s.v = zero
	}
}

// sem bounds a Producer's unconfirmed publishes: a publish takes a token
// (acquire) before it is sent and gives it back once its done has been
// called.
type sem chan struct{}

// acquire takes a token, blocking while all are taken.
func (s sem) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives a token back.
func (s sem) release() { <-s }

// flush waits until every publish made so far is confirmed, by taking
// every token and giving them back. Publishes must not be made meanwhile.
func (s sem) flush(ctx context.Context) error {
	n := 0
	defer func() {
		for range n {
			s.release()
		}
	}()
	for range cap(s) {
		if err := s.acquire(ctx); err != nil {
			return err
		}
		n++
	}
	return nil
}

// window is a sem whose confirmations are waited in publish order by one
// goroutine, owned by the window and stopped by close, which calls each
// done and gives the token back. In-order waiting suits NATS and RabbitMQ,
// which confirm one publisher's messages in order anyway.
type window struct {
	sem
	pending chan confirmation
	stop    chan struct{} // closed by close: waits end with ErrProducerClosed
	exited  chan struct{} // closed when the goroutine has returned
}

// confirmation is one publish waiting for its confirm.
type confirmation struct {
	// wait blocks until the system confirmed (nil) or failed the publish,
	// or stop is closed (then it returns ErrProducerClosed).
	wait func(stop <-chan struct{}) error
	done func(error)
}

// newWindow starts a window of size (at least 1) and its goroutine.
func newWindow(size int) *window {
	size = max(size, 1)
	w := &window{
		sem:     make(sem, size),
		pending: make(chan confirmation, size),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	go w.run()
	return w
}

// run confirms publishes in order until pending is closed.
func (w *window) run() {
	defer close(w.exited)
	for c := range w.pending {
		err := c.wait(w.stop)
		if c.done != nil {
			c.done(err)
		}
		w.release()
	}
}

// push hands a sent publish to the confirming goroutine; the caller holds
// a token, so pending has room.
func (w *window) push(c confirmation) { w.pending <- c }

// close fails the publishes still unconfirmed with ErrProducerClosed,
// stops the goroutine and waits for it. No publish may follow.
func (w *window) close() {
	close(w.stop)
	close(w.pending)
	<-w.exited
}

// receive waits at most wait (and until ctx ends) for a first value on ch,
// then takes what else has already arrived, up to limit in all. It returns
// none, and no error, when wait passes; closedErr when ch is closed before
// anything arrived.
func receive[T any](ctx context.Context, ch <-chan T, wait time.Duration, limit int, closedErr error) ([]T, error) {
	var first T
	var ok bool
	select {
	case first, ok = <-ch:
	default:
		if wait <= 0 {
			return nil, nil
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case first, ok = <-ch:
		case <-t.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, closedErr
	}
	out := []T{first}
	for len(out) < limit {
		select {
		case v, ok := <-ch:
			if !ok {
				return out, nil
			}
			out = append(out, v)
		default:
			return out, nil
		}
	}
	return out, nil
}
