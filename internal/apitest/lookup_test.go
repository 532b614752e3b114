package apitest

import (
	"context"

	"github.com/chutemq/chute"
)

// noCancelAPI answers a cancel as if every message were cancelled, and
// cancels none.
type noCancelAPI struct{ chute.API }

func (a noCancelAPI) CancelMessages(_ context.Context, _ string, refs ...chute.MessageRef) ([]chute.CancelResult, error) {
	rs := make([]chute.CancelResult, len(refs))
	for i, r := range refs {
		rs[i] = chute.CancelResult{Ref: r, Seq: r.Seq, Cancelled: true, State: chute.MessageCancelled}
	}
	return rs, nil
}

// leasingLookupAPI takes a delivery to answer a lookup.
type leasingLookupAPI struct{ chute.API }

func (a leasingLookupAPI) GetMessage(ctx context.Context, q string, ref chute.MessageRef) (chute.MessageInfo, error) {
	a.Receive(ctx, q, chute.ReceiveOptions{Max: 1, Wait: -1})
	return a.API.GetMessage(ctx, q, ref)
}
