// Package sim is a deterministic simulation of a replicated chute shard:
// 3 or 5 nodes, each a consensus.Node over a simulated disk applying
// commands to a replica.Shard, a simulated network between them, clients
// that publish and consume through whichever node leads, and a nemesis
// that crashes nodes and partitions links — all in one goroutine, driven
// by one event queue and one seeded random source. The same seed gives
// the same run, event for event (Outcome.Trace), so a failing seed is
// reproduced with one command (see sim_test.go).
//
// What is simulated:
//   - network: each message may be dropped, duplicated, delayed (so
//     reordered) or cut by a partition, which may be one-way;
//   - disks: a write is durable only once its sync completes; a crash
//     loses the writes not synced, or keeps a torn prefix of them;
//   - clocks: every node stamps commands with the simulated time plus an
//     offset of its own.
//
// What every run checks (Outcome.Violations): see checker.go.
package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/journal"
	"github.com/chutemq/chute/internal/replica"
)

// Config shapes a run. The zero value of a field takes its default.
type Config struct {
	Seed  uint64
	Nodes int // 3 (default) or 5
	// Faults is the length of the phase with faults (simulated time,
	// default 10 s); then everything heals and the run goes on until the
	// clients are done and the queue is drained, at most Settle (default
	// 60 s) more.
	Faults, Settle time.Duration
	// Producers publish Batches batches each (defaults 3 and 30);
	// Consumers (default 2) receive and settle until the end.
	Producers, Batches, Consumers int
	// NoFaults runs without the nemesis and with a perfect network: the
	// baseline the checks must also pass.
	NoFaults bool

	// bug plants a fault the checks must catch (tests of the checks).
	bug bug
	// adminAtLeastOnce sends the admin clients' commands without their
	// exactly-once numbers (a test that the linearizability check fails).
	adminAtLeastOnce bool
}

// bug is a deliberate defect, planted by the tests to show that the
// checks fail when the system misbehaves.
type bug uint8

const (
	noBug bug = iota
	// bugLyingSync: node syncs report success without syncing, so a
	// crash loses what they claimed was durable.
	bugLyingSync
	// bugDiverge: node 2 applies one command as a no-op (a replica
	// that skipped a record).
	bugDiverge
	// bugRejoinOldID: a node whose disk died comes back empty under its
	// old ID (bootstrapping again), instead of being replaced.
	bugRejoinOldID
	// bugQuietDiverge: node 2 stores one published message with another
	// priority. Later receives may differ; the checker does not compare
	// results in this mode, so that only the state hash can show it.
	bugQuietDiverge
)

func (c Config) withDefaults() Config {
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Faults == 0 {
		c.Faults = 10 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 60 * time.Second
	}
	if c.Producers == 0 {
		c.Producers = 3
	}
	if c.Batches == 0 {
		c.Batches = 30
	}
	if c.Consumers == 0 {
		c.Consumers = 2
	}
	return c
}

// Timing of the simulated cluster.
const (
	tick          = 10 * time.Millisecond // a node's Raft tick
	electionTicks = 10                    // 100–200 ms without a leader's word
	maxOffset     = 50 * time.Millisecond // clocks differ by up to twice this
	epoch0        = int64(1_800_000_000_000_000_000)
)

// Outcome is what a run did and what its checks found.
type Outcome struct {
	Seed                     uint64
	Published, Confirmed     int // messages: sent in confirmed batches, confirmed
	Delivered, Acked         int // committed deliveries, messages acked
	DeadLettered             int // acked from the dead-letter queue
	Applied                  uint64
	Crashes, Partitions      int
	Elections                int // distinct (term, leader) pairs seen
	Drained                  bool
	SimTime                  time.Duration
	Violations               []string
	Trace                    uint64 // a digest of every apply, in order: equal for equal seeds
	HashChecks, HashMismatch int
	Events                   int // events processed
	Snapshots, Restores      int // snapshots taken; received ones restored
	SnapshotsSent            int // snapshot messages that arrived
	MaxSegments              int // the most journal segments a node's log held right after a snapshot
	DisksLost, BitFlips      int // disks the nemesis destroyed; bits it flipped in sealed files
	Damaged                  int // nodes that found their log damaged at a restart
	Replacements             int // members replaced under a new ID (removed, then added and promoted)
	// Histories porcupine found linearizable, and those it could not
	// decide within linearTimeout.
	LinearChecked, LinearUnknown int
	Extended                     int // leases extended
	Transactions, StaleTx        int // acks sent as transactions; those refused for a lease that ran out
}

