package replica

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/engine"
)

// Shard is one replica's state machine: an engine, and the publish records
// whose blobs its messages point into. It applies committed entries in log
// order. Not safe for concurrent use.
type Shard struct {
	eng     *engine.Engine
	applied uint64
	// records holds each applied publish record by its log index: a
	// message's blob is at its Ref (index<<32 | offset in the record).
	// The same on every replica, so a state hash covers Refs too.
	records map[uint64][]byte
	// clients holds, per client of exactly-once commands, the last
	// command number applied and its refusal (Command.Client).
	clients map[string]clientState
	// version is the command version every member reads, as the log
	// recorded it (OpClusterVersion): commands above it are refused.
	// max is the latest this replica reads (LimitVersion).
	version, max uint8
	// places is a sharded cluster's directory (shard 0's; OpPlace): the
	// shard that holds each queue, topic and schedule name; placedAt the
	// time (the proposing leader's) each was last placed, for a
	// conditional OpUnplace.
	places   map[string]uint32
	placedAt map[string]int64
}

type clientState struct {
	seq uint64
	err error
}

// NewShard returns an empty shard, to apply a log from its first entry.
func NewShard() *Shard {
	return &Shard{eng: engine.New(), records: make(map[uint64][]byte), clients: make(map[string]clientState),
		version: firstVersion, max: commandVersion, places: map[string]uint32{}, placedAt: map[string]int64{}}
}

// Version is the command version the cluster has agreed on
// (OpClusterVersion): a leader proposes no command above it.
func (s *Shard) Version() uint8 { return s.version }

// MaxVersion is the latest command version this binary reads.
func MaxVersion() uint8 { return commandVersion }

// LimitVersion makes the shard read commands of at most version v, as a
// binary of that version would (an older member in a test of rolling
// upgrades); a shard already past it is refused.
func (s *Shard) LimitVersion(v uint8) error {
	if v < firstVersion || v > commandVersion {
		return fmt.Errorf("replica: command version %d (this binary reads %d..%d)", v, firstVersion, commandVersion)
	}
	if s.version > v {
		return fmt.Errorf("replica: the cluster runs command version %d; this node reads up to %d: upgrade it", s.version, v)
	}
	s.max = v
	return nil
}

// maxShard bounds a shard number in the directory.
const maxShard = 1 << 16

// PlacedError refuses to place a name that is placed in another shard
// (OpPlace); it matches engine.ErrExists.
type PlacedError struct {
	Name  string
	Shard uint32
}

func (e *PlacedError) Error() string {
	return fmt.Sprintf("%s: %q is in shard %d", engine.ErrExists, e.Name, e.Shard)
}

// Is makes errors.Is(err, engine.ErrExists) true.
func (e *PlacedError) Is(target error) bool { return target == engine.ErrExists }

// Placement is the shard the directory places name in (OpPlace).
func (s *Shard) Placement(name string) (uint32, bool) {
	sh, ok := s.places[name]
	return sh, ok
}

// Places is the directory: each placed name's shard (the shard's own
// map: not to be changed).
func (s *Shard) Places() map[string]uint32 { return s.places }

// Applied is the index of the last entry applied.
func (s *Shard) Applied() uint64 { return s.applied }

// Now is the engine's time: the latest command time it has seen.
func (s *Shard) Now() int64 { return s.eng.Now() }

// Result is what applying a command gave. Every replica gets the same;
// the proposer returns it to the client that asked.
type Result struct {
	Index uint64
	Cmd   *Command
	// Time is the engine's time the command ran at: its Time, or later
	// if the engine had already seen a later one.
	Time      int64
	Published []engine.PubResult
	Delivered []Delivery
	// Failed has, for an ack or nack, each item's error (nil: settled).
	Failed []error
	// Count is how many messages a redrive moved or a purge dropped.
	Count int64
	// Cancelled and Redriven are an OpCancel's and OpRedriveMsgs' outcome
	// per ref, as the broker reports them.
	Cancelled []chute.CancelResult
	Redriven  []chute.RedriveResult
	// TxPublished is an OpTx's results per publish; TxStale names its
	// stale receipts (Part indexes TxSettles) when it was refused for
	// them (Err then matches engine.ErrStaleReceipt).
	TxPublished [][]engine.PubResult
	TxStale     []engine.TxStale
	// Err is the command's refusal (an unknown queue, a bad message):
	// the same on every replica, not a failure of the shard.
	Err error
}

