package server

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
)

// Health and tooling endpoints, beside /healthz (info.go):
//
//	GET /livez    200 while the process serves HTTP at all: for a liveness
//	              probe, which restarts a process that stopped answering.
//	GET /readyz   200 when the broker takes calls — recovery is done (the
//	              server exists only after Open returned) and the journal
//	              is writable — and the server is not shutting down; else
//	              503 with the reason: for a readiness probe, which takes
//	              the process out of a load balancer's pool.
//	grpc.health.v1.Health/Check and Watch, through connectrpc.com/grpchealth:
//	              the same readiness as a gRPC status, for the whole server
//	              ("") and for each of chute's services.
//	grpc.reflection.v1 and v1alpha, through connectrpc.com/grpcreflect, when
//	              Options.Reflection is set: grpcurl and similar tools list
//	              and call the API without the .proto files.
//
// Probes need no token: a kubelet or a load balancer has none, and they
// tell nothing beyond up or down. Reflection needs the read role when the
// server has tokens: it describes the whole API, which is no secret (the
// .proto files are published) but is of use only to someone who will call
// it, and grpcurl passes a token with -H anyway.

// services are the names grpc.health.v1 and reflection know.
var services = []string{chutev1connect.MessageServiceName, chutev1connect.AdminServiceName}

func (s *Server) handleHealth(opts []connect.HandlerOption) {
	s.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle(grpchealth.NewHandler(healthChecker{s}, opts...))
	if s.opts.Reflection {
		r := grpcreflect.NewStaticReflector(append(services, grpchealth.HealthV1ServiceName)...)
		s.mux.Handle(s.readGuarded(grpcreflect.NewHandlerV1(r, opts...)))
		s.mux.Handle(s.readGuarded(grpcreflect.NewHandlerV1Alpha(r, opts...)))
	}
}

var errShuttingDown = errors.New("server shutting down")

// ready is nil when the server should get traffic, else why not.
func (s *Server) ready() error {
	if s.stop.Err() != nil {
		return errShuttingDown
	}
	if hr, ok := s.api.(chute.HealthReporter); ok {
		return hr.Healthy()
	}
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// healthChecker answers grpc.health.v1 from ready.
type healthChecker struct{ s *Server }

func (h healthChecker) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", services[0], services[1]:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+req.Service))
	}
	if h.s.ready() != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// readGuarded lets through calls with a token of any role (or any call
// when the server has no tokens); others get Unauthenticated or
// PermissionDenied in their protocol's shape.
func (s *Server) readGuarded(path string, next http.Handler) (string, http.Handler) {
	return path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.authFailed(r, err)
			s.writeError(w, r, connect.NewError(connect.CodeUnauthenticated, err))
			return
		}
		if !p.role.allows(RoleRead) {
			s.stats.permissionDenied.Add(1)
			s.writeError(w, r, connect.NewError(connect.CodePermissionDenied, errors.New("reflection needs the read role")))
			return
		}
		next.ServeHTTP(w, r)
	})
}
