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
	"maps"
	"slices"
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
	// Version 2 (the ops below, and the fields marked v2, need a cluster
	// whose every member reads version 2: Command.Version).
	OpUpdateQueue    Op = 16 // Config
	OpCancel         Op = 17 // Refs: ready and delayed messages cancelled
	OpRedriveMsgs    Op = 18 // Refs: chosen dead letters of the queue back to their queues
	OpClusterVersion Op = 19 // Max: the version every member now reads (Shard.Version)
	OpTx             Op = 20 // TxID, TxPubs, TxSettles: one transaction, all or nothing
	// Schedules: Queue names the schedule.
	OpCreateSchedule Op = 21 // Sched
	OpDeleteSchedule Op = 22
	OpPauseSchedule  Op = 23
	OpResumeSchedule Op = 24
	OpFire           Op = 25 // SessionSeq: the slot (schedule.SlotSeq) the leader's timer found due
	OpSetBreaker     Op = 26 // Max: the breaker state (chute.BreakerState) the leader's breaker logic moves the queue to
	// Version 3: the directory of a sharded cluster, kept in shard 0
	// (Shard.Placement).
	OpPlace   Op = 27 // Max: the shard that holds the name Queue (refused if it is placed in another)
	OpUnplace Op = 28 // the name Queue is no longer placed; Lease (v4): only if placed (or placed again) that long before the command's time
	// Version 4: messages carried from another shard's outbox into Queue
	// (a sharded cluster's forwarder: internal/cluster/forward.go), and
	// OpRedrive's and OpRedriveMsgs' Outboxes. Client names the outbox
	// (its shard and queue) and ClientSeq is the highest outbox sequence
	// in Carry: those at or below the last one applied for Client are
	// not put in again, so a forwarder's retry after a failover, even
	// with a batch that grew meanwhile, puts each in once. A refused
	// carry is not remembered (its messages stay in their outbox, to be
	// carried once they can be).
	OpCarry Op = 29 // Carry
	opEnd   Op = 30
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
	case OpUpdateQueue:
		return "update-queue"
	case OpCancel:
		return "cancel"
	case OpRedriveMsgs:
		return "redrive-messages"
	case OpClusterVersion:
		return "cluster-version"
	case OpTx:
		return "tx"
	case OpCreateSchedule:
		return "create-schedule"
	case OpDeleteSchedule:
		return "delete-schedule"
	case OpPauseSchedule:
		return "pause-schedule"
	case OpResumeSchedule:
		return "resume-schedule"
	case OpFire:
		return "fire"
	case OpSetBreaker:
		return "set-breaker"
	case OpPlace:
		return "place"
	case OpUnplace:
		return "unplace"
	case OpCarry:
		return "carry"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command versions: the first byte of every encoded command. A command
// is written in the lowest version that can carry it (Version), so that
// a cluster in the middle of a rolling upgrade, whose older members read
// only version 1, keeps taking what version 1 can say; the rest is
// refused until every member runs a binary that reads version 2 and the
// leader has recorded so in the log (OpClusterVersion; docs/operations.md,
// "Rolling upgrades").
//
//	1  the first format (ops 1–15)
//	2  full queue, topic and subscription settings, filters, message
//	   keys, headers and TTLs, nack errors and hand-backs, ops 16–26
//	3  a sharded cluster's directory: ops 27–28
//	4  messages carried across shards: op 29, and the Outboxes of
//	   OpRedrive and OpRedriveMsgs; an OpUnplace's minimum age (Lease)
const (
	commandVersion = 4 // the latest this binary reads and writes
	firstVersion   = 1
)