// add sums another run's counts into o (the maxima as maxima).
func (o *Outcome) add(x Outcome) {
	o.Confirmed += x.Confirmed
	o.Delivered += x.Delivered
	o.Acked += x.Acked
	o.DeadLettered += x.DeadLettered
	o.Crashes += x.Crashes
	o.Partitions += x.Partitions
	o.Elections += x.Elections
	o.HashChecks += x.HashChecks
	o.Events = max(o.Events, x.Events)
	o.Snapshots += x.Snapshots
	o.Restores += x.Restores
	o.SnapshotsSent += x.SnapshotsSent
	o.MaxSegments = max(o.MaxSegments, x.MaxSegments)
	o.DisksLost += x.DisksLost
	o.BitFlips += x.BitFlips
	o.Damaged += x.Damaged
	o.Replacements += x.Replacements
	o.LinearChecked += x.LinearChecked
	o.LinearUnknown += x.LinearUnknown
	o.Extended += x.Extended
	o.Transactions += x.Transactions
	o.StaleTx += x.StaleTx
}

// maxEvents bounds a run: a livelock (nodes exchanging messages without
// end) is reported instead of running for ever. Runs of this package's
// defaults take well under a tenth of it.
const maxEvents = 400_000

// world is one run: the event queue, the nodes, the network, the clients
// and the checker.
type world struct {
	replacing []*node // members the operator is replacing
	// diskFault is the member whose disk the nemesis destroyed or
	// damaged, until it is replaced: one at a time, so that the faults
	// stay on a minority (two damaged disks of three lose data in any
	// replicated system).
	diskFault *node
	cfg       Config
	rng       *rand.Rand
	now       int64
	seq       uint64
	events    eventHeap
	nodes     []*node
	net       network
	chk       *checker
	out       *Outcome
	faulty    bool // the nemesis and the lossy network are on
	ended     bool
}

// Run runs one simulation. A panic inside the library or the engine (a
// broken invariant) is reported as a violation, not propagated.
func Run(cfg Config) (out Outcome) {
	cfg = cfg.withDefaults()
	out.Seed = cfg.Seed
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), now: epoch0, out: &out}
	w.chk = newChecker(w)
	defer func() {
		for _, n := range w.nodes {
			n.disk.close() // the journals' writers stop with the run
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			out.Violations = append(out.Violations, fmt.Sprintf("panic at %v: %v", w.elapsed(), p))
		}
		out.SimTime = w.elapsed()
	}()
	w.faulty = !cfg.NoFaults
	w.net.init(cfg.Nodes + maxReplacements)
	peers := make([]uint64, cfg.Nodes)
	for i := range peers {
		peers[i] = uint64(i + 1)
	}
	for range cfg.Nodes {
		w.addNode(peers, false).start()
	}
	w.startClients()
	if w.faulty {
		w.after(w.between(200*time.Millisecond, time.Second), w.nemesis)
	}
	end := w.now + int64(cfg.Faults)
	w.runUntil(func() bool { return w.now >= end })
	w.heal()
	settle := w.now + int64(cfg.Settle)
	w.runUntil(func() bool { return w.now >= settle || w.chk.done() && len(w.replacing) == 0 })
	out.Drained = w.chk.done()
	if len(w.replacing) > 0 {
		w.violation("node %d was still being replaced at the end", w.replacing[0].id)
	}
	w.converge()
	w.ended = true
	w.chk.finish()
	return out
}

// runUntil processes events until stop says so or none are left.
func (w *world) runUntil(stop func() bool) {
	for len(w.events) > 0 && !stop() {
		if w.out.Events++; w.out.Events > maxEvents {
			panic(fmt.Sprintf("more than %d events: a livelock?", maxEvents))
		}
		e := heap.Pop(&w.events).(event)
		w.now = e.at
		e.fn()
	}
}

func (w *world) elapsed() time.Duration { return time.Duration(w.now - epoch0) }

// after schedules fn d from now; events at the same time run in the order
// they were scheduled.
func (w *world) after(d time.Duration, fn func()) {
	w.seq++
	heap.Push(&w.events, event{at: w.now + int64(max(d, 0)), seq: w.seq, fn: fn})
}

// between is a uniform duration in [lo, hi].
func (w *world) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(w.rng.Int64N(int64(hi-lo)+1))
}

