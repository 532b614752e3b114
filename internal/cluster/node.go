// Package cluster runs a replicated shard for real: a consensus.Node, its
// replica.Log on disk and its replica.Shard, driven by one goroutine on a
// clock, with Raft messages between nodes over HTTP. It is what the
// simulation (internal/replica/sim) drives by hand, here with real time,
// goroutines, sockets and files. The server does not use it yet (issue
// 12, docs/replication.md).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/breaker"
	"github.com/chutemq/chute/internal/commitdelay"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/hist"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/schedule"
	"github.com/chutemq/chute/internal/vfs"
	"github.com/chutemq/chute/internal/zbody"
)

// NotLeaderError answers a command sent to a node that does not lead:
// Leader is the leader it knows (0: none yet) and Addr its address.
type NotLeaderError struct {
	Leader uint64
	Addr   string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "cluster: not the leader, and no leader known"
	}
	return fmt.Sprintf("cluster: not the leader; node %d (%s) is", e.Leader, e.Addr)
}

// Errors of a Node.
var (
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("cluster: node closed")
	// ErrOutcomeUnknown: the node stopped leading while a command it
	// proposed was in flight. It may still be applied (by the next
	// leader); retry it with its exactly-once number or producer session.
	ErrOutcomeUnknown = errors.New("cluster: leadership lost: the command may or may not be applied")
)

// Config configures a Node.
type Config struct {
	ID uint64
	// Shard is the shard whose Raft group this node is a member of (0
	// default): a node process runs one Node per shard, all on one port,
	// each with its own Dir and paths (ShardPath).
	Shard uint32
	// Shards is how many shards the cluster has (0: 1), for Info.
	Shards uint32
	// Peers maps every member's ID (this node's too) to its base URL,
	// e.g. "http://127.0.0.1:7401".
	Peers map[uint64]string
	// Dir is the node's data directory (its Raft log); FS default vfs.OS.
	Dir string
	FS  vfs.FS
	// Clock stamps the commands this node proposes as leader, and ticks;
	// default the system clock.
	Clock chute.Clock
	// Tick is Raft's tick (default 10 ms); ElectionTicks ticks without a
	// leader start an election (default 10).
	Tick          time.Duration
	ElectionTicks int
	// CompactEvery: the log is replaced by a snapshot once it has grown
	// by this many entries (default 10,000).
	CompactEvery uint64
	// CompactBytes: the log is replaced by a snapshot, too, once the
	// entries applied since the last one hold this many bytes of
	// commands, or as many as that snapshot if more
	// (replica.SetCompactBytes; 0: replica.DefaultCompactBytes; -1: by
	// count only).
	CompactBytes int64
	// SegmentSize is the log's journal segment size (0: the journal's
	// default).
	SegmentSize int64
	// SyncDelay is the leader's commit delay (0: none): when its loop,
	// idle, is woken by a proposal or a peer's message less than
	// SyncDelay after its last sync ended, it waits until SyncDelay has
	// passed since then (still taking proposals and messages), so that
	// what came meanwhile shares one Update and one sync. Never when it
	// goes from one batch straight to the next, nor when what woke it
	// moved the commit index. Timed by Clock. Keep it
	// well under Tick: the loop does not tick while it waits. See
	// delay.go.
	SyncDelay time.Duration
	// Join: the node joins a running group (added as a learner): it never
	// bootstraps one.
	Join bool
	// Token, if set, is sent by this node to its peers and required from
	// them (a bearer token on RaftPath).
	Token string
	// Authenticated, if set, is called with each peer request whose
	// token checked out (server.Authenticated: the server then keeps the
	// stream's connection open past its AuthTimeout).
	Authenticated func(*http.Request)
	HTTP          *http.Client
	// OnPeers, if set, is called (on the node's loop) with every member's
	// address once a membership change added or removed one: the server
	// keeps them for its next start.
	OnPeers func(map[uint64]string)
	Logger  *slog.Logger
	// MaxHeaders and MaxMessageSize bound a published message as the
	// broker's options do (defaults 64 and 1 MiB).
	MaxHeaders, MaxMessageSize int
	// MaxVersion makes the node read and advertise command versions up to
	// this one only, as an older binary would (0: this binary's latest;
	// tests of rolling upgrades).
	MaxVersion uint8
	// Replaces, if set, is the ID of a member whose log was damaged and
	// which this node (with Join, a new ID, Peers naming its address)
	// replaces: it asks the leader to remove that ID, add itself, and
	// promote it once caught up (rejoin.go); OnRebuilt, if set, is called
	// once that is done (the server then forgets Replaces, so that a
	// later removal of this node by hand is not undone at its restart).
	Replaces  uint64
	OnRebuilt func()
}

