// Package replica is a shard's state machine under Raft: the commands a
// leader proposes, and their application to an engine on every replica.
//
// The log carries commands, not engine records. A record can only be
// built against the state it follows (a publish takes the next sequence,
// a receive the best ready message), and a leader with proposals in flight
// does not have that state yet; a command is built from the request alone.
// Each replica executes the committed commands in log order with the
// engine's own command methods (PreparePublish, ReceiveAs, Ack, …), which
// are deterministic: every replica builds the same record from the same
// command and reaches the same state, which the state hash checks. Time
// enters only as the command's Time, stamped by the proposing leader's
// clock; the engine never lets time go backwards, so a new leader whose
// clock is behind cannot move a deadline earlier.
package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// ErrBadCommand: an entry that does not decode as a command (a damaged
// log, or another format version).
var ErrBadCommand = errors.New("replica: bad command")

// Op is what a command does.
type Op uint8

// The commands. Each names the queue it acts on.
const (
	OpCreateQueue Op = 1 // Config
	OpPublish     Op = 2 // Session, SessionSeq, Msgs
	OpReceive     Op = 3 // Max, Lease: a delivery, committed before anyone sees it
	OpAck         Op = 4 // Items (Seq, Deliv)
	OpNack        Op = 5 // Items (Seq, Deliv, Value = delay ns, <0: none)
	OpDeleteQueue Op = 6
	OpExtend      Op = 7 // Items (Seq, Deliv), Lease: each lease runs Lease from the command's time
	// Topics: Queue names the topic. A publish to a topic is an
	// OpPublish with the topic's name: the engine fans it out to the
	// subscriptions, in one record.
	OpCreateTopic Op = 8
	OpDeleteTopic Op = 9
	OpSubscribe   Op = 10 // Sub (the subscription's queue), Visibility, MaxDeliveries
	OpUnsubscribe Op = 11 // Sub
	// Dead letters and admin: Queue names the queue.
	OpRedrive Op = 12 // Max: at most this many ready dead letters back to their queues (≤ 0: all)
	OpPurge   Op = 13 // the queue's ready and delayed messages dropped
	OpPause   Op = 14 // deliveries stop (publishes go on)
	OpResume  Op = 15
	opEnd     Op = 16
)

