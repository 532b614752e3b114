package client

import (
	"context"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// GetMessage implements chute.API.
func (c *Client) GetMessage(ctx context.Context, queue string, ref chute.MessageRef) (chute.MessageInfo, error) {
	if err := ref.Validate(); err != nil {
		return chute.MessageInfo{}, err
	}
	resp, err := c.admin.GetMessage(ctx, connect.NewRequest(&chutev1.GetMessageRequest{Queue: queue, Ref: wire.MessageRefToPB(ref)}))
	if err != nil {
		return chute.MessageInfo{}, wire.FromConnect(err)
	}
	return wire.MessageInfoFromPB(resp.Msg.GetMessage()), nil
}

// CancelMessages implements chute.API.
func (c *Client) CancelMessages(ctx context.Context, queue string, refs ...chute.MessageRef) ([]chute.CancelResult, error) {
	resp, err := c.admin.CancelMessages(ctx, connect.NewRequest(&chutev1.CancelMessagesRequest{Queue: queue, Refs: wire.MessageRefsToPB(refs)}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	return wire.CancelResultsFromPB(resp.Msg.GetResults()), nil
}

// RedriveMessages implements chute.API.
func (c *Client) RedriveMessages(ctx context.Context, deadLetterQueue string, refs ...chute.MessageRef) ([]chute.RedriveResult, error) {
	resp, err := c.admin.RedriveMessages(ctx, connect.NewRequest(&chutev1.RedriveMessagesRequest{DeadLetterQueue: deadLetterQueue, Refs: wire.MessageRefsToPB(refs)}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	return wire.RedriveResultsFromPB(resp.Msg.GetResults()), nil
}