// chance is true with probability p, and never when the run has no faults.
func (w *world) chance(p float64) bool { return w.faulty && w.rng.Float64() < p }

func (w *world) node(id uint64) *node { return w.nodes[id-1] }

// addNode adds a node with the next ID; joining: it joins a running group
// (never bootstraps one).
func (w *world) addNode(peers []uint64, joining bool) *node {
	n := &node{w: w, id: uint64(len(w.nodes) + 1), peers: peers, joining: joining}
	n.offset = int64(w.between(-maxOffset, maxOffset))
	w.nodes = append(w.nodes, n)
	return n
}

// members are the nodes not removed from the group (up or not).
func (w *world) members() []*node {
	var out []*node
	for _, n := range w.nodes {
		if !n.removed {
			out = append(out, n)
		}
	}
	return out
}

// pick is a random member.
func (w *world) pick() *node {
	m := w.members()
	return m[w.rng.IntN(len(m))]
}

func (w *world) violation(format string, args ...any) {
	w.out.Violations = append(w.out.Violations, fmt.Sprintf("%v: ", w.elapsed())+fmt.Sprintf(format, args...))
}

// nemesis injects one fault, schedules its repair, and comes back.
func (w *world) nemesis() {
	if !w.faulty {
		return
	}
	switch k := w.rng.IntN(40); {
	case k < 16: // crash a node (the leader half the time), restart it later
		n := w.pick()
		if l := w.leader(); l != nil && w.rng.IntN(2) == 0 {
			n = l
		}
		if n.up {
			n.crash()
			w.out.Crashes++
			w.after(w.between(50*time.Millisecond, 2*time.Second), n.restart)
		}
	case k < 28: // isolate a node, both ways
		w.out.Partitions++
		id := w.pick().id
		for _, o := range w.nodes {
			w.net.cut(id, o.id)
			w.net.cut(o.id, id)
		}
		w.after(w.between(100*time.Millisecond, 2*time.Second), func() { w.net.heal() })
	case k < 36: // one-way cuts: a node hears but is not heard, or the reverse
		w.out.Partitions++
		a := w.pick().id
		for _, o := range w.nodes {
			if w.rng.IntN(2) == 0 {
				w.net.cut(a, o.id)
			} else {
				w.net.cut(o.id, a)
			}
		}
		w.after(w.between(100*time.Millisecond, 2*time.Second), func() { w.net.heal() })
	case k < 38 && w.cfg.bug != bugRejoinOldID: // a slow disk on one node for a while
		n := w.pick()
		n.slowDisk = true
		w.after(w.between(100*time.Millisecond, time.Second), func() { n.slowDisk = false })
	case k < 39: // a node's disk dies: the operator replaces the node
		if n := w.pick(); !n.lost && w.diskFault == nil && len(w.nodes) < w.cfg.Nodes+maxReplacements {
			w.diskFault = n
			if n.up {
				n.crash()
			}
			w.out.DisksLost++
			if w.cfg.bug == bugRejoinOldID {
				n.disk.fs = nil // a new, empty disk
				w.after(w.between(50*time.Millisecond, time.Second), n.restart)
				break
			}
			n.lost = true
			w.replace(n)
		}
	default: // a bit flips in a sealed file of a node that is down
		for _, n := range w.members() {
			if w.diskFault != nil || len(w.nodes) >= w.cfg.Nodes+maxReplacements {
				break
			}
			if !n.up && !n.lost && !n.flipped && n.disk.flip(w.rng) {
				n.flipped = true
				w.diskFault = n
				w.out.BitFlips++
				break
			}
		}
	}
	w.after(w.between(100*time.Millisecond, time.Second), w.nemesis)
}

// heal ends the fault phase: no more faults, every node up, every link
// whole, no losses.
func (w *world) heal() {
	w.faulty = false
	w.net.heal()
	for _, n := range w.nodes {
		n.slowDisk = false
		n.restart()
	}
}

// maxReplacements bounds the nodes a run may replace (IDs beyond the
// first cfg.Nodes).
const maxReplacements = 4