// Delivery is one message handed out by a receive.
type Delivery struct {
	QueueID  uint32 // the queue's ID (a receipt names it)
	Seq      uint64
	Deliv    uint16 // the lease's epoch: deliveries so far, this one included
	Deadline int64
	ID       string
	Key      string
	Headers  map[string]string
	Body     []byte
	Prio     uint8
	Pub      int64  // publish time, unix ns
	Counted  uint16 // deliveries that count towards max deliveries
	LastErr  string
	Dead     *engine.DeadInfo // a dead letter's
	// Zstd: Body is the zstd frame stored (the reader decompresses it:
	// internal/zbody).
	Zstd bool
}

// Apply applies the entry after the last one applied. Entries without a
// command (a new leader's no-op, membership changes) only move Applied;
// the Result's Cmd is nil for them. An error means the entry cannot be
// applied (it does not decode, or comes out of order): the replica's log
// is damaged and it must stop.
func (s *Shard) Apply(e consensus.Entry) (Result, error) {
	if e.Index != s.applied+1 {
		return Result{}, fmt.Errorf("replica: entry %d applied after %d", e.Index, s.applied)
	}
	s.applied = e.Index
	r := Result{Index: e.Index}
	if e.Kind != consensus.Command || len(e.Data) == 0 {
		return r, nil
	}
	c, err := decodeUpTo(e.Data, s.max)
	if err != nil {
		return Result{}, fmt.Errorf("replica: entry %d: %w", e.Index, err)
	}
	r.Cmd = c
	if c.Client != "" {
		if st, ok := s.clients[c.Client]; ok && c.ClientSeq <= st.seq {
			r.Err, r.Time = st.err, s.eng.Now() // applied before: not again
			return r, nil
		}
	}
	if c.v > s.version && c.Op != OpClusterVersion {
		// Proposed before the cluster agreed on its version (a leader
		// does not): refused alike everywhere.
		r.Err, r.Time = fmt.Errorf("%w: a version %d command in a cluster at version %d", chute.ErrNotReplicated, c.v, s.version), s.eng.Now()
		return r, nil
	}
	if err := s.run(c, e.Index, &r); err != nil {
		return Result{}, fmt.Errorf("replica: entry %d (%v): %w", e.Index, c.Op, err)
	}
	r.Time = s.eng.Now()
	if c.Client != "" && (r.Err == nil || c.Op != OpCarry) { // a refused carry is tried again
		s.clients[c.Client] = clientState{seq: c.ClientSeq, err: r.Err}
	}
	return r, nil
}

