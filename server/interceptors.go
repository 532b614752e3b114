package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
)

var errUnauthenticated = errors.New(`missing or wrong bearer token: send "Authorization: Bearer TOKEN"`)

// authInterceptor checks the bearer token of every call (unary and
// streaming) when the server has one.
func (s *Server) authInterceptor() connect.Interceptor { return &auth{s: s} }

type auth struct{ s *Server }

func (a *auth) check(h interface{ Get(string) string }) error {
	if a.s.opts.Token == "" {
		return nil
	}
	got, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.s.opts.Token)) != 1 {
		return connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	}
	return nil
}

func (a *auth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := a.check(req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *auth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *auth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
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