// replace is the operator's procedure for a member whose disk is lost or
// damaged: remove it from the group, then add a new node, with an empty
// disk and a new ID, as a learner; promote it once it has caught up. One
// membership change at a time, each retried at the leader until applied.
func (w *world) replace(old *node) {
	w.replacing = append(w.replacing, old)
	var step func()
	var fresh *node
	step = func() {
		l := w.leader()
		if l == nil || l == old {
			w.after(50*time.Millisecond, step)
			return
		}
		voters, learners := l.rn.Membership()
		switch {
		case slices.Contains(voters, old.id) || slices.Contains(learners, old.id):
			l.rn.Remove(old.id) // refused while another change is pending: tried again
		case fresh == nil:
			old.removed = true
			fresh = w.addNode(old.peers, true)
			fresh.start()
		case !slices.Contains(voters, fresh.id) && !slices.Contains(learners, fresh.id):
			l.rn.AddLearner(fresh.id)
		case slices.Contains(learners, fresh.id):
			if m := l.rn.Match(fresh.id); m > 0 && m+20 >= l.rn.Status().Commit {
				l.rn.Promote(fresh.id)
			}
		default: // a voter: done
			w.replacing = slices.DeleteFunc(w.replacing, func(n *node) bool { return n == old })
			if w.diskFault == old {
				w.diskFault = nil
			}
			w.out.Replacements++
			return
		}
		l.pump()
		w.after(50*time.Millisecond, step)
	}
	step()
}

// leader is the node that is up and leads in the highest term, if any.
func (w *world) leader() *node {
	var best *node
	var term uint64
	for _, n := range w.nodes {
		if !n.up {
			continue
		}
		if s := n.rn.Status(); s.IsLeader && s.Term >= term {
			best, term = n, s.Term
		}
	}
	return best
}

// converge runs, with the clients stopped, until every node has applied
// the same index (at most 10 s), then compares their state hashes.
func (w *world) converge() {
	w.chk.stopClients = true
	deadline := w.now + int64(10*time.Second)
	ms := w.members()
	same := func() bool {
		a := ms[0].shard().Applied()
		for _, n := range ms {
			if !n.up || n.busy || n.shard().Applied() != a || n.rn.Status().Commit != a {
				return false
			}
		}
		return true
	}
	w.runUntil(func() bool { return w.now >= deadline || same() })
	if !same() {
		var got []string
		for _, n := range ms {
			got = append(got, fmt.Sprintf("%d:%d up=%v", n.id, n.shard().Applied(), n.up))
		}
		w.violation("replicas did not converge within 10 s of the end: applied %v", got)
		return
	}
	h := ms[0].shard().Hash()
	for _, n := range ms[1:] {
		w.out.HashChecks++
		if n.shard().Hash() != h {
			w.out.HashMismatch++
			w.violation("state hash of node %d differs from node %d's at applied index %d", n.id, ms[0].id, n.shard().Applied())
		}
	}
	w.out.Applied = ms[0].shard().Applied()
}

