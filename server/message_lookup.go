package server

import (
	"context"

	"connectrpc.com/connect"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// GetMessage looks up one message (read role). MessageInfo.Holder of a
// message in flight names the client that received it (holderName), as
// the receive handlers tell the broker (broker.WithHolder).
func (a *adminService) GetMessage(ctx context.Context, req *connect.Request[chutev1.GetMessageRequest]) (*connect.Response[chutev1.GetMessageResponse], error) {
	m := req.Msg
	info, err := a.s.api.GetMessage(ctx, m.GetQueue(), wire.MessageRefFromPB(m.GetRef()))
	if err != nil {
		return nil, wire.ToConnect(err)
	}
	return connect.NewResponse(&chutev1.GetMessageResponse{Message: wire.MessageInfoToPB(info)}), nil
}

// CancelMessages cancels ready and delayed messages (admin role, audited,
// like PurgeQueue).
func (a *adminService) CancelMessages(ctx context.Context, req *connect.Request[chutev1.CancelMessagesRequest]) (*connect.Response[chutev1.CancelMessagesResponse], error) {
	m := req.Msg
	rs, err := a.s.api.CancelMessages(ctx, m.GetQueue(), wire.MessageRefsFromPB(m.GetRefs())...)
	return reply(&chutev1.CancelMessagesResponse{Results: wire.CancelResultsToPB(rs)}, err)
}

// RedriveMessages moves chosen dead letters back to their sources (admin
// role, audited, like Redrive).
func (a *adminService) RedriveMessages(ctx context.Context, req *connect.Request[chutev1.RedriveMessagesRequest]) (*connect.Response[chutev1.RedriveMessagesResponse], error) {
	m := req.Msg
	rs, err := a.s.api.RedriveMessages(ctx, m.GetDeadLetterQueue(), wire.MessageRefsFromPB(m.GetRefs())...)
	return reply(&chutev1.RedriveMessagesResponse{Results: wire.RedriveResultsToPB(rs)}, err)
}
