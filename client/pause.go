package client

import (
	"context"

	"connectrpc.com/connect"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// PauseQueue implements chute.API.
func (c *Client) PauseQueue(ctx context.Context, name string) error {
	_, err := c.admin.PauseQueue(ctx, connect.NewRequest(&chutev1.PauseQueueRequest{Name: name}))
	return wire.FromConnect(err)
}

// ResumeQueue implements chute.API.
func (c *Client) ResumeQueue(ctx context.Context, name string) error {
	_, err := c.admin.ResumeQueue(ctx, connect.NewRequest(&chutev1.ResumeQueueRequest{Name: name}))
	return wire.FromConnect(err)
}