// opVersion is the first command version that has each op.
func opVersion(o Op) uint8 {
	if o >= OpCarry {
		return 4
	}
	if o >= OpPlace {
		return 3
	}
	if o >= OpUpdateQueue {
		return 2
	}
	return 1
}

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
	// max deliveries (the rest default), unless Config is set.
	Visibility    time.Duration
	MaxDeliveries int
	// Config (v2) is the whole configuration of the queue (OpCreateQueue,
	// OpUpdateQueue) or subscription (OpSubscribe); Topic (v2) a topic's
	// (OpCreateTopic, nil: the defaults); Filter (v2) a subscription's
	// header filter.
	Config *chute.QueueConfig
	Topic  *chute.TopicConfig
	Filter map[string]string
	// OpSubscribe, OpUnsubscribe: the subscription (its queue's name).
	Sub string

	// OpPublish: a producer session ("" for none) and the session number
	// of the first message, then the messages.
	Session    string
	SessionSeq uint64
	Msgs       []Msg

	// OpReceive, OpRedrive, OpClusterVersion (and Lease for OpExtend;
	// 0: the queue's visibility timeout).
	Max   int
	Lease time.Duration

	// OpAck, OpNack, OpExtend: the items, and the queue's ID from their
	// receipts (0: any), so that a receipt never settles a message of a
	// later queue of the same name. An OpNack item's Err (v2) is kept as
	// the message's last error; Unstarted (v2, nil: none) marks the
	// items handed back unstarted (engine.Return), one flag per item.
	Items     []engine.Item
	Unstarted []bool
	QueueID   uint32

	// OpCancel, OpRedriveMsgs (v2): the messages, by sequence or ID.
	Refs []chute.MessageRef

	// OpTx (v2): the transaction's retry ID ("" none), its publishes and
	// its settles (acks first, then nacks and returns, as the engine
	// takes them).
	TxID      string
	TxPubs    []TxPub
	TxSettles []TxSettle

	// OpCreateSchedule (v2): the schedule's definition.
	Sched *engine.ScheduleDef

	// OpCarry (v4): the messages, in outbox sequence order.
	Carry []CarryMsg
	// OpRedrive, OpRedriveMsgs (v4): the dead letters' source queues that
	// are in other shards (a sharded cluster): each is made an outbox
	// here if it is not a queue here, so that the letters go there, to
	// be carried to their shard.
	Outboxes []string

	// v is the version the command was decoded from (0: built here).
	v uint8
}

// TxPub is one publish of a transaction.
type TxPub struct {
	Target     string
	Session    string
	SessionSeq uint64
	Msgs       []Msg
}

// TxSettle settles leases of one queue in a transaction: Type is
// engine.RecAck, RecNack or RecReturn; QueueIDs has each item's queue ID
// from its receipt.
type TxSettle struct {
	Queue    string
	Type     engine.RecordType
	Items    []engine.Item
	QueueIDs []uint32
}

// CarryMsg is one message an OpCarry carries: its sequence in the
// outbox it comes from, the message as stored there (Prio, ID, Key,
// Headers, Body, Zstd), and its publish time and death (a dead letter)
// or Redriven (a dead letter redriven to its source queue).
type CarryMsg struct {
	Seq uint64
	Msg Msg
	engine.CarryIn
}

// Msg is a published message. Key, Headers and TTL are v2.
type Msg struct {
	Prio    uint8
	Delay   time.Duration
	ID      string
	Key     string
	Headers map[string]string
	TTL     time.Duration // 0: the queue's
	Body    []byte
	// Zstd (v2): Body is a zstd frame the leader compressed, for a queue
	// that stores bodies so (internal/zbody); every replica stores those
	// bytes as they are.
	Zstd bool
}

// Version is the lowest command version that carries c: what it is
// encoded in, and what every member must read before a leader proposes
// it.
func (c *Command) Version() uint8 {
	v := opVersion(c.Op)
	switch {
	case len(c.Outboxes) > 0, c.Op == OpUnplace && c.Lease != 0:
		v = max(v, 4)
	case v > 1:
	case c.Config != nil, c.Topic != nil && *c.Topic != (chute.TopicConfig{}), len(c.Filter) > 0, c.Unstarted != nil:
		v = 2
	}
	for i := 0; v == 1 && i < len(c.Msgs); i++ {
		if m := &c.Msgs[i]; m.Key != "" || len(m.Headers) > 0 || m.TTL != 0 || m.Zstd {
			v = 2
		}
	}
	for i := 0; v == 1 && i < len(c.Items); i++ {
		if c.Items[i].Err != "" {
			v = 2
		}
	}
	return v
}

// config is the queue configuration an OpCreateQueue, OpUpdateQueue or
// OpSubscribe carries (a version 1 command: its two settings).
func (c *Command) config() chute.QueueConfig {
	if c.Config != nil {
		return *c.Config
	}
	return chute.QueueConfig{VisibilityTimeout: c.Visibility, MaxDeliveries: c.MaxDeliveries}
}

