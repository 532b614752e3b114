package chute

import (
	"errors"
	"fmt"
	"strings"
)

// Tx is a transaction: publishes to several queues or topics, acks and
// nacks of deliveries of several queues, committed atomically by
// API.Commit — one journal record, one fsync: all of it takes effect, or
// none of it.
//
// Every queue and topic a transaction names must be in one placement group
// (see QueueConfig.Group and TopicConfig.Group): a topic with its
// subscriptions, or the queues created in the same named group; a queue
// without a group is a group of its own, named after it. A nack may move a
// message to its queue's dead-letter queue, which counts as part of the
// queue's group. The rule holds on a single node too, so that a
// replicated broker can later shard by group without changing what a
// transaction may do.
//
// The parts take effect in this order: the publishes (in order), then the
// acks, then the nacks. A transaction that names a receipt twice is
// refused (ErrInvalidReceipt), and so is one that publishes to the same
// target twice (put the messages in one TxPublish).
type Tx struct {
	// ID names the transaction for retries: a commit whose ID the broker
	// remembers (committed within TxWindow, among the last MaxTxIDs) is
	// not applied again but answered with the original TxResult, even if
	// its receipts are stale by then. The ID alone identifies the
	// transaction: a different transaction under a remembered ID gets the
	// first one's result. 1..MaxTxIDLen bytes; empty means no retry
	// protection (a retry of a committed transaction then fails with a
	// *StaleReceiptsError if it acks anything, or publishes again).
	ID      string
	Publish []TxPublish
	Ack     []TxAck
	Nack    []TxNack
}

// TxPublish publishes messages to a queue or topic inside a transaction,
// as Publish would (de-duplication by message ID and producer session
// included).
type TxPublish struct {
	Target   string
	Messages []Message
}

// TxAck acks deliveries of one queue inside a transaction.
type TxAck struct {
	Queue    string
	Receipts []string
}

// TxNack nacks deliveries of one queue inside a transaction (as Nack).
type TxNack struct {
	Queue string
	Nacks []Nack
}

// TxResult answers a committed transaction.
type TxResult struct {
	// Published holds, per TxPublish of the transaction in order, the
	// results of its messages, as Publish returns them.
	Published [][]PublishResult
}

// Limits of a transaction.
const (
	// MaxTxOps bounds the messages plus receipts of one transaction (the
	// default maximum batch of a publish).
	MaxTxOps = 1000
	// MaxTxBytes bounds the message bytes (as MaxMessageSize counts them)
	// of one transaction: 64 MiB, so that its single journal record stays
	// far below the journal's record maximum.
	MaxTxBytes = 64 << 20
	// MaxTxIDLen bounds a transaction ID.
	MaxTxIDLen = 128
	// MaxTxIDs bounds the committed transaction IDs the broker remembers
	// (with their results): beyond it the oldest is forgotten early.
	MaxTxIDs = 100_000
	// MaxTxResults bounds the message results remembered with them in all
	// (16 bytes each): beyond it the oldest transactions are forgotten
	// early.
	MaxTxResults = 1_000_000
	// TxWindow is how long a committed transaction's ID is remembered:
	// a retry after it is applied as a new transaction.
	TxWindow = DefaultSessionWindow
)

// ErrCrossGroup: a transaction named queues or topics of more than one
// placement group (see Tx). Nothing was applied.
var ErrCrossGroup = errors.New("a transaction may touch one placement group")

// StaleReceiptsError is Commit's error when receipts of the transaction
// are stale (their lease is over, or their queue was deleted): nothing of
// the transaction was applied. errors.Is(err, ErrStaleReceipt) is true.
type StaleReceiptsError struct {
	Receipts []string
}

func (e *StaleReceiptsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "transaction not committed: %d stale receipt(s): ", len(e.Receipts))
	for i, r := range e.Receipts {
		if i == 10 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.40s", r)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrStaleReceipt) true.
func (e *StaleReceiptsError) Is(target error) bool { return target == ErrStaleReceipt }

// Ops is the number of messages plus receipts of tx (what MaxTxOps
// bounds).
func (tx *Tx) Ops() int {
	n := 0
	for _, p := range tx.Publish {
		n += len(p.Messages)
	}
	for _, a := range tx.Ack {
		n += len(a.Receipts)
	}
	for _, k := range tx.Nack {
		n += len(k.Nacks)
	}
	return n
}