// run executes c; a refusal goes to r.Err, an error returned is the
// shard's own failure.
func (s *Shard) run(c *Command, index uint64, r *Result) error {
	e := s.eng
	switch c.Op {
	case OpCreateQueue:
		_, r.Err = e.CreateQueue(c.Time, c.Queue, c.queueConfig())
	case OpDeleteQueue:
		_, r.Err = e.DeleteQueue(c.Time, c.Queue)
	case OpUpdateQueue:
		_, r.Err = e.UpdateQueue(c.Time, c.Queue, c.queueConfig())
	case OpClusterVersion:
		switch v := c.Max; {
		case v > int(s.max):
			return fmt.Errorf("the cluster moved to command version %d; this node reads up to %d: upgrade it", v, s.max)
		case v > int(s.version):
			s.version = uint8(v)
		}
	case OpPlace:
		if c.Max < 0 || c.Max > maxShard {
			r.Err = fmt.Errorf("%w: shard %d", engine.ErrInvalidConfig, c.Max)
		} else if sh, ok := s.places[c.Queue]; ok && sh != uint32(c.Max) {
			r.Err = &PlacedError{Name: c.Queue, Shard: sh}
		} else {
			s.places[c.Queue] = uint32(c.Max)
			if s.version >= 4 { // (a version 3 snapshot has no times: none kept before, on any replica)
				s.placedAt[c.Queue] = c.Time
			}
		}
	case OpUnplace:
		// With a minimum age, a placement made (or made again) within it
		// stays: a delete that found the name missing in its shard frees
		// a create's leftover, not a create in progress.
		if at, ok := s.placedAt[c.Queue]; !ok || c.Lease == 0 || at <= c.Time-int64(c.Lease) {
			delete(s.places, c.Queue)
			delete(s.placedAt, c.Queue)
		}
	case OpCancel:
		return s.cancel(c, r)
	case OpRedriveMsgs:
		return s.redriveMsgs(c, r)
	case OpCreateTopic:
		var cfg engine.TopicConfig
		if c.Topic != nil {
			cfg = *c.Topic
		}
		_, r.Err = e.CreateTopic(c.Time, c.Queue, cfg)
	case OpDeleteTopic:
		_, r.Err = e.DeleteTopic(c.Time, c.Queue)
	case OpSubscribe:
		_, r.Err = e.Subscribe(c.Time, c.Queue, c.Sub, c.queueConfig(), c.Filter)
	case OpUnsubscribe:
		_, r.Err = e.Unsubscribe(c.Time, c.Queue, c.Sub)
	case OpRedrive:
		s.outboxes(c)
		_, r.Count, r.Err = e.Redrive(c.Time, c.Queue, int64(c.Max))
	case OpPurge:
		_, r.Count, r.Err = e.PurgeQueue(c.Time, c.Queue)
	case OpPause:
		_, r.Err = e.Pause(c.Time, c.Queue, true)
	case OpResume:
		// Clears a pause and closes an open or half-open breaker, as the
		// broker's ResumeQueue does.
		if _, r.Err = e.Pause(c.Time, c.Queue, false); r.Err == nil {
			_, r.Err = e.SetBreaker(c.Time, c.Queue, chute.BreakerClosed)
		}
	case OpSetBreaker:
		_, r.Err = e.SetBreaker(c.Time, c.Queue, chute.BreakerState(c.Max))
	case OpPublish:
		return s.publish(c, index, r)
	case OpTx:
		return s.tx(c, index, r)
	case OpCreateSchedule:
		if c.Sched == nil {
			return fmt.Errorf("%w: a schedule without its definition", ErrBadCommand)
		}
		_, r.Err = e.CreateSchedule(c.Time, c.Queue, *c.Sched)
	case OpDeleteSchedule:
		_, r.Err = e.DeleteSchedule(c.Time, c.Queue)
	case OpPauseSchedule, OpResumeSchedule:
		_, r.Err = e.PauseSchedule(c.Time, c.Queue, c.Op == OpPauseSchedule)
	case OpFire:
		return s.fire(c, index, r)
	case OpCarry:
		return s.carry(c, index, r)
	case OpReceive:
		_, ds, err := e.Receive(c.Time, c.Queue, c.Max, int64(c.Lease))
		if r.Err = err; err != nil {
			return nil
		}
		if r.Delivered, err = s.deliveries(ds); err != nil {
			return err
		}
	case OpAck, OpNack, OpExtend:
		if id, ok := e.QueueID(c.Queue); ok && c.QueueID != 0 && id != c.QueueID {
			// The receipts name an earlier queue of this name: stale.
			r.Failed = make([]error, len(c.Items))
			for i := range r.Failed {
				r.Failed[i] = engine.ErrStaleReceipt
			}
			return nil
		}
		return s.settle(c, r)
	default:
		return fmt.Errorf("%w: op %v", ErrBadCommand, c.Op)
	}
	return nil
}

