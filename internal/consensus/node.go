// Package consensus is chute's small interface over etcd's Raft
// (go.etcd.io/raft/v3), driven through its RawNode: no goroutines and no
// clock of its own, so that a whole cluster runs in one goroutine of a
// seeded simulation (internal/replica/sim) exactly as it runs in a server.
// Nothing else in chute imports the Raft library: the rest sees Entries,
// Messages and Updates of this package.
//
// The owner of a Node drives it from one goroutine:
//
//	Tick every tick; Receive each message from a peer; Propose commands.
//	When HasUpdate: u := Update(); make u.HardState and u.Entries durable
//	(fsync when u.MustSync); then send u.Messages; then apply
//	u.Committed in order; then Advance.
//
// That order is the library's contract (persist before send; apply only
// what is committed). A node that restarts is built with Restart from what
// it had made durable, and re-applies its committed entries from its last
// snapshot on.
package consensus

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Errors of a Node.
var (
	// ErrNotLeader: a proposal on a node that knows no leader to forward
	// it to, or a command only a leader takes.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrBadMessage: bytes from the network that are not a Raft message,
	// or a message not addressed to this node.
	ErrBadMessage = errors.New("consensus: bad message")
)

// Config is a node's identity and timing. Ticks are the owner's: a tick
// is whatever period it calls Tick at.
type Config struct {
	ID uint64
	// Peers are the voting members at bootstrap (this node among them).
	// Ignored by Restart: membership then comes from the log.
	Peers []uint64
	// ElectionTicks is how many ticks without a leader's word start an
	// election (randomised by the library between it and twice it);
	// default 10. HeartbeatTicks is the leader's heartbeat period, default 1.
	ElectionTicks, HeartbeatTicks int
	// MaxMessageBytes bounds the entries one append message carries
	// (default 1 MiB); MaxInflight the append messages sent and not
	// acknowledged per follower (default 256).
	MaxMessageBytes uint64
	MaxInflight     int
	// CatchUpEntries and CatchUpBytes: what Compact keeps of the log
	// before a snapshot, for a follower a little behind (at most this
	// many entries, and of at most this many bytes; 0: none). Without
	// them, a compaction at the applied index left the slower follower,
	// whose log trails the commit index, to a snapshot: of 141 MB, sent
	// on the stream its heartbeats take. That is the likely cause of the
	// elections a 3-node W6 held at that compaction, which ended with
	// these entries kept (docs/replication.md, "A checkpoint off the
	// loop"). etcd keeps 5,000 entries for the same reason.
	CatchUpEntries int
	CatchUpBytes   uint64
}

func (c Config) withDefaults() Config {
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 1 << 20
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 256
	}
	return c
}

// HardState is what must be durable about the node's Raft state besides
// its log: the current term, the vote in it, and the commit index.
type HardState struct {
	Term, Vote, Commit uint64
}

// EntryKind tells a command from the library's own entries.
type EntryKind uint8

const (
	// Command is an entry proposed by the owner (Data is its command; an
	// empty Data is the no-op a new leader appends: apply nothing).
	Command EntryKind = iota
	// Membership is a configuration change, applied by the Node itself;
	// it is persisted like any entry and applied as nothing by the owner.
	Membership
)

// Entry is one log entry.
type Entry struct {
	Index, Term uint64
	Kind        EntryKind
	Data        []byte
}

// Message is a Raft message between two nodes, in its wire form.
// Snapshot marks one that carries a snapshot: the owner reports whether
// it arrived (ReportSnapshot).
type Message struct {
	From, To uint64
	Data     []byte
	Snapshot bool
}

// Durable is what a node had made durable, from which Restart rebuilds it:
// its hard state, its latest snapshot (nil: none), and its log after the
// snapshot (consecutive entries from the snapshot's index + 1, or from 1).
type Durable struct {
	HardState HardState
	Snapshot  *Snapshot
	Entries   []Entry
}

// Snapshot is the owner's state machine as of a log index: what replaces
// the log up to Index. Voters and Learners are the membership then.
type Snapshot struct {
	Index, Term      uint64
	Voters, Learners []uint64
	Data             []byte
}

