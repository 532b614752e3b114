package server

import (
	"context"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// PauseQueue implements chute.v1.AdminService (admin role, audited: see
// roles.go).
func (a *adminService) PauseQueue(ctx context.Context, req *connect.Request[chutev1.PauseQueueRequest]) (*connect.Response[chutev1.PauseQueueResponse], error) {
	return reply(&chutev1.PauseQueueResponse{}, a.s.api.PauseQueue(ctx, req.Msg.GetName()))
}

// ResumeQueue implements chute.v1.AdminService (admin role, audited).
func (a *adminService) ResumeQueue(ctx context.Context, req *connect.Request[chutev1.ResumeQueueRequest]) (*connect.Response[chutev1.ResumeQueueResponse], error) {
	return reply(&chutev1.ResumeQueueResponse{}, a.s.api.ResumeQueue(ctx, req.Msg.GetName()))
}

// breakerFigure is a queue's alerts figure "breaker_state": its breaker
// state, but 0 while it is paused by hand (an operator's choice raises no
// alert).
func breakerFigure(q chute.QueueStats) int {
	if q.Paused {
		return 0
	}
	return int(q.Breaker)
}