// settle runs an ack, nack or extend.
func (s *Shard) settle(c *Command, r *Result) error {
	e := s.eng
	switch c.Op {
	case OpAck:
		_, r.Failed, r.Err = e.Ack(c.Time, c.Queue, c.Items)
	case OpNack:
		if c.Unstarted == nil {
			_, r.Failed, r.Err = e.Nack(c.Time, c.Queue, c.Items)
			break
		}
		// Handed back unstarted: returned (engine.Return), the rest
		// nacked; the failures back in the items' order.
		var nack, ret []engine.Item
		for i, it := range c.Items {
			if c.Unstarted[i] {
				ret = append(ret, it)
			} else {
				nack = append(nack, it)
			}
		}
		var fn, fr []error
		if len(nack) > 0 {
			if _, fn, r.Err = e.Nack(c.Time, c.Queue, nack); r.Err != nil {
				return nil
			}
		}
		if len(ret) > 0 {
			if _, fr, r.Err = e.Return(c.Time, c.Queue, ret); r.Err != nil {
				return nil
			}
		}
		r.Failed = make([]error, len(c.Items))
		for i := range c.Items {
			if c.Unstarted[i] {
				r.Failed[i], fr = fr[0], fr[1:]
			} else {
				r.Failed[i], fn = fn[0], fn[1:]
			}
		}
	case OpExtend:
		items := make([]engine.Item, len(c.Items))
		for i, it := range c.Items {
			items[i] = engine.Item{Seq: it.Seq, Deliv: it.Deliv, Value: int64(c.Lease)}
		}
		_, r.Failed, r.Err = e.Extend(c.Time, c.Queue, items)
	}
	return nil
}

// pubMsgs is msgs in the engine's form, their delays and TTLs counted
// from now.
func pubMsgs(msgs []Msg, now int64) []engine.PubMsg {
	pms := make([]engine.PubMsg, len(msgs))
	for i, m := range msgs {
		pms[i] = engine.PubMsg{Prio: m.Prio, ID: m.ID, Key: m.Key, Headers: m.Headers, Body: m.Body, Zstd: m.Zstd}
		if m.Delay > 0 {
			pms[i].DeliverAt = now + int64(m.Delay)
		}
		if m.TTL > 0 {
			pms[i].ExpireAt = now + int64(m.TTL)
		}
	}
	return pms
}

func (s *Shard) publish(c *Command, index uint64, r *Result) error {
	e := s.eng
	now := max(c.Time, e.Now()) // the time PreparePublish runs at: delays count from it
	rec, res, err := e.PreparePublish(now, c.Queue, engine.Session{ID: c.Session, First: c.SessionSeq}, pubMsgs(c.Msgs, now))
	if r.Err = err; err != nil {
		return nil
	}
	r.Published = res
	if rec == nil { // every message a duplicate
		return nil
	}
	return s.store(rec, index)
}

// store applies a prepared record whose blobs live in it, and keeps it
// under its log index (its messages' Refs point into it).
func (s *Shard) store(rec *engine.Record, index uint64) error {
	buf := rec.Encode(nil)
	if err := s.eng.Apply(rec, index<<32); err != nil {
		return fmt.Errorf("apply a prepared %v record: %w", rec.Type, err)
	}
	s.records[index] = buf
	return nil
}

// fire publishes the message of schedule c.Queue for slot c.SessionSeq,
// in the schedule's producer session: a slot at or below the last one
// stored is a duplicate (exactly once per slot, whoever proposed it).
func (s *Shard) fire(c *Command, index uint64, r *Result) error {
	e := s.eng
	st, ok := e.Schedule(c.Queue)
	if !ok {
		r.Err = fmt.Errorf("%w: %q", chute.ErrScheduleNotFound, c.Queue)
		return nil
	}
	now := max(c.Time, e.Now())
	rec, res, err := e.PreparePublish(now, st.Def.Target, engine.Session{ID: engine.ScheduleSession(c.Queue), First: c.SessionSeq},
		[]engine.PubMsg{st.Def.Msg(now)})
	if r.Err = err; err != nil {
		return nil
	}
	r.Published = res
	if rec == nil {
		return nil
	}
	return s.store(rec, index)
}

