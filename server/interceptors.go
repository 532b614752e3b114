package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// limitsInterceptor applies what the guard could not decide before the
// body was decoded: a token's publish quota (quota.go). On streams it
// also tells the request's meter (limits.go) where one message ends, so
// that a stream holds in-flight bytes for the message being read, not for
// everything it ever sent.
func (s *Server) limitsInterceptor() connect.Interceptor { return &limiter{s: s} }

type limiter struct{ s *Server }

func (l *limiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if q := principalFrom(ctx).quota; q != nil && procedureOf(req.Spec().Procedure).publish {
			if err := l.s.admitPublish(ctx, q, req.Any()); err != nil {
				return nil, err
			}
		}
		return next(ctx, req)
	}
}

func (l *limiter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *limiter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		m := meterFrom(ctx)
		q := principalFrom(ctx).quota
		if !procedureOf(conn.Spec().Procedure).publish {
			q = nil
		}
		if m == nil && q == nil {
			return next(ctx, conn)
		}
		return next(ctx, &limitedConn{StreamingHandlerConn: conn, s: l.s, ctx: ctx, m: m, q: q})
	}
}

// limitedConn is a stream whose Receive releases the meter's hold on the
// previous message and waits for the quota of each publish.
type limitedConn struct {
	connect.StreamingHandlerConn
	s   *Server
	ctx context.Context
	m   *meter // nil: none
	q   *quota // nil: none
}

func (c *limitedConn) Receive(msg any) error {
	if c.m != nil {
		c.m.messageDone()
	}
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	if c.q != nil {
		return c.s.waitPublish(c.ctx, c.q, msg)
	}
	return nil
}

// publishCost is what a publish request counts against a quota: its
// messages, and its size as protobuf.
func publishCost(msg any) (n, size int) {
	if m, ok := msg.(interface{ GetMessages() []*chutev1.Message }); ok {
		n = len(m.GetMessages())
	}
	if tx, ok := msg.(*chutev1.CommitRequest); ok { // a transaction's publishes (tx.go)
		for _, p := range tx.GetPublish() {
			n += len(p.GetMessages())
		}
	}
	if pm, ok := msg.(proto.Message); ok {
		size = proto.Size(pm)
	}
	return n, size
}

// admitPublish refuses a unary publish over its token's quota.
func (s *Server) admitPublish(ctx context.Context, q *quota, msg any) error {
	n, size := publishCost(msg)
	wait, ok := q.admit(n, size)
	if ok {
		return nil
	}
	s.stats.quotaRefusals.Add(1)
	return reasonError(connect.CodeResourceExhausted, ReasonQuota,
		fmt.Errorf("publish quota of token %q (%s) exceeded; retry in %v", principalFrom(ctx).name, q, wait.Round(time.Millisecond)))
}

// waitPublish holds a streamed publish until its token's quota admits it:
// the stream slows down (HTTP/2 flow control stops its sender) instead of
// failing.
func (s *Server) waitPublish(ctx context.Context, q *quota, msg any) error {
	n, size := publishCost(msg)
	for {
		wait, ok := q.admit(n, size)
		if ok {
			return nil
		}
		t := s.opts.Clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.stop.Done():
			t.Stop()
			return connect.NewError(connect.CodeUnavailable, errors.New("server shutting down"))
		}
	}
}

// logInterceptor logs failed calls: client mistakes (not found, invalid
// argument, stale receipt, ...) and cancellations (a client that hung up
// or gave up) at debug, server faults at warn or error. Successful calls
// are never logged: one line per message would drown everything else.
func (s *Server) logInterceptor() connect.Interceptor { return &logger{s: s} }

type logger struct{ s *Server }

func (l *logger) report(procedure, peer string, err error) {
	if err == nil {
		return
	}
	level := slog.LevelDebug
	switch connect.CodeOf(err) {
	case connect.CodeInternal, connect.CodeDataLoss, connect.CodeUnknown:
		level = slog.LevelError
	case connect.CodeUnavailable, connect.CodeResourceExhausted, connect.CodeUnauthenticated:
		level = slog.LevelWarn
	}
	// A cancellation is the client's doing, whatever code it reached us
	// with (a bare context.Canceled from a stream is CodeUnknown).
	if connect.CodeOf(err) == connect.CodeCanceled || errors.Is(err, context.Canceled) {
		level = slog.LevelDebug
	}
	l.s.log.Log(context.Background(), level, "call failed", "procedure", procedure, "peer", peer,
		"code", connect.CodeOf(err).String(), "err", err)
}

func (l *logger) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		l.report(req.Spec().Procedure, req.Peer().Addr, err)
		return resp, err
	}
}

func (l *logger) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *logger) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		l.report(conn.Spec().Procedure, conn.Peer().Addr, err)
		return err
	}
}
