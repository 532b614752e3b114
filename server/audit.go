package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
)

// The audit log has one JSON line (or text line, on the main log) per
// admin action — every procedure marked audit in roles.go: creating,
// changing and deleting queues and topics, subscribing, purging,
// redriving — whether it succeeded, failed, or was refused for the
// token's role:
//
//	{"time":…,"level":"INFO","msg":"audit","token":"ops","remote":"10.0.0.7:51234",
//	 "action":"DeleteQueue","target":"jobs","result":"ok"}
//
// result is "ok" or the status code ("not_found", "permission_denied",
// …), with the error's message in error. The token's secret is never
// written, only its name. It goes to Options.AuditLogger (chute serve
// --audit-log FILE), by default to the main log with msg "audit".

// auditInterceptor writes the audit line of each admin call once its
// handler has answered.
func (s *Server) auditInterceptor() connect.Interceptor { return &auditor{s: s} }

type auditor struct{ s *Server }

func (a *auditor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		path := req.Spec().Procedure
		if !procedureOf(path).audit {
			return next(ctx, req)
		}
		resp, err := next(ctx, req)
		a.s.auditRecord(ctx, principalFrom(ctx), req.Peer().Addr, actionName(path), auditTarget(req.Any()), err)
		return resp, err
	}
}

func (a *auditor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *auditor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		path := conn.Spec().Procedure
		if !procedureOf(path).audit {
			return next(ctx, conn)
		}
		err := next(ctx, conn)
		a.s.auditRecord(ctx, principalFrom(ctx), conn.Peer().Addr, actionName(path), "", err)
		return err
	}
}

// auditRecord writes one audit line.
func (s *Server) auditRecord(ctx context.Context, p *principal, remote, action, target string, err error) {
	attrs := []slog.Attr{
		slog.String("token", p.name),
		slog.String("remote", remote),
		slog.String("action", action),
		slog.String("target", capText(target, maxAuditTarget)),
	}
	if err == nil {
		attrs = append(attrs, slog.String("result", "ok"))
	} else {
		msg := err.Error()
		var ce *connect.Error
		if errors.As(err, &ce) {
			msg = ce.Message()
		}
		attrs = append(attrs, slog.String("result", connect.CodeOf(err).String()), slog.String("error", msg))
	}
	s.audit.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "audit", attrs...)
}

// maxAuditTarget bounds a target in the audit log: a name is checked by
// the broker, but a refused call is audited with whatever it sent.
const maxAuditTarget = 256

// capText cuts s to at most n bytes (on a rune boundary), marking the cut.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// auditTarget names what an admin request acts on: the queue or topic,
// "topic/subscription" for (un)subscribing, the dead-letter queue for a
// redrive.
func auditTarget(msg any) string {
	switch m := msg.(type) {
	case interface {
		GetTopic() string
		GetName() string
	}:
		return m.GetTopic() + "/" + m.GetName()
	case interface{ GetName() string }:
		return m.GetName()
	case interface{ GetDeadLetterQueue() string }:
		return m.GetDeadLetterQueue()
	case interface{ GetQueue() string }:
		return m.GetQueue()
	}
	return ""
}
