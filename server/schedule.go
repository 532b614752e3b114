package server

import (
	"context"

	"connectrpc.com/connect"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// CreateSchedule implements chute.v1.AdminService (admin role, audited:
// see roles.go).
func (a *adminService) CreateSchedule(ctx context.Context, req *connect.Request[chutev1.CreateScheduleRequest]) (*connect.Response[chutev1.CreateScheduleResponse], error) {
	cfg := wire.ScheduleConfigFromPB(req.Msg.GetConfig())
	return reply(&chutev1.CreateScheduleResponse{}, a.s.api.CreateSchedule(ctx, req.Msg.GetName(), cfg))
}

// DeleteSchedule implements chute.v1.AdminService (admin role, audited).
func (a *adminService) DeleteSchedule(ctx context.Context, req *connect.Request[chutev1.DeleteScheduleRequest]) (*connect.Response[chutev1.DeleteScheduleResponse], error) {
	return reply(&chutev1.DeleteScheduleResponse{}, a.s.api.DeleteSchedule(ctx, req.Msg.GetName()))
}

// PauseSchedule implements chute.v1.AdminService (admin role, audited).
func (a *adminService) PauseSchedule(ctx context.Context, req *connect.Request[chutev1.PauseScheduleRequest]) (*connect.Response[chutev1.PauseScheduleResponse], error) {
	return reply(&chutev1.PauseScheduleResponse{}, a.s.api.PauseSchedule(ctx, req.Msg.GetName()))
}

// ResumeSchedule implements chute.v1.AdminService (admin role, audited).
func (a *adminService) ResumeSchedule(ctx context.Context, req *connect.Request[chutev1.ResumeScheduleRequest]) (*connect.Response[chutev1.ResumeScheduleResponse], error) {
	return reply(&chutev1.ResumeScheduleResponse{}, a.s.api.ResumeSchedule(ctx, req.Msg.GetName()))
}

// ListSchedules implements chute.v1.AdminService (read role).
func (a *adminService) ListSchedules(ctx context.Context, _ *connect.Request[chutev1.ListSchedulesRequest]) (*connect.Response[chutev1.ListSchedulesResponse], error) {
	all, err := a.s.api.Schedules(ctx)
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	out := &chutev1.ListSchedulesResponse{Schedules: make([]*chutev1.ScheduleInfo, len(all))}
	for i, s := range all {
		out.Schedules[i] = wire.ScheduleInfoToPB(s)
	}
	return connect.NewResponse(out), nil
}