// Update is what the node asks of its owner, in the order of the package
// doc: make Snapshot (if not nil: one received from the leader), then
// Entries and HardState (if not nil) durable (Entries replace any the log
// holds at their indexes and after), send Messages, restore the state
// machine from Snapshot, apply Committed.
type Update struct {
	HardState *HardState
	Snapshot  *Snapshot
	Entries   []Entry
	MustSync  bool
	// Leader: this node led when the Update was made. A leader may send
	// its Messages before its own Entries are durable (the Raft thesis,
	// §10.2.1: its append then runs in parallel with the followers'); a
	// follower sends only after, for its answers promise what it saved.
	Leader    bool
	Messages  []Message
	Committed []Entry
}

// Node is one member of a Raft group. Not safe for concurrent use.
type Node struct {
	id      uint64
	cfg     Config
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	ready   *raft.Ready      // handed out by Update, not yet advanced
	conf    raftpb.ConfState // the membership as of the last entry applied
	changes []MemberChange   // applied since the last TakeMemberChanges
}

// MemberChange is a membership change the node applied: ID became a
// learner (AddLearner), a voter (Promote) or left (Remove). Context is
// what the proposer attached (ProposeMemberChange): the server puts the
// member's address there.
type MemberChange struct {
	Kind    MemberChangeKind
	ID      uint64
	Context []byte
}

// MemberChangeKind is what a MemberChange did.
type MemberChangeKind uint8

// The kinds of membership change.
const (
	AddLearner MemberChangeKind = iota + 1
	Promote
	Remove
)

func (k MemberChangeKind) String() string {
	switch k {
	case AddLearner:
		return "add"
	case Promote:
		return "promote"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("MemberChangeKind(%d)", uint8(k))
}

// Bootstrap starts a member of a new group whose voters are cfg.Peers.
// Every member of a new group bootstraps with the same Peers.
func Bootstrap(cfg Config) (*Node, error) {
	if len(cfg.Peers) == 0 {
		return nil, errors.New("consensus: bootstrap without peers")
	}
	n, err := newNode(cfg, raft.NewMemoryStorage(), 0)
	if err != nil {
		return nil, err
	}
	peers := make([]raft.Peer, len(cfg.Peers))
	for i, id := range cfg.Peers {
		peers[i] = raft.Peer{ID: id}
	}
	if err := n.rn.Bootstrap(peers); err != nil {
		return nil, fmt.Errorf("consensus: bootstrap: %w", err)
	}
	return n, nil
}

// Open starts a node from what it had made durable: a restart when there
// is anything, else a new member that bootstraps a group with cfg.Peers,
// or that waits to be added to a running group (join).
func Open(cfg Config, d Durable, join bool) (*Node, error) {
	switch empty := d.HardState == (HardState{}) && len(d.Entries) == 0 && d.Snapshot == nil; {
	case empty && join:
		return Join(cfg)
	case empty:
		return Bootstrap(cfg)
	}
	return Restart(cfg, d)
}

// Join starts a node that is to join an existing group (the group adds it
// as a learner): no membership of its own, it waits for the leader's log
// or snapshot. A node that lost its data joins under a new ID, never its
// old one: it may have voted or acknowledged entries under the old one.
func Join(cfg Config) (*Node, error) { return newNode(cfg, raft.NewMemoryStorage(), 0) }

// Restart rebuilds a member from what it had made durable. Its committed
// entries come out of Update again, to be applied from the start (the
// owner's state machine starts empty).
func Restart(cfg Config, d Durable) (*Node, error) {
	st := raft.NewMemoryStorage()
	var applied uint64
	var conf raftpb.ConfState
	if d.Snapshot != nil {
		snap := snapshotPB(d.Snapshot)
		if err := st.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("consensus: restart: %w", err)
		}
		applied, conf = d.Snapshot.Index, snap.Metadata.ConfState
	}
	if err := st.SetHardState(raftpb.HardState{Term: d.HardState.Term, Vote: d.HardState.Vote, Commit: d.HardState.Commit}); err != nil {
		return nil, err
	}
	if err := st.Append(toPB(d.Entries)); err != nil {
		return nil, fmt.Errorf("consensus: restart: %w", err)
	}
	n, err := newNode(cfg, st, applied)
	if err != nil {
		return nil, err
	}
	n.conf = conf
	return n, nil
}

func newNode(cfg Config, st *raft.MemoryStorage, applied uint64) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.ID == 0 {
		return nil, errors.New("consensus: node ID 0")
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         st,
		Applied:         applied,
		MaxSizePerMsg:   cfg.MaxMessageBytes,
		MaxInflightMsgs: cfg.MaxInflight,
		// A leader that loses touch with a quorum steps down, so that a
		// partitioned leader stops taking proposals it cannot commit;
		// pre-vote keeps a node that rejoins from disrupting the group
		// with a higher term.
		CheckQuorum: true,
		PreVote:     true,
		Logger:      quietLogger{},
	})
	if err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	return &Node{id: cfg.ID, cfg: cfg, rn: rn, storage: st}, nil
}

