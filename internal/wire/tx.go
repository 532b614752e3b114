package wire

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// CommitRequest converts a transaction to its request.
func CommitRequest(tx chute.Tx) (*chutev1.CommitRequest, error) {
	req := &chutev1.CommitRequest{Id: tx.ID}
	for _, p := range tx.Publish {
		session, first, err := SessionOf(p.Messages)
		if err != nil {
			return nil, err
		}
		req.Publish = append(req.Publish, &chutev1.TxPublish{Target: p.Target, Messages: MessagesToPB(p.Messages), Session: session, FirstSeq: first})
	}
	for _, a := range tx.Ack {
		req.Ack = append(req.Ack, &chutev1.AckRequest{Queue: a.Queue, Receipts: a.Receipts})
	}
	for _, n := range tx.Nack {
		req.Nack = append(req.Nack, &chutev1.NackRequest{Queue: n.Queue, Nacks: NacksToPB(n.Nacks)})
	}
	return req, nil
}

// TxFromPB converts a commit request to its transaction.
func TxFromPB(req *chutev1.CommitRequest) chute.Tx {
	tx := chute.Tx{ID: req.GetId()}
	for _, p := range req.GetPublish() {
		msgs := WithSession(MessagesFromPB(p.GetMessages()), p.GetSession(), p.GetFirstSeq())
		tx.Publish = append(tx.Publish, chute.TxPublish{Target: p.GetTarget(), Messages: msgs})
	}
	for _, a := range req.GetAck() {
		tx.Ack = append(tx.Ack, chute.TxAck{Queue: a.GetQueue(), Receipts: a.GetReceipts()})
	}
	for _, n := range req.GetNack() {
		tx.Nack = append(tx.Nack, chute.TxNack{Queue: n.GetQueue(), Nacks: NacksFromPB(n.GetNacks())})
	}
	return tx
}

// TxResultToPB converts a transaction's result.
func TxResultToPB(r chute.TxResult) *chutev1.CommitResponse {
	out := &chutev1.CommitResponse{Published: make([]*chutev1.PublishResponse, len(r.Published))}
	for i, rs := range r.Published {
		out.Published[i] = &chutev1.PublishResponse{Results: ResultsToPB(rs)}
	}
	return out
}

// TxResultFromPB converts a transaction's result back.
func TxResultFromPB(r *chutev1.CommitResponse) chute.TxResult {
	out := chute.TxResult{Published: make([][]chute.PublishResult, len(r.GetPublished()))}
	for i, p := range r.GetPublished() {
		out.Published[i] = ResultsFromPB(p.GetResults())
	}
	return out
}

// TxErrorToConnect is ToConnect for Commit: a *chute.StaleReceiptsError
// also carries its receipts in a StaleReceipts detail.
func TxErrorToConnect(err error) error {
	out := ToConnect(err)
	var se *chute.StaleReceiptsError
	var ce *connect.Error
	if errors.As(err, &se) && errors.As(out, &ce) {
		if d, derr := connect.NewErrorDetail(&chutev1.StaleReceipts{Receipts: se.Receipts}); derr == nil {
			ce.AddDetail(d)
		}
	}
	return out
}

// TxErrorFromConnect is FromConnect for Commit: a StaleReceipts detail
// becomes a *chute.StaleReceiptsError (which matches
// chute.ErrStaleReceipt).
func TxErrorFromConnect(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Details() {
			if v, derr := d.Value(); derr == nil {
				if sr, ok := v.(*chutev1.StaleReceipts); ok {
					return &chute.StaleReceiptsError{Receipts: sr.GetReceipts()}
				}
			}
		}
	}
	return FromConnect(err)
}