// Encode appends the command's binary form to buf.
func (c *Command) Encode(buf []byte) []byte {
	v := c.Version()
	buf = append(buf, v, byte(c.Op))
	buf = binary.AppendUvarint(buf, c.Node)
	buf = binary.AppendUvarint(buf, c.ID)
	buf = binary.AppendVarint(buf, c.Time)
	buf = appendString(buf, c.Client)
	buf = binary.AppendUvarint(buf, c.ClientSeq)
	buf = appendString(buf, c.Queue)
	switch c.Op {
	case OpCreateQueue, OpUpdateQueue:
		buf = c.appendConfig(buf, v)
	case OpSubscribe:
		buf = appendString(buf, c.Sub)
		buf = c.appendConfig(buf, v)
		if v >= 2 {
			buf = appendMap(buf, c.Filter)
		}
	case OpCreateTopic:
		if v >= 2 {
			var t chute.TopicConfig
			if c.Topic != nil {
				t = *c.Topic
			}
			buf = engine.AppendTopicConfig(buf, &t)
		}
	case OpCancel, OpRedriveMsgs:
		buf = binary.AppendUvarint(buf, uint64(len(c.Refs)))
		for _, r := range c.Refs {
			buf = binary.AppendUvarint(buf, r.Seq)
			buf = appendString(buf, r.ID)
		}
		if c.Op == OpRedriveMsgs && v >= 4 {
			buf = appendStrings(buf, c.Outboxes)
		}
	case OpClusterVersion, OpSetBreaker, OpPlace:
		buf = binary.AppendVarint(buf, int64(c.Max))
	case OpCreateSchedule:
		var def engine.ScheduleDef
		if c.Sched != nil {
			def = *c.Sched
		}
		buf = engine.AppendScheduleDef(buf, &def)
	case OpFire:
		buf = binary.AppendUvarint(buf, c.SessionSeq)
	case OpCarry:
		buf = binary.AppendUvarint(buf, uint64(len(c.Carry)))
		for i := range c.Carry {
			d := &c.Carry[i]
			buf = binary.AppendUvarint(buf, d.Seq)
			buf = appendMsg(buf, &d.Msg, v)
			buf = engine.AppendCarryIn(buf, &d.CarryIn)
		}
	case OpTx:
		buf = appendString(buf, c.TxID)
		buf = binary.AppendUvarint(buf, uint64(len(c.TxPubs)))
		for _, p := range c.TxPubs {
			buf = appendString(buf, p.Target)
			buf = appendString(buf, p.Session)
			buf = binary.AppendUvarint(buf, p.SessionSeq)
			buf = appendMsgs(buf, p.Msgs, v)
		}
		buf = binary.AppendUvarint(buf, uint64(len(c.TxSettles)))
		for _, st := range c.TxSettles {
			buf = appendString(buf, st.Queue)
			buf = append(buf, byte(st.Type))
			buf = binary.AppendUvarint(buf, uint64(len(st.Items)))
			for i, it := range st.Items {
				buf = binary.AppendUvarint(buf, uint64(st.QueueIDs[i]))
				buf = binary.AppendUvarint(buf, it.Seq)
				buf = binary.AppendUvarint(buf, uint64(it.Deliv))
				buf = binary.AppendVarint(buf, it.Value)
				buf = appendString(buf, it.Err)
			}
		}
	case OpUnsubscribe:
		buf = appendString(buf, c.Sub)
	case OpUnplace:
		if v >= 4 {
			buf = binary.AppendVarint(buf, int64(c.Lease))
		}
	case OpPublish:
		buf = appendString(buf, c.Session)
		buf = binary.AppendUvarint(buf, c.SessionSeq)
		buf = appendMsgs(buf, c.Msgs, v)
	case OpReceive:
		buf = binary.AppendVarint(buf, int64(c.Max))
		buf = binary.AppendVarint(buf, int64(c.Lease))
	case OpRedrive:
		buf = binary.AppendVarint(buf, int64(c.Max))
		if v >= 4 {
			buf = appendStrings(buf, c.Outboxes)
		}
	case OpAck, OpNack, OpExtend:
		if c.Op == OpExtend {
			buf = binary.AppendVarint(buf, int64(c.Lease))
		}
		buf = binary.AppendUvarint(buf, uint64(c.QueueID))
		buf = binary.AppendUvarint(buf, uint64(len(c.Items)))
		for i, it := range c.Items {
			buf = binary.AppendUvarint(buf, it.Seq)
			buf = binary.AppendUvarint(buf, uint64(it.Deliv))
			buf = binary.AppendVarint(buf, it.Value)
			if v >= 2 {
				buf = appendString(buf, it.Err)
				var flags byte
				if c.Unstarted != nil && c.Unstarted[i] {
					flags = 1
				}
				buf = append(buf, flags)
			}
		}
	}
	return buf
}

