package client

import (
	"context"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// CreateSchedule implements chute.API.
func (c *Client) CreateSchedule(ctx context.Context, name string, cfg chute.ScheduleConfig) error {
	req := &chutev1.CreateScheduleRequest{Name: name, Config: wire.ScheduleConfigToPB(cfg)}
	_, err := c.admin.CreateSchedule(ctx, connect.NewRequest(req))
	return wire.FromConnect(err)
}

// DeleteSchedule implements chute.API.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	_, err := c.admin.DeleteSchedule(ctx, connect.NewRequest(&chutev1.DeleteScheduleRequest{Name: name}))
	return wire.FromConnect(err)
}

// PauseSchedule implements chute.API.
func (c *Client) PauseSchedule(ctx context.Context, name string) error {
	_, err := c.admin.PauseSchedule(ctx, connect.NewRequest(&chutev1.PauseScheduleRequest{Name: name}))
	return wire.FromConnect(err)
}

// ResumeSchedule implements chute.API.
func (c *Client) ResumeSchedule(ctx context.Context, name string) error {
	_, err := c.admin.ResumeSchedule(ctx, connect.NewRequest(&chutev1.ResumeScheduleRequest{Name: name}))
	return wire.FromConnect(err)
}

// Schedules implements chute.API.
func (c *Client) Schedules(ctx context.Context) ([]chute.ScheduleInfo, error) {
	resp, err := c.admin.ListSchedules(ctx, connect.NewRequest(&chutev1.ListSchedulesRequest{}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	out := make([]chute.ScheduleInfo, len(resp.Msg.GetSchedules()))
	for i, s := range resp.Msg.GetSchedules() {
		out[i] = wire.ScheduleInfoFromPB(s)
	}
	return out, nil
}