// ID is the node's identity.
func (n *Node) ID() uint64 { return n.id }

// Tick moves the node's logical clock one tick (elections, heartbeats).
func (n *Node) Tick() { n.rn.Tick() }

// Receive steps a message from a peer.
func (n *Node) Receive(m Message) error {
	var pm raftpb.Message
	if err := pm.Unmarshal(m.Data); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if pm.To != n.id || pm.From != m.From {
		return fmt.Errorf("%w: from %d to %d, delivered from %d to %d", ErrBadMessage, pm.From, pm.To, m.From, n.id)
	}
	if err := n.rn.Step(pm); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		return err
	}
	return nil
}

// Propose appends a command to the log (through the leader: a follower
// forwards it). It is not committed until it comes out in Committed; a
// proposal can be lost (a leader change), so the owner matches what it
// applies to what it proposed and retries what never came.
func (n *Node) Propose(data []byte) error {
	if len(data) == 0 {
		return errors.New("consensus: empty command") // the no-op's form
	}
	if err := n.rn.Propose(data); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrNotLeader
		}
		return err
	}
	return nil
}

// Membership changes, one at a time (the library refuses a second while
// the first is not applied). A new member joins as a learner (it gets the
// log or a snapshot and does not vote), is promoted once caught up, and a
// member is removed. Only the leader takes them.

// AddLearner proposes id as a learner.
func (n *Node) AddLearner(id uint64) error { return n.ProposeMemberChange(AddLearner, id, nil) }

// Promote proposes making the learner id a voter.
func (n *Node) Promote(id uint64) error { return n.ProposeMemberChange(Promote, id, nil) }

// Remove proposes removing id (a voter or a learner).
func (n *Node) Remove(id uint64) error { return n.ProposeMemberChange(Remove, id, nil) }

// ProposeMemberChange proposes a change with a context every member gets
// back from TakeMemberChanges when it applies the change.
func (n *Node) ProposeMemberChange(kind MemberChangeKind, id uint64, context []byte) error {
	t, ok := confTypes[kind]
	if !ok {
		return fmt.Errorf("consensus: %v", kind)
	}
	if !n.Status().IsLeader {
		return ErrNotLeader
	}
	if id == 0 {
		return errors.New("consensus: member ID 0")
	}
	cc := raftpb.ConfChangeV2{Changes: []raftpb.ConfChangeSingle{{Type: t, NodeID: id}}, Context: context}
	if err := n.rn.ProposeConfChange(cc); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrNotLeader
		}
		return err
	}
	return nil
}

// Match is how far the leader knows id's log to match its own (0 when
// this node does not lead or id is not a member).
func (n *Node) Match(id uint64) uint64 {
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return 0
	}
	return st.Progress[id].Match
}

// TransferLeader asks the library to hand leadership to voter to (on
// the leader; it sends to a follower that has caught up a message to
// campaign at once, and proposals are dropped until it has, or an
// election timeout passed).
func (n *Node) TransferLeader(to uint64) { n.rn.TransferLeader(to) }

// Campaign starts an election at once (tests, leadership transfer).
func (n *Node) Campaign() error { return n.rn.Campaign() }

// Status is what the node knows of the group.
type Status struct {
	ID, Leader, Term uint64
	Commit, Applied  uint64
	IsLeader         bool
}

// Status reports the node's view.
func (n *Node) Status() Status {
	s := n.rn.BasicStatus()
	return Status{ID: n.id, Leader: s.Lead, Term: s.Term, Commit: s.Commit, Applied: s.Applied, IsLeader: s.RaftState == raft.StateLeader}
}

// HasUpdate says whether Update has work, and no Update is outstanding.
func (n *Node) HasUpdate() bool { return n.ready == nil && n.rn.HasReady() }