// appendMsgs writes published messages (key, headers and TTL from
// version 2).
func appendMsgs(buf []byte, msgs []Msg, v uint8) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(msgs)))
	for i := range msgs {
		buf = appendMsg(buf, &msgs[i], v)
	}
	return buf
}

// appendMsg writes one message (appendMsgs).
func appendMsg(buf []byte, m *Msg, v uint8) []byte {
	buf = append(buf, m.Prio)
	buf = binary.AppendVarint(buf, int64(m.Delay))
	buf = appendString(buf, m.ID)
	buf = binary.AppendUvarint(buf, uint64(len(m.Body)))
	buf = append(buf, m.Body...)
	if v >= 2 {
		buf = appendString(buf, m.Key)
		buf = appendMap(buf, m.Headers)
		buf = binary.AppendVarint(buf, int64(m.TTL))
		var flags byte
		if m.Zstd {
			flags = 1
		}
		buf = append(buf, flags)
	}
	return buf
}

// appendConfig: version 1 has the visibility timeout and max deliveries,
// version 2 the whole configuration in the engine's record format.
func (c *Command) appendConfig(buf []byte, v uint8) []byte {
	if v < 2 {
		buf = binary.AppendVarint(buf, int64(c.Visibility))
		return binary.AppendVarint(buf, int64(c.MaxDeliveries))
	}
	cfg := c.config()
	return engine.AppendQueueConfig(buf, &cfg)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendStrings(buf []byte, ss []string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(ss)))
	for _, s := range ss {
		buf = appendString(buf, s)
	}
	return buf
}

// appendMap writes m in key order (the encoding is deterministic).
func appendMap(buf []byte, m map[string]string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		buf = appendString(buf, k)
		buf = appendString(buf, m[k])
	}
	return buf
}

// Decode reads a command of any version this binary reads; bodies alias
// b.
func Decode(b []byte) (*Command, error) { return decodeUpTo(b, commandVersion) }

// decodeUpTo reads a command of version at most max (a shard limited to
// an older binary's versions: Shard.LimitVersion).
func decodeUpTo(b []byte, max uint8) (*Command, error) {
	d := decoder{b: b}
	c := d.command(max)
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

func (d *decoder) stringMap() map[string]string {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := string(d.bytes())
		m[k] = string(d.bytes())
	}
	return m
}

func (d *decoder) strings() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = string(d.bytes())
	}
	return ss
}

// msgs reads what appendMsgs wrote.
func (d *decoder) msgs(v uint8) []Msg {
	msgs := make([]Msg, d.count(4))
	for i := range msgs {
		d.msg(&msgs[i], v)
	}
	return msgs
}

// msg reads what appendMsg wrote.
func (d *decoder) msg(m *Msg, v uint8) {
	m.Prio, m.Delay = d.byte(), time.Duration(d.varint())
	m.ID, m.Body = string(d.bytes()), d.bytes()
	if v >= 2 {
		m.Key, m.Headers, m.TTL = string(d.bytes()), d.stringMap(), time.Duration(d.varint())
		m.Zstd = d.byte()&1 != 0
	}
}

// queueConfig reads a configuration in the engine's format.
func (d *decoder) queueConfig() *chute.QueueConfig {
	if d.err != nil {
		return nil
	}
	cfg, n, err := engine.ReadQueueConfig(d.b)
	if err != nil {
		d.fail("queue config: %v", err)
		return nil
	}
	d.b = d.b[n:]
	return &cfg
}