// Node is one member. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	rep   *replica.Replica // owned by run (its shard, its log's writes)
	rn    *consensus.Node  // owned by run
	peers map[uint64]*peer

	inbox   chan []consensus.Message
	props   chan *proposal
	parks   chan *Parked
	stands  chan standReq
	reports chan snapReport
	// inspects carries functions to run on the loop (onLoop).
	inspects chan func()
	stop     chan struct{}
	done     chan struct{}
	bg       sync.WaitGroup   // goroutines besides the loop (rejoin)
	zc       zbody.Compressor // bodies at rest: compressed by the leader's loop, read back by the API

	parking     parking          // owned by run
	standing    standings        // owned by run
	confPending bool             // a membership change proposed and not applied; owned by run
	ticks       int64            // ticks so far; owned by run
	heard       map[uint64]int64 // the tick of each peer's latest message; owned by run
	sched       *scheduler       // the leader's schedules (nil when not leading); owned by run
	brk         *breakers        // the leader's circuit breakers (nil when not leading); owned by run

	// versions is the command version each peer advertised on its
	// latest stream to this node (versionHeader; none: 1).
	vmu      sync.Mutex
	versions map[uint64]uint8

	// places is shard 0's directory as of its last apply (place.go).
	places atomic.Pointer[map[string]uint32]

	// commits is the time from proposing each of this node's commands
	// to applying it (Info.Commits); the loop's own.
	commits hist.H

	restores      atomic.Int64 // snapshots received from a leader and restored
	delays        atomic.Int64 // SyncDelay waits
	snapSends     atomic.Int64 // snapshots written to a peer's stream
	leaderChanges atomic.Int64 // leaders seen (a change of leader or term)
	transfers     atomic.Int64 // leadership handed to the shard's preferred voter (balance.go)
	// The forwarder's, for this shard's outboxes (forward.go): messages
	// carried, carries failed, and messages waiting at its last pass.
	carried, carryFailures, outboxed atomic.Int64
	heldUntil                        atomic.Int64 // the forwarder's hold (UnixNano; 0: none), for Info

	mu     sync.Mutex
	status consensus.Status // as of the last loop turn
	closed bool
	err    error // why the loop stopped on its own
}

// Shard is the shard whose group the node is a member of.
func (n *Node) Shard() uint32 { return n.cfg.Shard }

// Stopped is closed once the node's loop has stopped: closed, or on an
// error of its own (Err).
func (n *Node) Stopped() <-chan struct{} { return n.done }

// Err is the error the node's loop stopped on (a log it cannot apply, a
// failed write), or nil.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

type proposal struct {
	cmd   replica.Command
	reply chan result
}

// waiter is who gets a proposal's result: a caller of Do, a parked
// receive, or the leader's scheduler (a firing).
type waiter struct {
	reply    chan result
	park     *Parked
	stand    *Standing // a standing receive's receive, of Max standMax (drain: for messages ready when proposed)
	standMax int
	drain    bool
	fire     *schedule.Firing
	move     *breaker.Move // a breaker transition the leader proposed
}

type result struct {
	res replica.Result
	err error
}

type snapReport struct {
	to      uint64
	arrived bool
}

