package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// guard wraps the Connect handlers: every API call passes through it
// before Connect reads a byte of its body. In order:
//
//  1. authentication: the bearer token is looked up (or, without an
//     Authorization header, the dashboard's session cookie; dashboard.go);
//     a call without a known token is answered Unauthenticated at once,
//     in its protocol's error shape (Connect JSON, or a trailers-only
//     gRPC / gRPC-Web response with grpc-status 16), with "Connection:
//     close" (HTTP/1.1: the body is not read, the connection is closed;
//     HTTP/2: GOAWAY), so a client without a token costs the server no
//     body bytes at all;
//  2. browser checks (dashboard on): a call authenticated by cookie must
//     come from the dashboard's own origin, and without tokens a call
//     with an Origin must name the server by an allowed host; else
//     PermissionDenied;
//  3. authorisation: the token's role must allow the procedure (the table
//     in roles.go), else PermissionDenied (an admin action refused is
//     audited);
//  4. size and budget: a unary request that states a length beyond the
//     request limit is refused unread; otherwise its bytes are reserved
//     from the in-flight budgets (limits.go), or metered as they are read.
//
// Only then does the call reach Connect, with its principal (token name,
// role, quota) in the context for the interceptors: quotas (quota.go) and
// the audit log (audit.go) need the decoded request.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proc := procedureOf(r.URL.Path)
		p, byCookie, err := s.authenticateBrowser(r)
		if err != nil {
			s.authFailed(r, err)
			w.Header().Set("Connection", "close")
			s.writeError(w, r, connect.NewError(connect.CodeUnauthenticated, err))
			return
		}
		if err := s.browserCheck(r, byCookie); err != nil { // dashboard.go: Origin and Host
			s.stats.permissionDenied.Add(1)
			s.refused(w, r, connect.NewError(connect.CodePermissionDenied, err))
			return
		}
		if !p.role.allows(proc.need) {
			s.stats.permissionDenied.Add(1)
			err := connect.NewError(connect.CodePermissionDenied, fmt.Errorf("token %q has role %s; %s needs role %s",
				p.name, p.role, actionName(r.URL.Path), proc.need))
			if proc.audit {
				s.auditRecord(r.Context(), p, r.RemoteAddr, actionName(r.URL.Path), "", err)
			}
			s.refused(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		r = r.WithContext(ctx)
		m, err := s.meterRequest(r, proc.stream)
		if err != nil {
			w.Header().Set("Connection", "close") // the body stays unread
			s.refused(w, r, err)
			return
		}
		defer m.finish()
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, meterKey{}, m)))
	})
}

// refused answers a call the guard refuses for its role or its size,
// and logs it at debug (like the calls the handlers refuse: a flood of
// them must not flood the log).
func (s *Server) refused(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Debug("call refused", "procedure", r.URL.Path, "peer", r.RemoteAddr,
		"code", connect.CodeOf(err).String(), "err", err)
	s.writeError(w, r, err)
}

// writeError answers a call the guard refuses, in the call's protocol.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if werr := s.errWriter.Write(w, r, err); werr != nil {
		s.log.Debug("write refusal", "remote", r.RemoteAddr, "err", werr)
	}
}

// connInfo is what the server keeps per connection: its share of the
// in-flight budget, and whether a call on it has authenticated. Without
// one within AuthTimeout the connection is closed, so that connections
// that never authenticate (idle, or stalled before their first call)
// cannot pile up; ReadHeaderTimeout and IdleTimeout bound the others.
type connInfo struct {
	budget *budget
	authed atomic.Bool
	timer  *time.Timer // nil when the server has no token
}

type connKey struct{}

func connFrom(ctx context.Context) *connInfo {
	ci, _ := ctx.Value(connKey{}).(*connInfo)
	return ci
}

func (ci *connInfo) authenticated() {
	if ci.authed.Load() {
		return
	}
	ci.authed.Store(true)
	if ci.timer != nil {
		ci.timer.Stop()
	}
}

// connContext is the http.Server's ConnContext: it attaches a connInfo.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{budget: newBudget(s.opts.MaxConnInflightBytes)}
	if !s.keys.empty() {
		ci.timer = time.AfterFunc(s.opts.AuthTimeout, func() {
			if !ci.authed.Load() {
				s.stats.unauthenticatedCloses.Add(1)
				s.log.Debug("closing connection: no authenticated call", "remote", c.RemoteAddr().String(),
					"after", s.opts.AuthTimeout)
				c.Close()
			}
		})
		s.conns.Store(c, ci)
	}
	return context.WithValue(ctx, connKey{}, ci)
}

// connClosed stops a closed connection's timer.
func (s *Server) connClosed(c net.Conn) {
	if v, ok := s.conns.LoadAndDelete(c); ok {
		v.(*connInfo).timer.Stop()
	}
}