func (d *decoder) command(max uint8) *Command {
	v := d.byte()
	if d.err == nil && (v < firstVersion || v > max) {
		d.fail("command version %d (this binary reads %d..%d: upgrade it)", v, firstVersion, max)
	}
	c := &Command{Op: Op(d.byte()), v: v}
	if d.err == nil && (c.Op == 0 || c.Op >= opEnd || opVersion(c.Op) > v) {
		d.fail("unknown op %d in a version %d command", c.Op, v)
	}
	c.Node, c.ID, c.Time = d.uvarint(), d.uvarint(), d.varint()
	c.Client, c.ClientSeq = string(d.bytes()), d.uvarint()
	c.Queue = string(d.bytes())
	readConfig := func() {
		if v < 2 {
			c.Visibility, c.MaxDeliveries = time.Duration(d.varint()), int(d.varint())
			return
		}
		c.Config = d.queueConfig()
	}
	switch c.Op {
	case OpCreateQueue, OpUpdateQueue:
		readConfig()
	case OpSubscribe:
		c.Sub = string(d.bytes())
		readConfig()
		if v >= 2 {
			c.Filter = d.stringMap()
		}
	case OpCreateTopic:
		if v >= 2 && d.err == nil {
			t, n, err := engine.ReadTopicConfig(d.b)
			if err != nil {
				d.fail("topic config: %v", err)
				break
			}
			d.b = d.b[n:]
			if t != (chute.TopicConfig{}) {
				c.Topic = &t
			}
		}
	case OpCancel, OpRedriveMsgs:
		c.Refs = make([]chute.MessageRef, d.count(2))
		for i := range c.Refs {
			c.Refs[i] = chute.MessageRef{Seq: d.uvarint(), ID: string(d.bytes())}
		}
		if c.Op == OpRedriveMsgs && v >= 4 {
			c.Outboxes = d.strings()
		}
	case OpClusterVersion, OpSetBreaker, OpPlace:
		c.Max = int(d.varint())
	case OpUnsubscribe:
		c.Sub = string(d.bytes())
	case OpUnplace:
		if v >= 4 {
			c.Lease = time.Duration(d.varint())
		}
	case OpPublish:
		c.Session, c.SessionSeq = string(d.bytes()), d.uvarint()
		c.Msgs = d.msgs(v)
	case OpCreateSchedule:
		if d.err == nil {
			def, n, err := engine.ReadScheduleDef(d.b)
			if err != nil {
				d.fail("schedule: %v", err)
				break
			}
			d.b, c.Sched = d.b[n:], &def
		}
	case OpFire:
		c.SessionSeq = d.uvarint()
	case OpCarry:
		c.Carry = make([]CarryMsg, d.count(10))
		for i := range c.Carry {
			dm := &c.Carry[i]
			dm.Seq = d.uvarint()
			d.msg(&dm.Msg, v)
			if d.err != nil {
				break
			}
			ci, n, err := engine.ReadCarryIn(d.b)
			if err != nil {
				d.fail("carried: %v", err)
				break
			}
			d.b, dm.CarryIn = d.b[n:], ci
		}
	case OpTx:
		c.TxID = string(d.bytes())
		c.TxPubs = make([]TxPub, d.count(4))
		for i := range c.TxPubs {
			p := &c.TxPubs[i]
			p.Target, p.Session, p.SessionSeq = string(d.bytes()), string(d.bytes()), d.uvarint()
			p.Msgs = d.msgs(v)
		}
		c.TxSettles = make([]TxSettle, d.count(3))
		for i := range c.TxSettles {
			st := &c.TxSettles[i]
			st.Queue, st.Type = string(d.bytes()), engine.RecordType(d.byte())
			if d.err == nil && st.Type != engine.RecAck && st.Type != engine.RecNack && st.Type != engine.RecReturn {
				d.fail("settle type %v in a transaction", st.Type)
			}
			n := d.count(5) // queue ID, sequence, delivery, value, error: a byte each at least
			st.Items, st.QueueIDs = make([]engine.Item, n), make([]uint32, n)
			for j := range n {
				qid := d.uvarint()
				if qid > 1<<32-1 {
					d.fail("queue ID %d", qid)
				}
				st.QueueIDs[j] = uint32(qid)
				it := &st.Items[j]
				it.Seq = d.uvarint()
				deliv := d.uvarint()
				if deliv > 0xffff {
					d.fail("delivery count %d", deliv)
				}
				it.Deliv, it.Value, it.Err = uint16(deliv), d.varint(), string(d.bytes())
			}
		}
	case OpReceive:
		c.Max, c.Lease = int(d.varint()), time.Duration(d.varint())
	case OpRedrive:
		c.Max = int(d.varint())
		if v >= 4 {
			c.Outboxes = d.strings()
		}
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
			if v >= 2 {
				it.Err = string(d.bytes())
				if d.byte()&1 != 0 {
					if c.Unstarted == nil {
						c.Unstarted = make([]bool, n)
					}
					c.Unstarted[i] = true
				}
			}
		}
	}
	return c
}

// queueConfig is the engine config of an OpCreateQueue, OpUpdateQueue or
// OpSubscribe: a version 1 command's dead-letter queue is named after the
// queue (as the engine's default names it).
func (c *Command) queueConfig() chute.QueueConfig {
	cfg := c.config()
	if c.Config == nil {
		name := c.Queue
		if c.Op == OpSubscribe {
			name = c.Sub
		}
		cfg.DeadLetterQueue = name + chute.DeadLetterSuffix
	}
	return cfg
}
