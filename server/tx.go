package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// ReasonTxPublishNeedsSettle: a consume token's transaction publishes
// without settling anything (see the Commit entry in roles.go).
const ReasonTxPublishNeedsSettle = "TX_PUBLISH_NEEDS_SETTLE"

// Commit applies a transaction (chute.API.Commit) in one call.
func (m *messageService) Commit(ctx context.Context, req *connect.Request[chutev1.CommitRequest]) (*connect.Response[chutev1.CommitResponse], error) {
	msg := req.Msg
	if p := principalFrom(ctx); p.role == RoleConsume && len(msg.GetPublish()) > 0 && len(msg.GetAck()) == 0 && len(msg.GetNack()) == 0 {
		return nil, reasonError(connect.CodePermissionDenied, ReasonTxPublishNeedsSettle,
			errors.New("a consume token publishes in a transaction only together with an ack or nack; use a produce token to publish alone"))
	}
	res, err := m.s.api.Commit(ctx, wire.TxFromPB(msg))
	for _, p := range msg.GetPublish() {
		stored := len(p.GetMessages())
		if err != nil {
			stored = 0
		}
		m.unary(req, p.GetTarget(), true, stored)
	}
	for _, a := range msg.GetAck() {
		m.unary(req, a.GetQueue(), false, 0)
	}
	if err != nil {
		return nil, wire.TxErrorToConnect(err)
	}
	return connect.NewResponse(wire.TxResultToPB(res)), nil
}
