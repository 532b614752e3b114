package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"connectrpc.com/connect"
)

// The server's share of the metrics (issue 9): it counts connections and
// calls into plain counters, read by Stats; the metrics package turns them
// into Prometheus series on a scrape. Counting a call costs one lookup in
// a sync.Map and one atomic add, once per call (a stream is one call),
// never per message.

// RequestCount is the calls of one procedure that ended with one code.
type RequestCount struct {
	Procedure string // "/chute.v1.MessageService/Publish"
	Method    string // "Publish"
	Code      string // "ok", or a Connect code: "not_found", "unavailable", …
	Count     uint64
}

type requestKey struct{ procedure, code string }

// requests counts calls by procedure and code.
type requests struct {
	m sync.Map // requestKey → *atomic.Uint64
}

func (r *requests) add(procedure string, err error) {
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	k := requestKey{procedure, code}
	c, ok := r.m.Load(k)
	if !ok {
		c, _ = r.m.LoadOrStore(k, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

func (r *requests) snapshot() []RequestCount {
	var out []RequestCount
	r.m.Range(func(k, v any) bool {
		key := k.(requestKey)
		method := key.procedure[strings.LastIndexByte(key.procedure, '/')+1:]
		out = append(out, RequestCount{Procedure: key.procedure, Method: method, Code: key.code, Count: v.(*atomic.Uint64).Load()})
		return true
	})
	slices.SortFunc(out, func(a, b RequestCount) int {
		if c := strings.Compare(a.Procedure, b.Procedure); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// statsInterceptor counts every call that reached a handler, by procedure
// and outcome. Calls the guard refused before that (no token, wrong role,
// too large) are counted in Stats' refusal counters instead.
func (s *Server) statsInterceptor() connect.Interceptor { return &counter{s: s} }

type counter struct{ s *Server }

func (c *counter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		resp, err := next(ctx, req)
		c.s.reqs.add(req.Spec().Procedure, err)
		return resp, err
	}
}

func (c *counter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (c *counter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		err := next(ctx, conn)
		c.s.reqs.add(conn.Spec().Procedure, err)
		return err
	}
}

// metricsHandler serves Options.Metrics at GET /metrics to anyone with a
// valid token of any role (the figures are what the read role sees
// through the API), and to anyone at all when the server has no tokens.
func (s *Server) metricsHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.authFailed(r, err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="chute"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if !p.role.allows(RoleRead) {
			s.stats.permissionDenied.Add(1)
			http.Error(w, "the token's role may not read metrics", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