// event is something that happens at a simulated time.
type event struct {
	at  int64
	seq uint64
	fn  func()
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// network carries Raft messages between nodes.
type network struct {
	cuts [][]bool // cuts[from-1][to-1]: messages from → to are lost
}

func (n *network) init(nodes int) {
	n.cuts = make([][]bool, nodes)
	for i := range n.cuts {
		n.cuts[i] = make([]bool, nodes)
	}
}

func (n *network) cut(from, to uint64) {
	if from != to {
		n.cuts[from-1][to-1] = true
	}
}

func (n *network) heal() {
	for _, row := range n.cuts {
		clear(row)
	}
}

// send delivers m after a delay, unless the link is cut or the message is
// lost; it may arrive twice.
func (w *world) send(m consensus.Message) {
	// A snapshot's sender learns whether it arrived, as a transport that
	// streams it would tell (consensus.Node.ReportSnapshot).
	from := w.node(m.From)
	life := from.life
	report := func(arrived bool) {
		if m.Snapshot && from.up && from.life == life {
			from.rn.ReportSnapshot(m.To, arrived)
			if arrived {
				w.out.SnapshotsSent++
			}
			from.pump()
		}
	}
	if w.net.cuts[m.From-1][m.To-1] || w.chance(0.02) {
		w.after(w.between(100*time.Microsecond, time.Millisecond), func() { report(false) })
		return
	}
	copies := 1
	if w.chance(0.02) {
		copies = 2
	}
	for range copies {
		d := w.between(100*time.Microsecond, time.Millisecond)
		if w.chance(0.05) {
			d = w.between(5*time.Millisecond, 50*time.Millisecond)
		}
		w.after(d, func() {
			to := w.node(m.To)
			if !to.up || w.net.cuts[m.From-1][m.To-1] {
				report(false)
				return
			}
			if err := to.rn.Receive(m); err != nil {
				w.violation("node %d: receive: %v", to.id, err)
				return
			}
			to.pump()
			report(true)
		})
	}
}

// node is one simulated server: a Raft member, its disk and its shard.
type node struct {
	w        *world
	id       uint64
	peers    []uint64
	offset   int64 // its clock minus the simulated time
	up       bool
	life     uint64 // incarnation: events of an earlier one are ignored
	rn       *consensus.Node
	disk     disk
	busy     bool // an Update's writes are being synced
	slowDisk bool
	joining  bool // it joins a running group: never bootstraps
	lost     bool // its disk is gone or damaged: it is being replaced
	flipped  bool // the nemesis flipped a bit on its disk
	removed  bool // no longer a member
	planted  bool // the planted defect is done (tests of the checks)
	nextID   uint64
	waiters  map[uint64]func(replica.Result) // proposals of this incarnation, by command ID
}

// start boots the node from its disk: a new member if it never made
// anything durable, else a restart that re-applies its log.
func (n *node) start() {
	if n.up {
		panic(fmt.Sprintf("node %d started twice", n.id))
	}
	n.life++
	n.up, n.busy = true, false
	n.waiters = make(map[uint64]func(replica.Result))
	cfg := consensus.Config{ID: n.id, Peers: n.peers, ElectionTicks: electionTicks}
	if (n.w.cfg.Seed>>1)%2 == 1 {
		// Half the seeds keep catch-up entries before each snapshot, as
		// a server's node does (cluster.catchUpEntries): a log that
		// starts before its snapshot, and a follower a little behind
		// served from it.
		cfg.CatchUpEntries, cfg.CatchUpBytes = simCatchUp, 1<<20
	}
	d, err := n.disk.open(n.w.cfg.bug == bugLyingSync)
	var ce *chute.CorruptionError
	if errors.As(err, &ce) && n.flipped {
		// The damage the nemesis did: the node does not salvage its log
		// (it would diverge from its peers); the operator replaces it.
		n.up, n.lost = false, true
		n.w.out.Damaged++
		n.w.replace(n)
		return
	}
	if err != nil {
		panic(fmt.Sprintf("node %d: open its log: %v", n.id, err))
	}
	if n.flipped {
		// The flip was in a file the log reads: reading it must fail.
		n.w.violation("node %d opened its log over a flipped bit", n.id)
	}
	if n.rn, err = consensus.Open(cfg, d, n.joining); err != nil {
		panic(fmt.Sprintf("node %d: start: %v", n.id, err))
	}
	life := n.life
	var tickFn func()
	tickFn = func() {
		if n.life != life || !n.up {
			return
		}
		n.rn.Tick()
		n.pump()
		n.w.after(tick, tickFn)
	}
	// Nodes tick out of phase with each other.
	n.w.after(n.w.between(0, tick), tickFn)
	n.pump()
}

// restart starts the node again after a crash, unless it was started
// already (heal), lost its disk, or left the group.
func (n *node) restart() {
	if !n.up && !n.lost && !n.removed {
		n.start()
	}
}

// crash stops the node at once: a power loss of its disk.
func (n *node) crash() {
	n.up = false
	n.life++
	n.waiters = nil
	n.disk.crash(n.w.rng)
}

// pump does the node's Raft work: persist (a sync takes disk time, during
// which the node keeps receiving and ticking), then send, apply, advance.
func (n *node) pump() {
	for n.up && !n.busy && n.rn.HasUpdate() {
		u := n.rn.Update()
		// A leader's snapshot: durable (a checkpoint) before the rest.
		if err := n.disk.rep.SaveReceived(context.Background(), u); err != nil {
			panic(fmt.Sprintf("node %d: %v", n.id, err))
		}
		if u.Leader { // consensus.Update.Leader: sent before the sync
			for _, m := range u.Messages {
				n.w.send(m)
			}
			u.Messages = nil
		}
		var b *journal.Batch
		if u.HardState != nil || len(u.Entries) > 0 {
			b = n.disk.save(u.HardState, u.Entries)
		}
		// Nothing written (nothing to, or a commit index alone, which the
		// log keeps for its next record: replica.Log.Save): no sync.
		if b == nil {
			n.apply(u)
			n.finish(u)
			continue
		}
		// Committed entries apply while the sync runs (as the server's
		// node does: internal/cluster).
		n.apply(u)
		n.busy = true
		d := n.w.between(50*time.Microsecond, 500*time.Microsecond)
		if n.slowDisk {
			d = n.w.between(5*time.Millisecond, 50*time.Millisecond)
		}
		life := n.life
		n.w.after(d, func() {
			if n.life != life {
				return // crashed meanwhile: the write may be lost
			}
			if err := n.disk.synced(b); err != nil {
				panic(fmt.Sprintf("node %d: sync: %v", n.id, err))
			}
			n.busy = false
			n.finish(u)
			n.pump()
		})
		return
	}
	if n.up && !n.busy {
		n.compact()
	}
}

// simCatchUp is the catch-up entries of half the seeds (node.start): a
// fifth of compactEvery, so that nodes far behind still get snapshots.
const simCatchUp = 20

// compactEvery is how many applied entries a node lets its log grow by
// before it replaces them with a snapshot (small, so that runs send many
// snapshots to nodes that come back from a crash behind the leader).
const compactEvery = 100

// compactBytes is the replica's SetCompactBytes: small, so that a log
// is also compacted once its commands since the snapshot outgrow the
// snapshot itself (the floor of the rule: states of a few KiB here),
// often before compactEvery entries (300 seeds: 21,027 snapshots taken
// against 19,544 by count alone).
const compactBytes = 1 << 10

// compact has the replica compact its log when it is due (replica.Replica.Compact).
func (n *node) compact() {
	did, err := n.disk.rep.Compact(context.Background(), n.rn)
	if err != nil {
		panic(fmt.Sprintf("node %d: compact: %v", n.id, err))
	}
	if did {
		n.w.out.Snapshots++
		n.w.out.MaxSegments = max(n.w.out.MaxSegments, n.disk.rep.Log().Segments())
	}
}

// shard is the node's state machine (also after a crash, as it was).
func (n *node) shard() *replica.Shard { return n.disk.rep.Shard() }

// finish sends an Update's messages (a follower's, once its entries are
// durable) and advances the node.
func (n *node) finish(u consensus.Update) {
	for _, m := range u.Messages {
		n.w.send(m)
	}
	n.rn.Advance()
	n.rn.TakeMemberChanges() // addresses are the server's: the simulation's nodes need none
}

// apply applies an Update's snapshot and committed entries.
func (n *node) apply(u consensus.Update) {
	if len(u.Committed) > 0 && n.id == 2 && n.w.cfg.bug != noBug {
		u.Committed = slices.Clone(u.Committed)
		for i, e := range u.Committed {
			u.Committed[i] = n.plant(e)
		}
	}
	restored, err := n.disk.rep.Apply(u, func(res replica.Result) {
		n.w.chk.applied(n, res)
		if res.Cmd != nil && res.Cmd.Node == n.id {
			if cb := n.waiters[res.Cmd.ID]; cb != nil {
				delete(n.waiters, res.Cmd.ID)
				cb(res)
			}
		}
	})
	if err != nil {
		panic(fmt.Sprintf("node %d: %v", n.id, err))
	}
	if restored {
		n.w.out.Restores++
	}
}

// plant applies the run's planted defect to an entry node 2 is about to
// apply (tests of the checks).
func (n *node) plant(e consensus.Entry) consensus.Entry {
	if n.id != 2 || e.Index < 40 || n.planted {
		return e
	}
	switch n.w.cfg.bug {
	case bugDiverge:
		n.planted = true
		e.Data = nil
	case bugQuietDiverge:
		if c, err := replica.Decode(e.Data); err == nil && c.Op == replica.OpPublish {
			n.planted = true
			c.Msgs[0].Prio = (c.Msgs[0].Prio + 1) % 10
			e.Data = c.Encode(nil)
		}
	}
	return e
}

// propose stamps cmd with this node's clock and a proposal ID and proposes
// it, if the node leads; done gets the result once the node applies it.
func (n *node) propose(cmd replica.Command, done func(replica.Result)) (leader uint64, ok bool) {
	st := n.rn.Status()
	if !n.up || !st.IsLeader {
		return st.Leader, false
	}
	n.nextID++
	cmd.Node, cmd.ID, cmd.Time = n.id, n.nextID, n.w.now+n.offset
	if err := n.rn.Propose(cmd.Encode(nil)); err != nil {
		return 0, false
	}
	n.waiters[cmd.ID] = done
	n.pump()
	return n.id, true
}
