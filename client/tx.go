package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/wire"
)

// Commit implements chute.API: the transaction goes to the server in one
// call and is applied there atomically. If the call fails without an
// answer (a network error, ctx), the outcome is unknown: retry with the
// same Tx.ID, which returns the original result if it was committed.
func (c *Client) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	req, err := wire.CommitRequest(tx)
	if err != nil {
		return chute.TxResult{}, err
	}
	resp, err := c.msg.Commit(ctx, connect.NewRequest(req))
	if err != nil {
		return chute.TxResult{}, wire.TxErrorFromConnect(err)
	}
	return wire.TxResultFromPB(resp.Msg), nil
}

// TxHandler processes one message inside a transaction: it adds the
// messages the step produces to out and returns nil, and the runner then
// commits, in ONE transaction (chute.API.Commit), the ack of d and every
// output. An error nacks d, as with a Handler, and nothing of out is
// published.
//
// This makes a consume-transform-produce step happen exactly once inside
// the broker: the input's ack and the outputs are one journal record, so
// after any crash either both happened or neither did (then the input is
// redelivered and the step runs again). The transaction's ID is derived
// from the delivery — its queue and receipt, which names the message's
// sequence and the lease's delivery number — so when a commit's answer is
// lost (a network error, a server restart) the runner retries with the
// same ID and gets the original result instead of publishing twice; the
// broker remembers IDs for chute.TxWindow. Effects outside the broker
// (a database write in the handler) are not covered: make them idempotent,
// keyed by d.Queue and d.Seq.
//
// The outputs must be in the input queue's placement group (the targets of
// a queue created with the same QueueConfig.Group, or the topic whose
// subscription the input queue is): otherwise every commit fails with
// chute.ErrCrossGroup. A tx runner receives with Receive calls, not a
// Consume stream, since its commits settle outside the stream.
type TxHandler func(ctx context.Context, d chute.Delivery, out *Outputs) error

// Outputs collects what a TxHandler publishes.
type Outputs struct {
	pubs []chute.TxPublish
}

// Publish adds messages to publish to target when the step commits.
func (o *Outputs) Publish(target string, msgs ...chute.Message) {
	for i := range o.pubs {
		if o.pubs[i].Target == target {
			o.pubs[i].Messages = append(o.pubs[i].Messages, msgs...)
			return
		}
	}
	o.pubs = append(o.pubs, chute.TxPublish{Target: target, Messages: msgs})
}

// NewTxRunner returns a runner calling h for each message of queue and
// committing its ack with the outputs h adds (see TxHandler).
func NewTxRunner(api chute.API, queue string, h TxHandler, opts RunnerOptions) *Runner {
	r := NewRunner(api, queue, nil, opts)
	r.txH = h
	return r
}

// TxID is the transaction ID the runner commits delivery d of queue under:
// the same for every attempt at committing one delivery, different for
// every delivery (a redelivery has a new receipt).
func TxID(queue string, d chute.Delivery) string {
	sum := sha256.Sum256([]byte(queue + "\x00" + d.Receipt))
	return "runner-" + hex.EncodeToString(sum[:20])
}

// handleTx runs the tx handler on d and commits its ack and outputs,
// retrying a commit whose outcome is unknown under the same ID.
func (r *Runner) handleTx(ctx context.Context, d chute.Delivery) error {
	out := &Outputs{}
	if err := r.txH(ctx, d, out); err != nil {
		return err
	}
	tx := chute.Tx{ID: TxID(r.queue, d), Publish: out.pubs, Ack: []chute.TxAck{{Queue: r.queue, Receipts: []string{d.Receipt}}}}
	delay := r.opts.RetryDelay
	for attempt := 1; ; attempt++ {
		_, err := r.api.Commit(ctx, tx)
		if err == nil {
			return nil
		}
		if !commitRetryable(err) || attempt == maxCommitAttempts {
			return fmt.Errorf("commit: %w", err)
		}
		r.logf("commit failed; retrying under the same ID", "queue", r.queue, "seq", d.Seq, "err", err, "in", delay)
		t := r.opts.Clock.NewTimer(delay)
		<-t.C()
		delay = min(delay*2, r.opts.RetryMaxDelay)
	}
}

// maxCommitAttempts bounds the attempts at one step's commit; after them
// the step is nacked (if its commit did happen, the nack is stale and
// harmless; if not, the message comes back and the step runs again).
const maxCommitAttempts = 8

// commitRetryable: the server was unreachable, restarting or busy, or the
// call broke without an answer from the broker; not a refusal by the
// broker (stale receipts, another group, an invalid message).
func commitRetryable(err error) bool {
	if wire.IsTransient(err) {
		return true
	}
	var re *wire.RemoteError
	var se *chute.StaleReceiptsError
	if errors.As(err, &re) || errors.As(err, &se) || refusedForGood(err) {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnknown, connect.CodeInternal, connect.CodeDeadlineExceeded:
		return true
	}
	return false
}