// carry puts the messages c carries into c.Queue (engine.PrepareCarry),
// but those its outbox (c.Client) numbered at or below the last ones put
// in: a retry puts in only what its first attempt did not. Count is how
// many went in; Published has, per message carried, its sequence in the
// queue or Duplicate (put in before).
func (s *Shard) carry(c *Command, index uint64, r *Result) error {
	if c.Client == "" {
		r.Err = fmt.Errorf("%w: messages carried without their outbox", engine.ErrInvalidConfig)
		return nil
	}
	last := s.clients[c.Client].seq
	var msgs []engine.PubMsg
	var carried []engine.CarryIn
	r.Published = make([]engine.PubResult, len(c.Carry))
	for i := range c.Carry {
		d := &c.Carry[i]
		if d.Seq <= last {
			r.Published[i].Duplicate = true
			continue
		}
		m := &d.Msg
		msgs = append(msgs, engine.PubMsg{Prio: m.Prio, ID: m.ID, Key: m.Key, Headers: m.Headers, Body: m.Body, Zstd: m.Zstd})
		carried = append(carried, d.CarryIn)
	}
	if len(msgs) == 0 {
		return nil
	}
	rec, err := s.eng.PrepareCarry(max(c.Time, s.eng.Now()), c.Queue, msgs, carried)
	if r.Err = err; err != nil {
		r.Published = nil
		return nil
	}
	r.Count = int64(len(msgs))
	seq := rec.FirstSeq
	for i := range r.Published {
		if !r.Published[i].Duplicate {
			r.Published[i].Seq, seq = seq, seq+1
		}
	}
	return s.store(rec, index)
}

// Oldest is up to n of queue's ready messages with the lowest sequences,
// with their blobs (engine.Oldest).
func (s *Shard) Oldest(queue string, n int) ([]Delivery, error) {
	ds, err := s.eng.Oldest(queue, n)
	if err != nil {
		return nil, err
	}
	return s.deliveries(ds)
}

// ReadyQueues calls fn with every queue that has ready messages.
func (s *Shard) ReadyQueues(fn func(name string)) { s.eng.ReadyQueues(fn) }

// BreakerQueues calls fn for every queue whose breaker is enabled or not
// closed (breaker.Set.Tick).
func (s *Shard) BreakerQueues(fn func(engine.BreakerQueue)) { s.eng.BreakerQueues(fn) }

// Schedules is every schedule's state, sorted by name.
func (s *Shard) Schedules() []engine.ScheduleState { return s.eng.Schedules() }

// Schedule is one schedule's state.
func (s *Shard) Schedule(name string) (engine.ScheduleState, bool) { return s.eng.Schedule(name) }

// tx runs a transaction as the broker's Commit does: receipts of a queue
// deleted since are stale, receipts of another queue invalid; then the
// engine checks the rest and builds one record, all or nothing.
func (s *Shard) tx(c *Command, index uint64, r *Result) error {
	e := s.eng
	now := max(c.Time, e.Now())
	etx := engine.Tx{ID: c.TxID, Pubs: make([]engine.TxPub, len(c.TxPubs)), Settle: make([]engine.TxSettle, len(c.TxSettles))}
	for i, p := range c.TxPubs {
		etx.Pubs[i] = engine.TxPub{Target: p.Target, Session: engine.Session{ID: p.Session, First: p.SessionSeq}, Msgs: pubMsgs(p.Msgs, now)}
	}
	for i, st := range c.TxSettles {
		id, ok := e.QueueID(st.Queue)
		if !ok {
			r.Err = fmt.Errorf("%w: %q", chute.ErrQueueNotFound, st.Queue)
			return nil
		}
		for j, qid := range st.QueueIDs {
			switch {
			case qid == id:
			case e.QueueExists(qid):
				r.Err = fmt.Errorf("%w: a receipt of another queue, not %q", chute.ErrInvalidReceipt, st.Queue)
				return nil
			default:
				r.TxStale = append(r.TxStale, engine.TxStale{Part: i, Item: j})
			}
		}
		etx.Settle[i] = engine.TxSettle{Queue: st.Queue, Type: st.Type, Items: st.Items}
	}
	if len(r.TxStale) > 0 {
		r.Err = &engine.StaleError{Items: r.TxStale}
		return nil
	}
	defer e.ReleaseTx()
	rec, res, err := e.PrepareTx(now, &etx)
	if se, ok := err.(*engine.StaleError); ok {
		r.TxStale = slices.Clone(se.Items)
	}
	if err != nil {
		r.Err = err
		return nil
	}
	r.TxPublished = make([][]engine.PubResult, len(res)) // the engine reuses res
	for i, rs := range res {
		r.TxPublished[i] = slices.Clone(rs)
	}
	if rec == nil { // a remembered ID, or nothing to store
		return nil
	}
	return s.store(rec, index)
}

