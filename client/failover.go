package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/wire"
)

// A replicated cluster's nodes refuse calls they cannot serve because
// they do not lead, naming the leader (*chute.LeaderError). A Client sends
// every call to its current target (the address it was dialled with, at
// first), moves the target to the named leader, and sends the refused
// unary call again: it was not carried out. With WithEndpoints it also
// tries the next endpoint when the target cannot be connected to (a node
// that is down: nothing was sent). Streams (Consume, PublishStream) are
// not resent: the one that was refused ends with the error, and the next
// one opens at the new target.

// In a cluster of several shards (chute serve --cluster-shards) each
// shard has its own leader, so a hint holds for the queue or topic the
// call named, not for every call: a refused unary call's hint is kept
// for that name too (hints, at most maxHints names), and the next calls
// on it go there; calls on other names go to the target, the latest
// leader named. (With one target only, a client that alternates between
// queues of shards led by different nodes would follow a hint on most
// calls.) A hinted node that cannot be connected to loses its hint.
// Streams follow the target.

// WithEndpoints names the other nodes of a replicated cluster (addresses
// as for Dial), for the Client to try when its target cannot be connected
// to. Hints from the nodes themselves are followed without it.
func WithEndpoints(addrs ...string) Option {
	return func(o *options) { o.endpoints = append(o.endpoints, addrs...) }
}

// failoverAttempts bounds how often one unary call is sent again, and
// failoverPause is the pause before a retry when no leader is known (an
// election in progress).
const (
	failoverAttempts = 40
	failoverPause    = 50 * time.Millisecond
)

// failover holds the Client's target and rewrites each request to it
// (or to its name's hint).
type failover struct {
	base      http.RoundTripper
	mu        sync.Mutex
	target    *url.URL            // guarded by mu
	hints     map[string]*url.URL // guarded by mu: the leader named for a queue or topic
	endpoints []*url.URL          // the dialled address first
	next      int                 // guarded by mu: the endpoint to try after a refusal
}

// maxHints bounds the names hinted (all are forgotten past it: hints are
// learnt again, one refused call each).
const maxHints = 10_000

// nameKey carries, in a unary call's context, the queue or topic it is
// about (nameOf), for RoundTrip.
type nameKey struct{}

// nameOf is the queue or topic a request is about, by its shard: a
// subscription's topic, else the queue, the publish target, the
// dead-letter queue or the name it carries ("" none).
func nameOf(msg any) string {
	if m, ok := msg.(interface{ GetTopic() string }); ok && m.GetTopic() != "" {
		return m.GetTopic()
	}
	if m, ok := msg.(interface{ GetQueue() string }); ok {
		return m.GetQueue()
	}
	if m, ok := msg.(interface{ GetTarget() string }); ok {
		return m.GetTarget()
	}
	if m, ok := msg.(interface{ GetDeadLetterQueue() string }); ok {
		return m.GetDeadLetterQueue()
	}
	if m, ok := msg.(interface{ GetName() string }); ok {
		return m.GetName()
	}
	return ""
}

func newFailover(base http.RoundTripper, first string, others []string, tls bool) (*failover, error) {
	f := &failover{base: base}
	for _, a := range append([]string{first}, others...) {
		b, err := baseURL(a, tls)
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(b)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(f.endpoints, func(e *url.URL) bool { return e.Host == u.Host }) {
			f.endpoints = append(f.endpoints, u)
		}
	}
	f.target, f.next = f.endpoints[0], 1%len(f.endpoints)
	return f, nil
}

func (f *failover) RoundTrip(r *http.Request) (*http.Response, error) {
	name, _ := r.Context().Value(nameKey{}).(string)
	f.mu.Lock()
	t := f.target
	if h := f.hints[name]; h != nil && name != "" {
		t = h
	}
	f.mu.Unlock()
	if r.URL.Host == t.Host && r.URL.Scheme == t.Scheme {
		return f.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = t.Scheme, t.Host, ""
	return f.base.RoundTrip(r2)
}

// follow moves the target to a leader's address.
func (f *failover) follow(addr string) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return
	}
	f.mu.Lock()
	f.target = u
	f.mu.Unlock()
}