// Update hands out the next piece of work (see the package doc); the owner
// calls Advance once it has done it, before the next Update.
func (n *Node) Update() Update {
	if n.ready != nil {
		panic("consensus: Update before Advance")
	}
	rd := n.rn.Ready()
	n.ready = &rd
	u := Update{MustSync: rd.MustSync, Entries: fromPB(rd.Entries), Leader: n.rn.BasicStatus().RaftState == raft.StateLeader}
	if !raft.IsEmptyHardState(rd.HardState) {
		u.HardState = &HardState{Term: rd.HardState.Term, Vote: rd.HardState.Vote, Commit: rd.HardState.Commit}
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		u.Snapshot = snapshotOf(rd.Snapshot)
	}
	for _, m := range rd.Messages {
		b, err := m.Marshal()
		if err != nil {
			panic(fmt.Sprintf("consensus: marshal a raft message: %v", err))
		}
		u.Messages = append(u.Messages, Message{From: m.From, To: m.To, Data: b, Snapshot: m.Type == raftpb.MsgSnap})
	}
	u.Committed = fromPB(rd.CommittedEntries)
	return u
}

// Advance tells the node the last Update is done: its entries durable, its
// messages sent, its committed entries applied.
func (n *Node) Advance() {
	rd := n.ready
	if rd == nil {
		panic("consensus: Advance without Update")
	}
	n.ready = nil
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			panic(fmt.Sprintf("consensus: apply a snapshot: %v", err))
		}
		n.conf = rd.Snapshot.Metadata.ConfState
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			panic(fmt.Sprintf("consensus: hard state: %v", err))
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		panic(fmt.Sprintf("consensus: append: %v", err))
	}
	for _, e := range rd.CommittedEntries {
		n.applyMembership(e)
	}
	n.rn.Advance(*rd)
}

// applyMembership applies a committed configuration change.
func (n *Node) applyMembership(e raftpb.Entry) {
	switch e.Type {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("consensus: a committed conf change does not decode: %v", err))
		}
		n.conf = *n.rn.ApplyConfChange(cc)
		n.noteChanges(cc.AsV2())
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := cc.Unmarshal(e.Data); err != nil {
			panic(fmt.Sprintf("consensus: a committed conf change does not decode: %v", err))
		}
		n.conf = *n.rn.ApplyConfChange(cc)
		n.noteChanges(cc)
	}
}

// confTypes are the library's change types of the kinds.
var confTypes = map[MemberChangeKind]raftpb.ConfChangeType{AddLearner: raftpb.ConfChangeAddLearnerNode,
	Promote: raftpb.ConfChangeAddNode, Remove: raftpb.ConfChangeRemoveNode}

func (n *Node) noteChanges(cc raftpb.ConfChangeV2) {
	for _, c := range cc.Changes {
		for k, t := range confTypes {
			if t == c.Type {
				n.changes = append(n.changes, MemberChange{Kind: k, ID: c.NodeID, Context: cc.Context})
			}
		}
	}
}

// TakeMemberChanges returns the membership changes applied since it was
// last called (by Advance; the bootstrap's own are among them).
func (n *Node) TakeMemberChanges() []MemberChange {
	c := n.changes
	n.changes = nil
	return c
}

// SnapshotAt is a snapshot's metadata at index (applied by the owner):
// its term, and the membership as of the last entry applied (index's, when
// index is the last applied, as Replica.Compact's is). Its Data is the
// owner's to fill before Compact.
func (n *Node) SnapshotAt(index uint64) (*Snapshot, error) {
	if applied := n.rn.BasicStatus().Applied; index > applied {
		return nil, fmt.Errorf("consensus: snapshot at %d, applied %d", index, applied)
	}
	term, err := n.storage.Term(index)
	if err != nil {
		return nil, fmt.Errorf("consensus: snapshot at %d: %w", index, err)
	}
	return &Snapshot{Index: index, Term: term, Voters: slices.Clone(n.conf.Voters), Learners: slices.Clone(n.conf.Learners)}, nil
}

// Compact makes s (from SnapshotAt, its Data the owner's state machine
// as of that index, made durable first) the snapshot that the leader
// sends a follower too far behind for the log, and drops the log before
// it but for the catch-up entries (Config.CatchUpEntries, CatchUpBytes).
// It may come turns after SnapshotAt (the owner writes a large one in the
// background); a snapshot received from the leader meanwhile supersedes
// it, and it is then dropped.
func (n *Node) Compact(s *Snapshot) error {
	cs := raftpb.ConfState{Voters: s.Voters, Learners: s.Learners}
	if _, err := n.storage.CreateSnapshot(s.Index, &cs, s.Data); err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("consensus: snapshot at %d: %w", s.Index, err)
	}
	to, err := n.catchUpFrom(s.Index)
	if err != nil {
		return err
	}
	if err := n.storage.Compact(to); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("consensus: compact to %d: %w", to, err)
	}
	return nil
}