// cancel cancels the ready and delayed messages of c.Refs (as the
// broker's CancelMessages).
func (s *Shard) cancel(c *Command, r *Result) error {
	_, r.Cancelled, r.Err = s.eng.CancelRefs(c.Time, c.Queue, c.Refs)
	return nil
}

// redriveMsgs moves the dead letters of c.Refs back to their queues (as
// the broker's RedriveMessages).
func (s *Shard) redriveMsgs(c *Command, r *Result) error {
	s.outboxes(c)
	_, r.Redriven, r.Err = s.eng.RedriveRefs(c.Time, c.Queue, c.Refs)
	return nil
}

// outboxes makes each of c.Outboxes (source queues in other shards of
// the dead letters a redrive moves) a queue here, an outbox, unless it
// is one already: a queue without a dead-letter queue or a delivery
// limit, from which the forwarder carries the letters to their shard.
func (s *Shard) outboxes(c *Command) {
	for _, name := range c.Outboxes {
		if _, ok := s.eng.QueueID(name); !ok {
			s.eng.CreateQueue(c.Time, name, engine.DeadLetterQueueConfig()) // a refusal (a topic of that name): the letters stay
		}
	}
}

// DeadSources is the source queues of the dead letters that dead-letter
// queue name holds (engine.DeadSources).
func (s *Shard) DeadSources(name string) []string { return s.eng.DeadSources(name) }

// Lookup is one message of queue, by sequence or ID, as of the last
// command applied (as the broker's GetMessage).
func (s *Shard) Lookup(queue string, ref chute.MessageRef) (chute.MessageInfo, error) {
	return s.eng.LookupRef(queue, ref)
}

// deliveries reads the IDs and bodies of ds.
func (s *Shard) deliveries(ds []engine.Delivered) ([]Delivery, error) {
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		b, err := s.blob(d.Ref, d.Size)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", d.Seq, err)
		}
		out[i] = Delivery{QueueID: d.QueueID, Seq: d.Seq, Deliv: d.Deliv, Deadline: d.Deadline, ID: b.ID, Key: b.Key,
			Headers: b.Headers, Body: b.Body, Zstd: b.Zstd, Prio: d.Prio, Pub: d.Pub, Counted: d.Counted, LastErr: d.LastErr, Dead: d.Dead}
	}
	return out, nil
}

// Peek is up to n of queue's next messages, without leasing them (the
// engine's order of delivery), as of the last command applied.
func (s *Shard) Peek(queue string, n int) ([]Delivery, error) {
	ds, err := s.eng.Peek(queue, n)
	if err != nil {
		return nil, err
	}
	return s.deliveries(ds)
}

// blob reads a message's stored blob (ID, key, headers, body) from the
// record its Ref points into.
func (s *Shard) blob(ref uint64, size uint32) (engine.Blob, error) {
	rec, off := s.records[ref>>32], uint64(uint32(ref))
	if off+uint64(size) > uint64(len(rec)) {
		return engine.Blob{}, errors.New("blob outside its record")
	}
	return engine.ParseBlob(rec[off : off+uint64(size)])
}

// content is a measure of what a snapshot of the shard holds, to tell
// how much it changed between two times (Replica.Compact): the blob
// bytes its messages refer to, and snapshotPerMessage for each message.
func (s *Shard) content() int64 {
	return s.eng.LiveBytes() + s.eng.Entries()*snapshotPerMessage
}

// snapshotPerMessage is about what a queued message costs a snapshot
// besides its body (its index entry and its record's header).
const snapshotPerMessage = 64

// CompressMin says whether target (a queue, or a topic one of whose
// subscriptions does) stores bodies compressed, and from what size.
func (s *Shard) CompressMin(target string) (int64, bool) { return s.eng.CompressMin(target) }

// Snapshot is the shard's state as of Applied, for a Raft snapshot: the
// engine's snapshot and the publish records its messages still point
// into (the others are dropped from memory too).
//
//	snapshot := version applied len engine nrecords (index len record)* clients [cluster version [nplaces (name shard [placed at])*]]
//
// (Version 2 has the cluster's command version at its end, version 3 the
// directory after it, version 4 the time each name was placed; a shard
// writes the version its cluster's command version says every member
// reads.)
func (s *Shard) Snapshot() []byte {
	_, assemble := s.SnapshotLater()
	return assemble()
}

