package server

import (
	"context"
	"encoding/json"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/version"
)

// Info identifies the build a server runs. GetServerInfo and /healthz
// report it; nothing about the host, paths or settings is ever reported.
type Info struct {
	Version   string // "v1.2.3", a module version, or "(devel)"
	Commit    string // VCS revision; empty when unknown
	GoVersion string // "go1.26.0"
}

// buildInfo is this binary's Info.
func buildInfo() Info {
	v := version.Get()
	return Info{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion}
}

// GetServerInfo implements chute.v1.AdminService. Like /healthz it is
// harmless to anyone who can reach the port, but it sits behind the token
// like every other call.
func (a *adminService) GetServerInfo(context.Context, *connect.Request[chutev1.GetServerInfoRequest]) (*connect.Response[chutev1.GetServerInfoResponse], error) {
	in := a.s.opts.Info
	return connect.NewResponse(&chutev1.GetServerInfoResponse{
		Version:   in.Version,
		Commit:    in.Commit,
		GoVersion: in.GoVersion,
		StartedAt: timestamppb.New(a.s.started),
	}), nil
}

// health is the body of /healthz.
type health struct {
	Status  string `json:"status"` // "ok" or "unhealthy"
	Version string `json:"version"`
	Error   string `json:"error,omitempty"` // why unhealthy
}

// healthz answers 200 {"status":"ok","version":...} while the broker can
// serve, and 503 with status "unhealthy" and the error once it cannot (a
// failed journal write: see chute.HealthReporter). It needs no token.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	h := health{Status: "ok", Version: s.opts.Info.Version}
	code := http.StatusOK
	if hr, ok := s.api.(chute.HealthReporter); ok {
		if err := hr.Healthy(); err != nil {
			h.Status, h.Error, code = "unhealthy", err.Error(), http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}