func (o Op) String() string {
	switch o {
	case OpCreateQueue:
		return "create-queue"
	case OpPublish:
		return "publish"
	case OpReceive:
		return "receive"
	case OpAck:
		return "ack"
	case OpNack:
		return "nack"
	case OpDeleteQueue:
		return "delete-queue"
	case OpExtend:
		return "extend"
	case OpCreateTopic:
		return "create-topic"
	case OpDeleteTopic:
		return "delete-topic"
	case OpSubscribe:
		return "subscribe"
	case OpUnsubscribe:
		return "unsubscribe"
	case OpRedrive:
		return "redrive"
	case OpPurge:
		return "purge"
	case OpPause:
		return "pause"
	case OpResume:
		return "resume"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// commandVersion is the first byte of every encoded command.
const commandVersion = 1

// Command is one request as the leader proposed it.
type Command struct {
	Op Op
	// Node and ID name the proposal: the proposing node answers its
	// waiter when it applies the command (other replicas just apply it).
	Node, ID uint64
	// Time is the proposing leader's clock (unix ns).
	Time int64
	// Client and ClientSeq make a command exactly-once (Client "": no):
	// a client numbers its commands 1, 2, …, and a command numbered at
	// or below the last one applied for it is not applied again (a retry
	// whose first attempt took effect): its result is the first one's.
	// A client has one command in flight at a time.
	Client    string
	ClientSeq uint64
	Queue     string

	// OpCreateQueue and OpSubscribe: the queue's visibility timeout and
	// max deliveries (the rest default).
	Visibility    time.Duration
	MaxDeliveries int
	// OpSubscribe, OpUnsubscribe: the subscription (its queue's name).
	Sub string

	// OpPublish: a producer session ("" for none) and the session number
	// of the first message, then the messages.
	Session    string
	SessionSeq uint64
	Msgs       []Msg

	// OpReceive, OpRedrive (and Lease for OpExtend; 0: the queue's
	// visibility timeout).
	Max   int
	Lease time.Duration

	// OpAck, OpNack, OpExtend: the items, and the queue's ID from their
	// receipts (0: any), so that a receipt never settles a message of a
	// later queue of the same name.
	Items   []engine.Item
	QueueID uint32
}

// Msg is a published message.
type Msg struct {
	Prio  uint8
	Delay time.Duration
	ID    string
	Body  []byte
}

// Encode appends the command's binary form to buf.
func (c *Command) Encode(buf []byte) []byte {
	buf = append(buf, commandVersion, byte(c.Op))
	buf = binary.AppendUvarint(buf, c.Node)
	buf = binary.AppendUvarint(buf, c.ID)
	buf = binary.AppendVarint(buf, c.Time)
	buf = appendString(buf, c.Client)
	buf = binary.AppendUvarint(buf, c.ClientSeq)
	buf = appendString(buf, c.Queue)
	switch c.Op {
	case OpCreateQueue:
		buf = binary.AppendVarint(buf, int64(c.Visibility))
		buf = binary.AppendVarint(buf, int64(c.MaxDeliveries))
	case OpSubscribe:
		buf = appendString(buf, c.Sub)
		buf = binary.AppendVarint(buf, int64(c.Visibility))
		buf = binary.AppendVarint(buf, int64(c.MaxDeliveries))
	case OpUnsubscribe:
		buf = appendString(buf, c.Sub)
	case OpPublish:
		buf = appendString(buf, c.Session)
		buf = binary.AppendUvarint(buf, c.SessionSeq)
		buf = binary.AppendUvarint(buf, uint64(len(c.Msgs)))
		for _, m := range c.Msgs {
			buf = append(buf, m.Prio)
			buf = binary.AppendVarint(buf, int64(m.Delay))
			buf = appendString(buf, m.ID)
			buf = binary.AppendUvarint(buf, uint64(len(m.Body)))
			buf = append(buf, m.Body...)
		}
	case OpReceive:
		buf = binary.AppendVarint(buf, int64(c.Max))
		buf = binary.AppendVarint(buf, int64(c.Lease))
	case OpRedrive:
		buf = binary.AppendVarint(buf, int64(c.Max))
	case OpAck, OpNack, OpExtend:
		if c.Op == OpExtend {
			buf = binary.AppendVarint(buf, int64(c.Lease))
		}
		buf = binary.AppendUvarint(buf, uint64(c.QueueID))
		buf = binary.AppendUvarint(buf, uint64(len(c.Items)))
		for _, it := range c.Items {
			buf = binary.AppendUvarint(buf, it.Seq)
			buf = binary.AppendUvarint(buf, uint64(it.Deliv))
			buf = binary.AppendVarint(buf, it.Value)
		}
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// Decode reads a command; bodies alias b.
func Decode(b []byte) (*Command, error) {
	d := decoder{b: b}
	c := d.command()
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the command", ErrBadCommand, len(d.b))
	}
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length whose items take at least minSize bytes each.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minSize) {
		d.fail("count %d beyond the command", n)
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) command() *Command {
	if v := d.byte(); v != commandVersion && d.err == nil {
		d.fail("version %d", v)
	}
	c := &Command{Op: Op(d.byte())}
	if d.err == nil && (c.Op == 0 || c.Op >= opEnd) {
		d.fail("unknown op %d", c.Op)
	}
	c.Node, c.ID, c.Time = d.uvarint(), d.uvarint(), d.varint()
	c.Client, c.ClientSeq = string(d.bytes()), d.uvarint()
	c.Queue = string(d.bytes())
	switch c.Op {
	case OpCreateQueue:
		c.Visibility, c.MaxDeliveries = time.Duration(d.varint()), int(d.varint())
	case OpSubscribe:
		c.Sub = string(d.bytes())
		c.Visibility, c.MaxDeliveries = time.Duration(d.varint()), int(d.varint())
	case OpUnsubscribe:
		c.Sub = string(d.bytes())
	case OpPublish:
		c.Session, c.SessionSeq = string(d.bytes()), d.uvarint()
		n := d.count(4)
		c.Msgs = make([]Msg, n)
		for i := range c.Msgs {
			m := &c.Msgs[i]
			m.Prio, m.Delay = d.byte(), time.Duration(d.varint())
			m.ID, m.Body = string(d.bytes()), d.bytes()
		}
	case OpReceive:
		c.Max, c.Lease = int(d.varint()), time.Duration(d.varint())
	case OpRedrive:
		c.Max = int(d.varint())
	case OpAck, OpNack, OpExtend:
		if c.Op == OpExtend {
			c.Lease = time.Duration(d.varint())
		}
		qid := d.uvarint()
		if qid > 1<<32-1 {
			d.fail("queue ID %d", qid)
		}
		c.QueueID = uint32(qid)
		n := d.count(3)
		c.Items = make([]engine.Item, n)
		for i := range c.Items {
			it := &c.Items[i]
			it.Seq = d.uvarint()
			deliv := d.uvarint()
			if deliv > 0xffff {
				d.fail("delivery count %d", deliv)
			}
			it.Deliv, it.Value = uint16(deliv), d.varint()
		}
	}
	return c
}

// queueConfig is the engine config of an OpCreateQueue: a dead-letter
// queue named after the queue, so that max deliveries park messages where
// the checks find them.
func (c *Command) queueConfig() chute.QueueConfig {
	name := c.Queue
	if c.Op == OpSubscribe {
		name = c.Sub
	}
	return chute.QueueConfig{VisibilityTimeout: c.Visibility, MaxDeliveries: c.MaxDeliveries, DeadLetterQueue: name + ".dlq"}
}