// SnapshotLater is Snapshot in two steps: what it returns is taken now,
// and assemble, which may run on another goroutine while the shard goes
// on, copies it into the snapshot (of size bytes). Now: the engine's
// state, which holds no bodies, and the records its messages point into,
// by reference — a record is written once (store) and never changed. The
// copy of those records is most of a large snapshot's time (measured,
// BenchmarkShardSnapshot: 80,000 messages of 1 KiB, 34–43 ms in all, of
// which the part taken now is 2.2 ms; on a node, into fresh memory, a
// snapshot of 141 MB took 0.3–1.0 s), and a node's loop does not wait for
// it (Replica.Compact).
func (s *Shard) SnapshotLater() (size int, assemble func() []byte) {
	s.gc()
	chunks := s.eng.Snapshot(1 << 16)
	idx := slices.Sorted(maps.Keys(s.records))
	recs := make([][]byte, len(idx))
	for k, i := range idx {
		recs[k] = s.records[i]
	}
	head := make([]byte, 0, 1+2*binary.MaxVarintLen64)
	head = append(head, min(s.version, snapshotVersion))
	head = binary.AppendUvarint(head, s.applied)
	tail := s.appendClients(nil)
	if s.version > firstVersion {
		tail = append(tail, s.version)
	}
	if s.version >= 3 {
		tail = s.appendPlaces(tail, s.version >= 4)
	}
	var engLen int
	for _, c := range chunks {
		engLen += len(c)
	}
	size = len(head) + binary.MaxVarintLen64 + engLen + binary.MaxVarintLen64 + len(tail)
	for _, r := range recs {
		size += 2*binary.MaxVarintLen64 + len(r)
	}
	return size, func() []byte {
		// One allocation of about the whole size: grown by append, a
		// snapshot of 143 MB took 4.8–6.4 s on the node's loop (each
		// growth copies all of it, into memory the kernel has to clear
		// and map), and the followers held an election meanwhile
		// (docs/replication.md, "Publishes through an election, and a
		// drained backlog").
		buf := make([]byte, 0, size)
		buf = append(buf, head...)
		buf = binary.AppendUvarint(buf, uint64(engLen))
		for _, c := range chunks {
			buf = append(buf, c...)
		}
		buf = binary.AppendUvarint(buf, uint64(len(idx)))
		for k, i := range idx {
			buf = binary.AppendUvarint(buf, i)
			buf = binary.AppendUvarint(buf, uint64(len(recs[k])))
			buf = append(buf, recs[k]...)
		}
		return append(buf, tail...)
	}
}

// appendPlaces: count, then per name (in order) the name and its shard.
func (s *Shard) appendPlaces(buf []byte, times bool) []byte {
	names := slices.Sorted(maps.Keys(s.places))
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, n := range names {
		buf = appendString(buf, n)
		buf = binary.AppendUvarint(buf, uint64(s.places[n]))
		if times {
			buf = binary.AppendVarint(buf, s.placedAt[n])
		}
	}
	return buf
}

// appendClients: count, then per client (in name order) its name, last
// command number and refusal (errCode, then its text).
func (s *Shard) appendClients(buf []byte) []byte {
	names := slices.Sorted(maps.Keys(s.clients))
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, n := range names {
		st := s.clients[n]
		buf = appendString(buf, n)
		buf = binary.AppendUvarint(buf, st.seq)
		code, text := errCode(st.err)
		buf = append(buf, code)
		buf = appendString(buf, text)
	}
	return buf
}

// A remembered refusal is stored as the engine error it wraps (so that
// errors.Is answers the same after a restore) and its text.
var clientErrs = [...]error{1: engine.ErrExists, 2: engine.ErrQueueNotFound, 3: engine.ErrNotFound, 4: engine.ErrInvalidConfig,
	5: engine.ErrTopicNotFound}

func errCode(err error) (byte, string) {
	if err == nil {
		return 0, ""
	}
	for i, e := range clientErrs {
		if e != nil && errors.Is(err, e) {
			return byte(i), err.Error()
		}
	}
	return 255, err.Error()
}

func errOf(code byte, text string) error {
	switch {
	case code == 0:
		return nil
	case int(code) < len(clientErrs):
		return &remembered{text: text, is: clientErrs[code]}
	}
	return errors.New(text)
}