// catchUpFrom is the index to compact the log to for a snapshot at index:
// the catch-up entries before it are kept.
func (n *Node) catchUpFrom(index uint64) (uint64, error) {
	first, err := n.storage.FirstIndex()
	if err != nil || n.cfg.CatchUpEntries <= 0 || n.cfg.CatchUpBytes == 0 || index < first {
		return index, err
	}
	lo := max(first, index-min(index, uint64(n.cfg.CatchUpEntries))+1)
	es, err := n.storage.Entries(lo, index+1, math.MaxUint64)
	if err != nil {
		return 0, fmt.Errorf("consensus: catch-up entries before %d: %w", index, err)
	}
	var size uint64
	for i := len(es) - 1; i >= 0; i-- {
		if size += uint64(es[i].Size()); size > n.cfg.CatchUpBytes {
			return es[i].Index, nil
		}
	}
	return lo - 1, nil
}

// EntriesAfter is the log after index, as far as it has been made
// durable (advanced): what a checkpoint of a snapshot at index must keep.
func (n *Node) EntriesAfter(index uint64) ([]Entry, error) {
	last, err := n.storage.LastIndex()
	if err != nil || last <= index {
		return nil, err
	}
	es, err := n.storage.Entries(index+1, last+1, math.MaxUint64)
	if err != nil {
		return nil, fmt.Errorf("consensus: entries after %d: %w", index, err)
	}
	return fromPB(es), nil
}

// ReportSnapshot tells the node whether a snapshot message it sent to a
// peer arrived; a leader waits for that before it sends the peer more.
func (n *Node) ReportSnapshot(to uint64, arrived bool) {
	st := raft.SnapshotFinish
	if !arrived {
		st = raft.SnapshotFailure
	}
	n.rn.ReportSnapshot(to, st)
}

// Membership is the voters and learners as of the last entry applied.
func (n *Node) Membership() (voters, learners []uint64) {
	return slices.Clone(n.conf.Voters), slices.Clone(n.conf.Learners)
}

func snapshotOf(s raftpb.Snapshot) *Snapshot {
	return &Snapshot{Index: s.Metadata.Index, Term: s.Metadata.Term, Voters: s.Metadata.ConfState.Voters,
		Learners: s.Metadata.ConfState.Learners, Data: s.Data}
}

func snapshotPB(s *Snapshot) raftpb.Snapshot {
	return raftpb.Snapshot{Data: s.Data, Metadata: raftpb.SnapshotMetadata{Index: s.Index, Term: s.Term,
		ConfState: raftpb.ConfState{Voters: s.Voters, Learners: s.Learners}}}
}

func fromPB(es []raftpb.Entry) []Entry {
	if len(es) == 0 {
		return nil
	}
	out := make([]Entry, len(es))
	for i, e := range es {
		k := Command
		if e.Type != raftpb.EntryNormal {
			k = Membership
		}
		out[i] = Entry{Index: e.Index, Term: e.Term, Kind: k, Data: e.Data}
		if k == Membership {
			// The owner persists the change as it is and restores it with
			// its type: kept in Data's first byte.
			out[i].Data = append([]byte{byte(e.Type)}, e.Data...)
		}
	}
	return out
}

func toPB(es []Entry) []raftpb.Entry {
	out := make([]raftpb.Entry, len(es))
	for i, e := range es {
		out[i] = raftpb.Entry{Index: e.Index, Term: e.Term, Type: raftpb.EntryNormal, Data: e.Data}
		if e.Kind == Membership && len(e.Data) > 0 {
			out[i].Type, out[i].Data = raftpb.EntryType(e.Data[0]), e.Data[1:]
		}
	}
	return out
}

// quietLogger drops the library's log lines; its Panic and Fatal still
// stop (the library calls them on broken invariants: a log that lost
// entries it had made durable).
type quietLogger struct{}

func (quietLogger) Debug(...any)            {}
func (quietLogger) Debugf(string, ...any)   {}
func (quietLogger) Error(...any)            {}
func (quietLogger) Errorf(string, ...any)   {}
func (quietLogger) Info(...any)             {}
func (quietLogger) Infof(string, ...any)    {}
func (quietLogger) Warning(...any)          {}
func (quietLogger) Warningf(string, ...any) {}
func (quietLogger) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (quietLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
