package replica

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/vfs"
)

// Replica is what a node keeps under its Raft node: the shard and its log
// on disk, and what it does with an Update besides syncing and sending —
// make a leader's snapshot durable, restore from it, apply the committed
// entries — and when to compact. The server's node (internal/cluster) and
// the simulation's (internal/replica/sim) both drive one, so that the
// simulation checks the code the server runs. Not safe for concurrent
// use.
type Replica struct {
	log   *Log
	shard *Shard
	every uint64 // compact once the log grew by this many entries
	// compactBytes: compact, too, once the entries applied since the
	// snapshot hold this many bytes of commands, or as many as the
	// snapshot, whichever is more (SetCompactBytes). bytes counts them;
	// snapSize is the snapshot's size.
	compactBytes    int64
	bytes, snapSize int64
	// snapContent is the shard's content() when the snapshot was taken
	// (or restored): how much the state shrank since.
	snapContent int64
	// snap is the index of the log's snapshot; voters and learners the
	// membership it recorded.
	snap             uint64
	voters, learners []uint64
	// max is the latest command version this replica reads (0: this
	// binary's: LimitVersion).
	max uint8
	// pending is the snapshot whose checkpoint is being written in the
	// background (LogOptions.Background): the Raft node's log is compacted
	// to it once that is over.
	pending *consensus.Snapshot
	// held is how long the last compaction held its caller (CompactHeld).
	held time.Duration
}

// OpenReplica opens the log in dir and rebuilds the shard from its
// snapshot (the entries after it come out of the Raft node again, to be
// applied); it returns what the log holds for the Raft node. The log is
// compacted every compactEvery entries.
func OpenReplica(fs vfs.FS, dir string, opts LogOptions, compactEvery uint64) (*Replica, consensus.Durable, error) {
	l, d, err := OpenLog(fs, dir, opts)
	if err != nil {
		return nil, d, err
	}
	r := &Replica{log: l, shard: NewShard(), every: compactEvery, compactBytes: DefaultCompactBytes}
	if d.Snapshot != nil {
		r.snapSize = int64(len(d.Snapshot.Data))
		if r.shard, err = RestoreShard(d.Snapshot.Data); err != nil {
			l.Close()
			return nil, d, err
		}
		r.snap, r.voters, r.learners = d.Snapshot.Index, d.Snapshot.Voters, d.Snapshot.Learners
	}
	r.snapContent = r.shard.content()
	return r, d, nil
}

// DefaultCompactBytes is the replica's SetCompactBytes unless told.
const DefaultCompactBytes = 64 << 20

// SetCompactBytes makes the replica compact its log also once the
// entries applied since its snapshot hold n bytes of commands, or as
// many bytes as the snapshot if that is more (n ≤ 0: by count only).
//
// The Raft node keeps every entry since the snapshot in memory (etcd's
// MemoryStorage), and a count alone does not bound that: five seconds of
// publishing flat out (about 300,000 messages of 256 B in 800 entries)
// left 70 MiB of entries in a leader's heap until the next snapshot,
// 10,000 entries later (docs/replication.md, "The latency tail, tenth
// session"), and batches of large messages would hold far more. The
// snapshot's own size is the floor so that a large state is not written
// again for every n bytes of log: a compaction writes about as much as
// the log took in since the one before, not more.
func (r *Replica) SetCompactBytes(n int64) { r.compactBytes = n }

// LimitVersion makes the replica read commands of at most version v, as
// an older binary would (tests of rolling upgrades): its shard, and every
// shard it restores from a snapshot later.
func (r *Replica) LimitVersion(v uint8) error {
	if err := r.shard.LimitVersion(v); err != nil {
		return err
	}
	r.max = v
	return nil
}

// Log is the replica's log (to save Updates to).
func (r *Replica) Log() *Log { return r.log }

// Shard is the replica's state machine.
func (r *Replica) Shard() *Shard { return r.shard }

// SnapshotIndex is the index of the log's snapshot (0: none).
func (r *Replica) SnapshotIndex() uint64 { return r.snap }

// CompactHeld is how long the last compaction held its caller: taking the
// shard's state, and with LogOptions.Background nothing else (the node
// logs it).
func (r *Replica) CompactHeld() time.Duration { return r.held }

// SnapshotSize is the size of the latest snapshot's data.
func (r *Replica) SnapshotSize() int64 { return r.snapSize }

// Close closes the log.
func (r *Replica) Close() error { return r.log.Close() }

// SaveReceived makes a leader's snapshot in u durable, before u's entries
// and hard state are saved (it replaces the whole log).
func (r *Replica) SaveReceived(ctx context.Context, u consensus.Update) error {
	if u.Snapshot == nil {
		return nil
	}
	if err := r.log.SaveSnapshot(ctx, u.Snapshot, nil); err != nil {
		return fmt.Errorf("replica: save a received snapshot: %w", err)
	}
	return nil
}