// remembered is a refusal restored from a snapshot: its text, and the
// engine error it wrapped.
type remembered struct {
	text string
	is   error
}

func (r *remembered) Error() string { return r.text }
func (r *remembered) Unwrap() error { return r.is }

// snapshotVersion is the latest version of a shard snapshot, its first
// byte.
const snapshotVersion = 4

// gc forgets the publish records no message points into any more.
func (s *Shard) gc() {
	for i := range s.records {
		if s.eng.Live(uint32(i)).Messages == 0 {
			delete(s.records, i)
		}
	}
}

// RestoreShard rebuilds a shard from a Snapshot, to apply the log after
// its index.
func RestoreShard(b []byte) (*Shard, error) {
	d := decoder{b: b}
	v := d.byte()
	if d.err == nil && (v == 0 || v > snapshotVersion) {
		return nil, fmt.Errorf("%w: snapshot version %d (this binary reads 1..%d: upgrade it)", ErrBadCommand, v, snapshotVersion)
	}
	applied := d.uvarint()
	eng := d.bytes()
	n := d.count(2)
	records := make(map[uint64][]byte, n)
	for range n {
		i := d.uvarint()
		records[i] = append([]byte(nil), d.bytes()...)
	}
	nc := d.count(3)
	clients := make(map[string]clientState, nc)
	for range nc {
		name := string(d.bytes())
		seq := d.uvarint()
		code := d.byte()
		clients[name] = clientState{seq: seq, err: errOf(code, string(d.bytes()))}
	}
	version := uint8(firstVersion)
	if v >= 2 {
		if version = d.byte(); d.err == nil && (version <= firstVersion || version > commandVersion) {
			d.fail("cluster version %d (this binary reads up to %d: upgrade it)", version, commandVersion)
		}
	}
	places, placedAt := map[string]uint32{}, map[string]int64{}
	if v >= 3 {
		for range d.count(2) {
			name := string(d.bytes())
			places[name] = uint32(d.uvarint())
			if v >= 4 {
				placedAt[name] = d.varint()
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the snapshot", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrBadCommand, d.err)
	}
	e, err := engine.Restore(eng)
	if err != nil {
		return nil, fmt.Errorf("replica: snapshot: %w", err)
	}
	return &Shard{eng: e, applied: applied, records: records, clients: clients, version: version, max: commandVersion, places: places, placedAt: placedAt}, nil
}

// QueueStats is a queue's statistics as of the last command applied.
func (s *Shard) QueueStats(name string) (engine.QueueStats, error) { return s.eng.QueueStats(name) }

// Counts are queue name's ready, delayed and leased messages; ok false:
// no such queue.
func (s *Shard) Counts(name string) (ready, delayed, inflight int64, ok bool) {
	return s.eng.Counts(name)
}

// NextEvent is the time of the engine's earliest timer (a delay, a lease,
// a TTL), or 0 when none: time, which only commands bring, makes it
// happen.
func (s *Shard) NextEvent() int64 { return s.eng.NextEvent() }

// IsTopic says whether name is a topic.
func (s *Shard) IsTopic(name string) bool { return s.eng.IsTopic(name) }

// Topics is every topic's statistics, sorted by name.
func (s *Shard) Topics() []engine.TopicStats { return s.eng.Topics() }

// Subscriptions names the subscriptions (queues) of topic name; nil for
// a queue or an unknown name.
func (s *Shard) Subscriptions(name string) []string { return s.eng.Subscriptions(name) }

// Queues is every queue's statistics, sorted by name.
func (s *Shard) Queues() []engine.QueueStats { return s.eng.Queues() }

// Hash is a digest of the shard's whole logical state (the engine's
// snapshot and the exactly-once clients):
// replicas at the same applied index have the same hash.
func (s *Shard) Hash() [32]byte {
	h := sha256.New()
	for _, chunk := range s.eng.Snapshot(1 << 16) {
		h.Write(chunk)
	}
	h.Write(s.appendClients(nil))
	if s.version > firstVersion {
		h.Write([]byte{s.version})
	}
	if s.version >= 3 {
		h.Write(s.appendPlaces(nil, s.version >= 4))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