// Start opens the node's log and starts it: a new member of a new group
// when the log is empty (and not Join), a restart otherwise.
func Start(cfg Config) (*Node, error) {
	if cfg.FS == nil {
		cfg.FS = vfs.OS
	}
	if cfg.Clock == nil {
		cfg.Clock = chute.SystemClock()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 10 * time.Millisecond
	}
	if cfg.CompactEvery == 0 {
		cfg.CompactEvery = 10_000
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxHeaders <= 0 {
		cfg.MaxHeaders = 64
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 1 << 20
	}
	if cfg.MaxVersion == 0 {
		cfg.MaxVersion = replica.MaxVersion()
	}
	cfg.Peers = maps.Clone(cfg.Peers) // the loop's: membership changes add and remove
	if _, ok := cfg.Peers[cfg.ID]; !ok {
		return nil, fmt.Errorf("cluster: node %d is not among its peers", cfg.ID)
	}
	rep, d, err := replica.OpenReplica(cfg.FS, cfg.Dir, replica.LogOptions{Logger: cfg.Logger, SegmentSize: cfg.SegmentSize, ReclaimSlice: journal.DefaultReclaimSlice, FillAhead: journal.DefaultFillAhead, Background: true}, cfg.CompactEvery)
	if err != nil {
		return nil, err
	}
	if cfg.CompactBytes != 0 {
		rep.SetCompactBytes(cfg.CompactBytes)
	}
	if cfg.MaxVersion != replica.MaxVersion() {
		if err := rep.LimitVersion(cfg.MaxVersion); err != nil {
			rep.Close()
			return nil, err
		}
	}
	n := &Node{cfg: cfg, rep: rep, peers: map[uint64]*peer{}, versions: map[uint64]uint8{}, heard: map[uint64]int64{},
		inbox: make(chan []consensus.Message, 256), props: make(chan *proposal, 256), parks: make(chan *Parked, 256), parking: newParking(),
		stands: make(chan standReq, 256), standing: newStandings(), reports: make(chan snapReport, 16), inspects: make(chan func()),
		stop: make(chan struct{}), done: make(chan struct{})}
	// Sorted: every member bootstraps the same entries (the membership,
	// in this order) at the same indexes.
	ids := slices.Sorted(maps.Keys(cfg.Peers))
	// A follower a little behind at a compaction catches up from the
	// log, not from a snapshot (consensus.Config.CatchUpEntries).
	ccfg := consensus.Config{ID: cfg.ID, Peers: ids, ElectionTicks: cfg.ElectionTicks,
		CatchUpEntries: int(min(cfg.CompactEvery/5, catchUpEntries)), CatchUpBytes: catchUpBytes}
	if n.rn, err = consensus.Open(ccfg, d, cfg.Join); err != nil {
		rep.Close()
		return nil, err
	}
	for id, addr := range cfg.Peers {
		if id != cfg.ID {
			n.peers[id] = newPeer(n, id, addr)
		}
	}
	if cfg.Shard == 0 {
		n.publishPlaces()
	}
	go n.run()
	if cfg.Replaces != 0 {
		n.bg.Add(1)
		go n.rejoin(cfg.Replaces, maps.Clone(cfg.Peers))
	}
	return n, nil
}

// Do proposes cmd (this node must lead) and returns its result once it is
// committed on a quorum and applied here. A follower answers with a
// *NotLeaderError.
func (n *Node) Do(ctx context.Context, cmd replica.Command) (replica.Result, error) {
	f, err := n.Submit(ctx, cmd)
	if err != nil {
		return replica.Result{}, err
	}
	return f.Wait(ctx)
}

// Submit hands cmd to the node's loop and returns without waiting for
// it: commands submitted one after another by one goroutine are proposed
// in that order (a producer session's batches must be). Wait gives what
// Do would have.
func (n *Node) Submit(ctx context.Context, cmd replica.Command) (*Future, error) {
	p := &proposal{cmd: cmd, reply: make(chan result, 1)}
	select {
	case n.props <- p:
		return &Future{n: n, reply: p.reply}, nil
	case <-n.stop:
		return nil, ErrClosed
	case <-n.done: // the loop stopped on an error of its own
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Future is a submitted command's result to come.
type Future struct {
	n     *Node
	reply chan result
}

// Wait returns the command's result once applied (see Do).
func (f *Future) Wait(ctx context.Context) (replica.Result, error) {
	select {
	case r := <-f.reply:
		return r.res, r.err
	case <-f.n.done:
		return replica.Result{}, ErrClosed
	case <-ctx.Done():
		return replica.Result{}, ctx.Err()
	}
}

// Read runs fn on the node's loop, with the shard as of the last command
// applied, if this node leads (else a *NotLeaderError). A deposed leader
// that does not know it yet may answer from a state a little behind: Read
// is for statistics, not for decisions.
func (n *Node) Read(ctx context.Context, fn func(*replica.Shard)) error {
	var err error
	if lerr := n.onLoop(ctx, func() {
		if st := n.rn.Status(); !st.IsLeader {
			err = &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
			return
		}
		fn(n.rep.Shard())
	}); lerr != nil {
		return lerr
	}
	return err
}

// ReadLocal runs fn on the node's loop with its own copy of the shard
// (as of its last apply), leading or not: where a leader's answer is not
// needed (a sharded process's lists of the shards it does not lead).
func (n *Node) ReadLocal(ctx context.Context, fn func(*replica.Shard)) error {
	return n.onLoop(ctx, func() { fn(n.rep.Shard()) })
}

// onLoop runs f on the node's loop and returns once it has run (Read,
// Info and the tests' inspect read the loop's state there).
func (n *Node) onLoop(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case n.inspects <- func() { f(); close(ran) }:
	case <-n.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ran
	return nil
}

// Status is the node's view of the group as of its last turn.
func (n *Node) Status() consensus.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// Close stops the node: its loop, its senders, its log. Proposals in
// flight get ErrClosed (they may still be applied by the others).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		<-n.done
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	<-n.done
	n.bg.Wait()
	n.zc.Close()
	for _, p := range n.peers {
		p.close()
	}
	return n.rep.Close()
}

// catchUpEntries and catchUpBytes: what a compaction keeps of the Raft
// log in memory before the snapshot (consensus.Config): as etcd's server,
// 5,000 entries at most, and no more than a fifth of Config.CompactEvery
// (2,000 by default; tests that compact every few entries still send
// snapshots), nor more than 16 MiB (a compaction comes every 64 MiB of
// log by default, SetCompactBytes).
const (
	catchUpEntries = 5000
	catchUpBytes   = 16 << 20
)

// maxBatchEvents bounds the proposals and message batches one turn of
// the loop takes before it makes them durable.
const maxBatchEvents = 1024

// run is the node's loop: the only goroutine that touches rn, shard and
// log writes.
func (n *Node) run() {
	defer close(n.done)
	t := n.cfg.Clock.NewTimer(n.cfg.Tick)
	defer func() { t.Stop() }()
	waiters := map[uint64]waiter{}
	pk := &n.parking
	var handBacks []replica.Command // of abandoned parked receives
	// Proposal IDs start at a random point: an entry this node proposed
	// in an earlier life may still be committed after a restart, and must
	// not answer a new proposal that reuses its ID.
	nextID := rand.Uint64() >> 1
	firstID := nextID // this life's proposals are numbered above it
	var term uint64
	var leading bool
	// versionAsked is the command version this leader proposed or saw
	// applied (OpClusterVersion): not proposed again.
	var versionAsked uint8
	fail := func(err error) {
		for id, w := range waiters {
			switch {
			case w.fire != nil:
				if n.sched != nil { // proposed again after a second (or by the next leader)
					n.sched.fired(*w.fire, replica.Result{}, err, n.cfg.Clock.Now())
				}
			case w.move != nil:
				if n.brk != nil {
					n.brk.moved(*w.move, replica.Result{}, err, n.cfg.Clock.Now().UnixNano())
				}
			case w.stand != nil:
				w.stand.reserved -= w.standMax
				if w.drain {
					w.stand.draining = false
				}
			case w.park == nil:
				w.reply <- result{err: err}
			default:
				w.park.deliver(result{err: err})
			}
			delete(waiters, id)
		}
	}
	defer fail(ErrClosed)
	defer func() { pk.failAll(ErrClosed) }()
	failStanding := func(err error) {
		for _, list := range n.standing.byQueue {
			for _, s := range list {
				s.fail(err)
			}
		}
		n.standing = newStandings()
	}
	defer func() { failStanding(ErrClosed) }()
	receive := func(msgs []consensus.Message) {
		for _, m := range msgs {
			if n.cfg.Shards > 1 { // (balance.go)
				n.heard[m.From] = n.ticks
			}
			if err := n.rn.Receive(m); err != nil {
				n.cfg.Logger.Warn("raft message refused", "from", m.From, "err", err)
			}
		}
	}
	notLeader := func() error {
		st := n.rn.Status()
		return &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
	}
	// proposeCmd stamps and proposes cmd, and the parked receives its
	// messages may serve right behind it; w (if any) gets its result.
	var proposeCmd func(cmd *replica.Command, w waiter) error
	// recordVersion proposes that every member reads command version v
	// (once per leadership): commands of version v are taken once it
	// applies, and may follow it in the log at once.
	recordVersion := func(v uint8) error {
		if versionAsked >= v {
			return nil
		}
		cmd := replica.Command{Op: replica.OpClusterVersion, Max: int(v)}
		if err := proposeCmd(&cmd, waiter{}); err != nil {
			return err
		}
		versionAsked = v
		n.cfg.Logger.Info("cluster command version moving up", "version", v)
		return nil
	}
	proposeCmd = func(cmd *replica.Command, w waiter) error {
		if !n.rn.Status().IsLeader {
			return notLeader()
		}
		if v, at := cmd.Version(), n.rep.Shard().Version(); v > at && cmd.Op != replica.OpClusterVersion {
			if !n.allRead(v) {
				return n.versionRefusal(v, at)
			}
			// Every member reads v and the log may not say so yet (a
			// cluster that just started): it does, right before this.
			if err := recordVersion(v); err != nil {
				return err
			}
		}
		if cmd.Op == replica.OpReceive && n.brk != nil {
			n.brk.limit(cmd) // a half-open breaker's probes
		}
		nextID++
		cmd.Node, cmd.ID, cmd.Time = n.cfg.ID, nextID, n.cfg.Clock.Now().UnixNano()
		data, err := n.encode(cmd)
		if err != nil {
			return err
		}
		if err := n.rn.Propose(data); err != nil {
			return notLeader()
		}
		if w.reply != nil || w.fire != nil || w.move != nil || w.stand != nil {
			waiters[cmd.ID] = w
		}
		wake := func(q string, k int) {
			pk.coming[q] = cmd.ID
			for _, p := range pk.take(q, k) {
				k -= max(p.cmd.Max, 1)
				if err := proposeCmd(&p.cmd, waiter{reply: p.reply, park: p}); err != nil {
					p.deliver(result{err: err})
				}
			}
			n.standing.spread(q, k, func(s *Standing, m int) {
				rc := s.cmd
				rc.Max = m
				if proposeCmd(&rc, waiter{stand: s, standMax: m}) == nil {
					s.reserved += m
				}
			})
		}
		readyIn(cmd, func(target string, k int) {
			switch {
			case k == 0:
			case n.rep.Shard().IsTopic(target):
				// A publish to a topic brings messages to each of its
				// subscriptions (as of the state applied: one subscribed
				// since gets none, and its receive is proposed for
				// nothing).
				for _, q := range n.rep.Shard().Subscriptions(target) {
					wake(q, k)
				}
			default:
				wake(target, k)
			}
		})
		return nil
	}
	propose := func(p *proposal) {
		if err := proposeCmd(&p.cmd, waiter{reply: p.reply}); err != nil {
			p.reply <- result{err: err}
		}
	}
	park := func(p *Parked) {
		q := p.cmd.Queue
		// Proposed at once when there is something to receive, or an
		// error to answer (no such queue, not the leader).
		ready, _, _, ok := n.rep.Shard().Counts(q)
		now := !n.rn.Status().IsLeader || pk.coming[q] > pk.appliedID || !ok || ready > 0
		p.mu.Lock()
		if p.state != parkWaiting { // withdrawn on its way here
			p.mu.Unlock()
			return
		}
		if !now {
			p.mu.Unlock()
			pk.add(p)
			return
		}
		p.state = parkProposed
		p.mu.Unlock()
		if err := proposeCmd(&p.cmd, waiter{reply: p.reply, park: p}); err != nil {
			p.deliver(result{err: err})
		}
	}
	// stand handles a standing receive's request (standing.go).
	stand := func(r standReq) {
		s := r.s
		switch r.op {
		case standClose:
			s.closed = true
			n.standing.remove(s)
			for _, res := range s.mailbox {
				if cmd, ok := handBack(s.cmd.Queue, res); ok {
					handBacks = append(handBacks, cmd)
				}
			}
			s.mailbox, s.boxed, s.waiting = nil, 0, nil
			close(r.done)
			return
		case standNext:
			s.credit, s.waiting = r.max, r.reply
		}
		if s.closed || s.waiting == nil {
			return
		}
		if s.err == nil && !n.rn.Status().IsLeader {
			s.err = notLeader()
		}
		if s.err != nil {
			n.standing.remove(s)
			s.reply()
			return
		}
		n.standing.add(s)
		s.reply()
		if s.waiting == nil || s.draining || s.avail() <= 0 {
			return
		}
		// Nothing for it yet: what is ready now (or, on a poll, what a
		// timer may have made ready) is taken by a receive of its own.
		ready, delayed, inflight, ok := n.rep.Shard().Counts(s.cmd.Queue)
		want := ready > 0 || !ok
		if r.op == standPoll && !want {
			next := n.rep.Shard().NextEvent()
			want = delayed+inflight > 0 || next != 0 && next <= n.cfg.Clock.Now().UnixNano()
		}
		if !want {
			return
		}
		rc := s.cmd
		rc.Max = min(s.avail(), maxStandDrain)
		if err := proposeCmd(&rc, waiter{stand: s, standMax: rc.Max, drain: true}); err != nil {
			s.fail(err)
			n.standing.remove(s)
			return
		}
		s.reserved += rc.Max
		s.draining = true
	}
	delay := commitdelay.Rule{Delay: n.cfg.SyncDelay}
	synced := false // the last turn synced
	for {
		// From a sync straight to what came during it: no commit delay.
		straight := synced && len(n.inbox)+len(n.props)+len(n.parks)+len(n.stands) > 0
		committed := n.rn.Status().Commit
		woken := false // by what the next Update syncs
		select {
		case <-n.stop:
			return
		case <-t.C():
			n.rn.Tick()
			n.ticks++
			n.balance()
			t = n.cfg.Clock.NewTimer(n.cfg.Tick)
		case msgs := <-n.inbox:
			receive(msgs)
			woken = true
		case r := <-n.reports:
			n.rn.ReportSnapshot(r.to, r.arrived)
		case f := <-n.inspects:
			f()
		case p := <-n.props:
			propose(p)
			woken = true
		case p := <-n.parks:
			park(p)
			woken = true
		case r := <-n.stands:
			stand(r)
			woken = true
		}
		// Take what else is waiting, so that one Update (one sync) carries
		// every proposal and message that arrived meanwhile: group commit.
		// (Measured with the receive wake-up, in one build: a Producer at
		// 500 msgs/s, confirm p50 10.3 → 9.2 ms; at 2,000/s 19.2 → 12.3.)
	more:
		for range maxBatchEvents {
			select {
			case msgs := <-n.inbox:
				receive(msgs)
			case p := <-n.props:
				propose(p)
			case p := <-n.parks:
				park(p)
			case r := <-n.stands:
				stand(r)
			default:
				break more
			}
			woken = true
		}
		// The commit delay (delay.go), on the leader: a turn that did not
		// come straight from a sync, took what the next Update syncs, and
		// did not move the commit index (a follower's answer that commits
		// entries is applied at once: their callers wait for it).
		if st := n.rn.Status(); woken && !straight && st.IsLeader && st.Commit == committed {
			if wait := delay.Wait(n.cfg.Clock.Now()); wait > 0 {
				arrived, stopped := n.hold(wait, receive, propose, park, stand)
				if stopped {
					return
				}
				delay.Waited(arrived)
			}
		}
		var err error
		synced, err = n.process(func(res replica.Result) {
			// The directory's copy first, then the caller's answer: a
			// create goes on to use the name it placed (place.go).
			if res.Cmd != nil && (res.Cmd.Op == replica.OpPlace || res.Cmd.Op == replica.OpUnplace) && res.Err == nil {
				n.publishPlaces()
			}
			if n.sched != nil && res.Cmd != nil {
				n.sched.applied(n.rep.Shard(), res)
			}
			if n.brk != nil && res.Cmd != nil {
				n.brk.applied(res, res.Cmd.Node == n.cfg.ID)
			}
			if res.Cmd == nil || res.Cmd.Node != n.cfg.ID {
				return
			}
			if res.Cmd.ID > firstID && res.Cmd.ID <= nextID { // not an earlier life's
				pk.appliedID = max(pk.appliedID, res.Cmd.ID)
				// Stamped by this node's clock when proposed (proposeCmd).
				n.commits.Observe(time.Duration(n.cfg.Clock.Now().UnixNano() - res.Cmd.Time))
			}
			w, ok := waiters[res.Cmd.ID]
			if !ok {
				return
			}
			delete(waiters, res.Cmd.ID)
			if w.fire != nil {
				if n.sched != nil {
					n.sched.fired(*w.fire, res, nil, n.cfg.Clock.Now())
				}
			} else if w.move != nil {
				if n.brk != nil {
					n.brk.moved(*w.move, res, nil, n.cfg.Clock.Now().UnixNano())
				}
			} else if w.stand != nil {
				if cmd, ok := w.stand.applied(res, w.standMax, w.drain); ok {
					handBacks = append(handBacks, cmd)
				}
			} else if w.park == nil {
				w.reply <- result{res: res}
			} else if !w.park.deliver(result{res: res}) {
				cmd, _ := handBack(res.Cmd.Queue, res)
				if cmd.Op != 0 {
					handBacks = append(handBacks, cmd)
				}
			}
		})
		if synced {
			delay.Synced(n.cfg.Clock.Now())
		}
		if err != nil {
			n.cfg.Logger.Error("replica stopped", "err", err)
			n.mu.Lock()
			n.err = err
			n.mu.Unlock()
			fail(err)
			return
		}
		for _, cmd := range handBacks {
			proposeCmd(&cmd, waiter{}) // best effort: the lease expires otherwise
		}
		handBacks = handBacks[:0]
		if v := n.rep.Shard().Version(); v > versionAsked {
			versionAsked = v
		}
		if v := n.cfg.MaxVersion; leading && versionAsked < v && n.allRead(v) {
			recordVersion(v) // (not leading after all: the next leader does it)
		}
		st := n.rn.Status()
		if leading && (!st.IsLeader || st.Term != term) {
			fail(ErrOutcomeUnknown)
			n.confPending = false // applied or dropped: not this node's to know
			versionAsked = 0      // asked again when this node leads again, if need be
		}
		if leading && !st.IsLeader { // (a follower answers parks at once)
			pk.failAll(notLeader())
			failStanding(notLeader())
		}
		if st.Leader != 0 && (st.Leader != n.status.Leader || st.Term != n.status.Term) {
			n.leaderChanges.Add(1)
			n.cfg.Logger.Info("leader", "shard", n.cfg.Shard, "leader", st.Leader, "term", st.Term)
		}
		// The leader's timer: what is due is proposed (OpFire), and
		// settled when it applies; breaker transitions likewise.
		switch {
		case !st.IsLeader:
			n.sched, n.brk = nil, nil
		case n.sched == nil:
			n.sched, n.brk = newScheduler(n.rep.Shard(), n.cfg.Clock.Now()), newBreakers()
		}
		if n.brk != nil {
			now := n.cfg.Clock.Now().UnixNano()
			for _, m := range n.brk.due(n.rep.Shard(), now) {
				cmd := replica.Command{Op: replica.OpSetBreaker, Queue: m.Name, Max: int(m.To)}
				if err := proposeCmd(&cmd, waiter{move: &m}); err != nil {
					n.brk.moved(m, replica.Result{}, err, now)
				}
			}
		}
		if n.sched != nil {
			now := n.cfg.Clock.Now()
			for _, f := range n.sched.due(now) {
				cmd := replica.Command{Op: replica.OpFire, Queue: f.Name, SessionSeq: f.SlotSeq}
				if err := proposeCmd(&cmd, waiter{fire: &f}); err != nil {
					n.sched.fired(f, replica.Result{}, err, now)
				}
			}
		}
		n.mu.Lock()
		leading, term = st.IsLeader, st.Term
		n.status = st
		n.mu.Unlock()
	}
}

// encode is cmd's log entry; the bodies of a publish to a queue that
// stores them compressed are compressed first (by the leader: every
// replica then stores the same bytes, whatever its build's zstd would
// make of them). The frames live in the compressor's buffers until the
// entry is encoded.
func (n *Node) encode(cmd *replica.Command) ([]byte, error) {
	var bufs []*zbody.Buf
	defer func() {
		for _, z := range bufs {
			n.zc.Release(z)
		}
	}()
	compress := func(target string, msgs []replica.Msg) error {
		min, on := n.rep.Shard().CompressMin(target)
		if !on {
			return nil
		}
		pms := make([]engine.PubMsg, len(msgs))
		for i := range msgs {
			pms[i].Body = msgs[i].Body
		}
		if !zbody.AnyBodyAtLeast(pms, min) {
			return nil
		}
		z, err := n.zc.Compress(pms, min)
		if err != nil {
			return err
		}
		bufs = append(bufs, z)
		for i := range msgs {
			msgs[i].Body, msgs[i].Zstd = pms[i].Body, pms[i].Zstd
		}
		return nil
	}
	switch cmd.Op {
	case replica.OpPublish:
		if err := compress(cmd.Queue, cmd.Msgs); err != nil {
			return nil, err
		}
	case replica.OpTx:
		for i := range cmd.TxPubs {
			if err := compress(cmd.TxPubs[i].Target, cmd.TxPubs[i].Msgs); err != nil {
				return nil, err
			}
		}
	}
	return cmd.Encode(nil), nil
}

// allRead says whether every member (voters and learners) reads command
// version v: this node, and each peer as it advertised on its latest
// stream here.
func (n *Node) allRead(v uint8) bool {
	if n.cfg.MaxVersion < v {
		return false
	}
	voters, learners := n.rn.Membership()
	n.vmu.Lock()
	defer n.vmu.Unlock()
	for _, l := range [][]uint64{voters, learners} {
		for _, id := range l {
			if id != n.cfg.ID && n.versions[id] < v {
				return false
			}
		}
	}
	return true
}

// peerVersion is the command version peer id advertised (1 if none yet).
func (n *Node) peerVersion(id uint64) uint8 {
	if id == n.cfg.ID {
		return n.cfg.MaxVersion
	}
	n.vmu.Lock()
	defer n.vmu.Unlock()
	return max(n.versions[id], 1)
}

// versionRefusal refuses a command of version v in a cluster at version
// at, naming the members that hold it back.
func (n *Node) versionRefusal(v, at uint8) error {
	voters, learners := n.rn.Membership()
	var behind []string
	for _, id := range slices.Concat(voters, learners) {
		if pv := n.peerVersion(id); pv < v {
			behind = append(behind, fmt.Sprintf("node %d reads version %d", id, pv))
		}
	}
	why := "the leader has not recorded the upgrade yet"
	if len(behind) > 0 {
		why = strings.Join(behind, ", ") + ": upgrade every member first"
	}
	return fmt.Errorf("%w: this needs command version %d and the cluster is at version %d (%s)", chute.ErrNotReplicated, v, at, why)
}

// process does every pending Update: a received snapshot made durable;
// a leader's messages sent; entries and hard state written; committed
// entries applied while they sync; the sync waited for (when the library
// needs it); a follower's messages sent; Advance; then maybe compact
// (docs/replication.md, "The real-time node").
func (n *Node) process(applied func(replica.Result)) (synced bool, err error) {
	for n.rn.HasUpdate() {
		u := n.rn.Update()
		if err := n.rep.SaveReceived(context.Background(), u); err != nil {
			return synced, err
		}
		send := func() {
			for _, m := range u.Messages {
				if p := n.peers[m.To]; p != nil {
					p.send(m)
				}
			}
		}
		// A leader's appends go out before its own sync, which then runs
		// alongside the followers' (consensus.Update.Leader).
		if u.Leader {
			send()
		}
		var b *journal.Batch
		if u.HardState != nil || len(u.Entries) > 0 {
			var err error
			if b, err = n.rep.Log().Save(u.HardState, u.Entries); err != nil {
				return synced, err
			}
		}
		// Committed entries are durable on a quorum already: they are
		// applied (and their callers answered) while this Update's own
		// entries are being synced, not after (as etcd's server does;
		// measured in docs/replication.md). Compact runs after the sync.
		restored, err := n.rep.Apply(u, applied)
		if err != nil {
			return synced, err
		}
		if restored {
			n.restores.Add(1)
			if n.cfg.Shard == 0 {
				n.publishPlaces()
			}
		}
		// What the library does not need synced (a commit index that
		// moved, nothing else) is not waited for: the log keeps it and
		// writes it with its next record (Save returns no batch), and the
		// commit index is recovered from the others if lost. (Measured:
		// waiting for it put a second sync on every commit's path; writing
		// it at once, a sync of its own in the journal's writer.)
		if b != nil && u.MustSync {
			if err := b.Wait(context.Background()); err != nil {
				return synced, err
			}
			synced = true
		}
		if !u.Leader {
			send()
		}
		n.rn.Advance()
		n.membersChanged(n.rn.TakeMemberChanges())
	}
	did, err := n.rep.Compact(context.Background(), n.rn)
	if did {
		n.cfg.Logger.Info("log compacted", "shard", n.cfg.Shard, "index", n.rep.SnapshotIndex(), "bytes", n.rep.SnapshotSize(), "loop", n.rep.CompactHeld().Round(time.Millisecond))
	}
	return synced, err
}

// inspect returns the shard's applied index and state hash, from the
// node's loop (tests).
func (n *Node) inspect() (applied uint64, hash [32]byte) {
	n.onLoop(context.Background(), func() { applied, hash = n.rep.Shard().Applied(), n.rep.Shard().Hash() })
	return applied, hash
}