// followFor moves the target to a leader's address, and keeps it as
// name's hint: with one shard every call then goes there; with several,
// a call on another name goes to the latest leader named, and calls on
// name to its own.
func (f *failover) followFor(name, addr string) {
	f.follow(addr)
	u, err := url.Parse(addr)
	if name == "" || err != nil || u.Host == "" {
		return
	}
	f.mu.Lock()
	if f.hints == nil || len(f.hints) >= maxHints {
		f.hints = map[string]*url.URL{}
	}
	f.hints[name] = u
	f.mu.Unlock()
}

// forget drops name's hint (its node cannot be connected to).
func (f *failover) forget(name string) {
	f.mu.Lock()
	delete(f.hints, name)
	f.mu.Unlock()
}

// hinted says whether name has a hint.
func (f *failover) hinted(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hints[name] != nil
}

// rotate moves the target to the next endpoint; false when there is no
// other.
func (f *failover) rotate() bool {
	if len(f.endpoints) < 2 {
		return false
	}
	f.mu.Lock()
	f.target = f.endpoints[f.next]
	f.next = (f.next + 1) % len(f.endpoints)
	f.mu.Unlock()
	return true
}

// retry says whether a failed unary call is to be sent again, after
// following what err says, and pausing while no leader is known or when
// hints have been followed before in this call (two nodes that name each
// other, each a term behind).
func (f *failover) retry(ctx context.Context, name string, err error, attempt int) bool {
	var le *chute.LeaderError
	switch e := wire.FromConnect(err); {
	case errors.As(e, &le) && le.Addr != "" && attempt == 0:
		f.followFor(name, le.Addr)
		return true
	case errors.As(e, &le) && le.Addr != "":
		f.followFor(name, le.Addr)
		return f.pause(ctx)
	case notConnected(err) && name != "" && f.hinted(name):
		f.forget(name) // its leader's node is down: the target, or its hint, next
		return true
	case errors.As(e, &le), notConnected(err) && f.rotate():
		return f.pause(ctx) // an election, or a node down: try again shortly
	}
	return false
}

// notConnected: the call failed to connect (refused, unreachable), so
// nothing was sent. A dial error, not an errno: on Windows a refusal is
// WSAECONNREFUSED, which syscall.ECONNREFUSED does not match.
func notConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// pause waits failoverPause, or less if ctx ends (then: false).
func (f *failover) pause(ctx context.Context) bool {
	t := time.NewTimer(failoverPause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// interceptor sends refused unary calls again (see the top of the file)
// and follows leader hints seen on streams.
func (f *failover) interceptor() connect.Interceptor { return failoverInterceptor{f} }

type failoverInterceptor struct{ f *failover }

func (i failoverInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		name := nameOf(req.Any())
		if name != "" {
			ctx = context.WithValue(ctx, nameKey{}, name)
		}
		for attempt := 0; ; attempt++ {
			resp, err := next(ctx, req)
			if err == nil || attempt == failoverAttempts {
				return resp, err
			}
			if !i.f.retry(ctx, name, err, attempt) {
				var le *chute.LeaderError
				if ctxErr := ctx.Err(); ctxErr != nil && errors.As(wire.FromConnect(err), &le) {
					// The caller's time ran out while it waited for a
					// leader (a long poll in an election): its context's
					// error, as if the wait had gone on.
					return nil, ctxErr
				}
				return resp, err
			}
		}
	}
}

func (i failoverInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		return failoverStream{next(ctx, spec), i.f}
	}
}

func (i failoverInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// failoverStream follows a leader hint that ends a stream, for the next.
type failoverStream struct {
	connect.StreamingClientConn
	f *failover
}

func (s failoverStream) Receive(m any) error {
	err := s.StreamingClientConn.Receive(m)
	var le *chute.LeaderError
	if err != nil && errors.As(wire.FromConnect(err), &le) && le.Addr != "" {
		s.f.follow(le.Addr)
	} else if err != nil && notConnected(err) {
		s.f.rotate()
	}
	return err
}

// CloseIdleConnections passes http.Client.CloseIdleConnections on to the
// transport underneath (Client.Close relies on it).
func (f *failover) CloseIdleConnections() {
	if c, ok := f.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