// Apply does u's state-machine part once u is durable and its messages
// sent: the shard is rebuilt from a received snapshot, then the committed
// entries are applied in order, each result given to each. restored says
// whether there was a snapshot.
func (r *Replica) Apply(u consensus.Update, each func(Result)) (restored bool, err error) {
	if s := u.Snapshot; s != nil {
		sh, err := RestoreShard(s.Data)
		if err == nil && r.max != 0 {
			err = sh.LimitVersion(r.max)
		}
		if err != nil {
			return false, fmt.Errorf("replica: restore a received snapshot: %w", err)
		}
		r.shard, r.snap, r.voters, r.learners = sh, s.Index, s.Voters, s.Learners
		r.pending = nil // older: the node's log starts at s now
		r.bytes, r.snapSize, r.snapContent = 0, int64(len(s.Data)), sh.content()
	}
	for _, e := range u.Committed {
		r.bytes += int64(len(e.Data))
		res, err := r.shard.Apply(e)
		if err != nil {
			return u.Snapshot != nil, err
		}
		each(res)
	}
	return u.Snapshot != nil, nil
}

// Compact, once the node has advanced past everything it applied,
// replaces the log up to the applied index with a snapshot (a journal
// checkpoint; the segments before it are released) when the log grew by
// the compaction interval since the last one, or by the bytes of
// SetCompactBytes, or when the membership
// changed since: a joining node refuses a snapshot whose membership does
// not name it, so a leader whose latest snapshot predates the addition
// would send that one again and again (seen in the simulation: 1,033
// sends in one seed) until the log next grew by the interval. It reports
// whether it compacted (or, with LogOptions.Background, began to).
//
// With LogOptions.Background the caller is held only while the shard's
// state is taken (Shard.SnapshotLater); the snapshot is assembled and its
// checkpoint written by the log's goroutine, and the Raft node's log is
// compacted by the first call after that is over (until then it keeps
// the entries, and a peer far behind gets the previous snapshot). No
// second snapshot is taken while one is written. (Measured on a 3-node
// W6: a node's loop held 353–1,495 ms by a compaction of 141 MB on the
// loop, 5–18 ms with this, against an election timeout of 100–200 ms;
// docs/replication.md, "A checkpoint off the loop".)
func (r *Replica) Compact(ctx context.Context, rn *consensus.Node) (bool, error) {
	if busy, err := r.finish(rn); busy || err != nil {
		return false, err
	}
	at := r.shard.Applied()
	voters, learners := rn.Membership()
	changed := !slices.Equal(voters, r.voters) || !slices.Equal(learners, r.learners)
	large := r.compactBytes > 0 && r.bytes >= max(r.compactBytes, r.snapSize)
	if at <= r.snap || at < r.snap+r.every && !changed && !large && !r.shrunk() {
		return false, nil
	}
	start := time.Now() // timed only when compacting: Compact runs every turn
	defer func() { r.held = time.Since(start) }()
	snap, err := rn.SnapshotAt(at)
	if err != nil {
		return false, err
	}
	after, err := rn.EntriesAfter(at)
	if err != nil {
		return false, err
	}
	size, assemble := r.shard.SnapshotLater()
	if err := r.log.Compact(ctx, snap, assemble, after); err != nil {
		return false, err
	}
	r.snap, r.voters, r.learners, r.pending = at, voters, learners, snap
	r.bytes, r.snapSize, r.snapContent = 0, int64(size), r.shard.content()
	_, err = r.finish(rn) // at once, unless in the background
	return true, err
}

// finish compacts the Raft node's log to the pending snapshot once its
// checkpoint is written; busy: it is not yet.
func (r *Replica) finish(rn *consensus.Node) (busy bool, err error) {
	if busy, err := r.log.Busy(); busy || err != nil {
		return busy, err
	}
	if p := r.pending; p != nil {
		r.pending = nil
		if err := rn.Compact(p); err != nil {
			return false, err
		}
		r.snapSize = int64(len(p.Data))
	}
	return false, nil
}

// shrunk says whether a snapshot now would be at most a quarter of
// what it replaces — the log since the last snapshot and that snapshot
// — and that is at least an eighth of SetCompactBytes: the state shrank
// (a backlog was drained), or most of the log is messages gone. A
// quarter, so that a steady state, whose log is mostly messages gone
// too, is written again about as often as SetCompactBytes' rule does
// (by the arithmetic, a state of 20 MB at every 60 MB of log, against
// 64 MiB). Without it, a node that took a burst kept every entry of it
// in memory and on disk, and the records of its messages in memory,
// until its log grew by the compaction interval again (measured:
// 200,000 messages of 1 KiB published, then drained, left each node
// with 477–666 MB of heap in use and 264 MB of data directory while the
// cluster stayed idle; docs/replication.md, "Publishes through an
// election, and a drained backlog"). The snapshot's size now is
// estimated from the last one's, less what the shard's content() lost
// since.
func (r *Replica) shrunk() bool {
	if r.compactBytes <= 0 {
		return false
	}
	replaced := r.bytes + r.snapSize
	est := max(r.snapSize+r.shard.content()-r.snapContent, 0)
	return replaced >= r.compactBytes/8 && 4*est <= replaced
}
