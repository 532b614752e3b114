package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/chutemq/chute/internal/hist"
)

// StatusPath serves a node's view of its cluster as JSON (GET; the
// cluster's token if it has one): `chute cluster status` reads it.
const StatusPath = "/chute.cluster.v1/status"

// Info is a node's view of its cluster.
type Info struct {
	ID       uint64   `json:"id"`
	Shard    uint32   `json:"shard"`
	Shards   uint32   `json:"shards"` // the cluster's (every shard's status is at ShardPath(StatusPath, shard))
	Leader   uint64   `json:"leader"` // 0: none known
	IsLeader bool     `json:"is_leader"`
	Term     uint64   `json:"term"`
	Commit   uint64   `json:"commit"`  // the last index known committed
	Applied  uint64   `json:"applied"` // the last index this node applied
	Snapshot uint64   `json:"snapshot"`
	Members  []Member `json:"members"`
	// LeaderChanges counts the leaders this node has seen since it
	// started; Restores the snapshots it received and restored;
	// SnapshotsSent those it sent to members behind it.
	LeaderChanges int64 `json:"leader_changes"`
	// Transfers counts the times this node, leading, handed leadership
	// to its shard's preferred voter (a cluster of several shards).
	Transfers     int64 `json:"leader_transfers"`
	Restores      int64 `json:"snapshots_restored"`
	SnapshotsSent int64 `json:"snapshots_sent"`
	// Carried counts the messages this node, leading, carried from the
	// shard's outboxes to other shards, and CarryFailures the carries
	// that failed (tried again); Outboxed is the messages waiting in the
	// outboxes at the forwarder's last look (0 on a follower: forward.go).
	Carried       int64 `json:"carried"`
	CarryFailures int64 `json:"carry_failures"`
	Outboxed      int64 `json:"outboxed"`
	// ForwardHeldUntil: this process's forwarder is held by a backup
	// until then (by the node's clock; zero: not held). Dead letters for
	// other shards wait in their outboxes meanwhile (forward.go).
	ForwardHeldUntil time.Time `json:"forward_held_until,omitzero"`
	// Version is the command version the cluster agreed on (the log's);
	// each member's is the latest it reads, as the leader last heard (0:
	// not known here).
	Version uint8 `json:"version"`
	// Commits is the time from proposing each command of this node's to
	// applying it, on the leader (where commands are proposed): a commit
	// round, with the commit delay, the syncs, the network and the loop's
	// turns. Since the node started; not in the status JSON.
	Commits hist.Snapshot `json:"-"`
	// Log is the node's Raft log on disk: its syncs (one per batch of
	// entries the node saved), the time spent in them, the bytes written
	// and the segments it holds.
	Log LogInfo `json:"log"`
}

// LogInfo is the node's Raft log on disk (Info.Log); SyncDelays counts
// the commit-delay waits of its loop while it led (Config.SyncDelay).
type LogInfo struct {
	Syncs       int64   `json:"syncs"`
	SyncDelays  int64   `json:"sync_delays"`
	SyncSeconds float64 `json:"sync_seconds"`
	Bytes       int64   `json:"bytes"`
	Segments    int     `json:"segments"`
}

// Member is one member as a node sees it; Match (known on the leader
// only) is how far its log is known to match the leader's.
type Member struct {
	ID      uint64 `json:"id"`
	Addr    string `json:"addr"`
	Voter   bool   `json:"voter"`
	Match   uint64 `json:"match,omitempty"`
	Lag     uint64 `json:"lag,omitempty"` // the leader's commit minus Match
	Leading bool   `json:"leader,omitempty"`
	Version uint8  `json:"version"`
}

// Info reports the node's view, from its loop.
func (n *Node) Info(ctx context.Context) (Info, error) {
	var in Info
	err := n.onLoop(ctx, func() {
		st := n.rn.Status()
		voters, learners := n.rn.Membership()
		in = Info{ID: n.cfg.ID, Shard: n.cfg.Shard, Shards: max(n.cfg.Shards, 1), Leader: st.Leader, IsLeader: st.IsLeader, Term: st.Term, Commit: st.Commit,
			Applied: n.rep.Shard().Applied(), Snapshot: n.rep.SnapshotIndex(), LeaderChanges: n.leaderChanges.Load(), Transfers: n.transfers.Load(), Restores: n.restores.Load(),
			SnapshotsSent: n.snapSends.Load(), Version: n.rep.Shard().Version(),
			Carried: n.carried.Load(), CarryFailures: n.carryFailures.Load(), Outboxed: n.outboxed.Load()}
		if until := n.heldUntil.Load(); until > n.cfg.Clock.Now().UnixNano() {
			in.ForwardHeldUntil = time.Unix(0, until).UTC()
		}
		in.Commits = n.commits.Snapshot()
		ls := n.rep.Log().Stats()
		in.Log = LogInfo{Syncs: ls.Syncs, SyncDelays: n.delays.Load(), SyncSeconds: ls.SyncTime.Seconds(), Bytes: ls.Bytes, Segments: ls.Segments}
		for _, l := range [][]uint64{voters, learners} {
			for _, id := range l {
				m := Member{ID: id, Addr: n.cfg.Peers[id], Voter: slices.Contains(voters, id), Leading: id == st.Leader}
				if st.IsLeader || id == n.cfg.ID { // (a follower hears from the leader only)
					m.Version = n.peerVersion(id)
				}
				if st.IsLeader {
					m.Match = n.rn.Match(id)
					if id == n.cfg.ID {
						m.Match = st.Commit
					}
					if m.Match < st.Commit {
						m.Lag = st.Commit - m.Match
					}
				}
				in.Members = append(in.Members, m)
			}
		}
	})
	return in, err
}

// StatusHandler serves Info at StatusPath.
func (n *Node) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodGet) {
			return
		}
		in, err := n.Info(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(in)
	})
}

// misdirected answers a request that only the leader takes: 421 with
// {"error": …, "leader": its address} (the CLI follows it once).
func misdirected(w http.ResponseWriter, nl *NotLeaderError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMisdirectedRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": nl.Error(), "leader": nl.Addr})
}

// admit checks a request's method and token (authorized), and answers
// 405 or 401 when it fails.
func (n *Node) admit(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method != method {
		http.Error(w, method+" only", http.StatusMethodNotAllowed)
		return false
	}
	return n.authorized(w, r)
}

// authorized checks a request for the cluster's token (when it has one)
// and answers 401 when it is missing or wrong.
func (n *Node) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := n.cfg.Token
	if tok == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+tok)) == 1 {
		return true
	}
	http.Error(w, "the cluster's token is required", http.StatusUnauthorized)
	return false
}

// BackupPath serves a consistent snapshot of the shard from the leader
// (GET; the cluster's token if it has one): `chute cluster backup` reads
// it, and `chute serve --cluster-restore` starts a new cluster from it.
const BackupPath = "/chute.cluster.v1/backup"

// Backup headers: the index the snapshot is at, the command version, and
// the SHA-256 of the body (hex).
const (
	BackupAppliedHeader = "Chute-Applied"
	BackupVersionHeader = "Chute-Command-Version"
	BackupSHA256Header  = "Chute-Sha256"
)

// Backup is the shard's state as of the last command the leader applied
// (replica.Shard.Snapshot: every queue, message, lease and schedule, and
// the exactly-once clients), the index it is at and the cluster's command
// version. A follower answers with a *NotLeaderError: a backup is taken
// from the leader, whose state holds every committed command.
func (n *Node) Backup(ctx context.Context) (data []byte, applied uint64, version uint8, err error) {
	if lerr := n.onLoop(ctx, func() {
		if st := n.rn.Status(); !st.IsLeader {
			err = &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
			return
		}
		sh := n.rep.Shard()
		data, applied, version = sh.Snapshot(), sh.Applied(), sh.Version()
	}); lerr != nil {
		return nil, 0, 0, lerr
	}
	return data, applied, version, err
}

// BackupHandler serves Backup at BackupPath: 200 with the snapshot; 421
// with {"leader": addr} at a follower.
func (n *Node) BackupHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodGet) {
			return
		}
		data, applied, version, err := n.Backup(r.Context())
		var nl *NotLeaderError
		switch {
		case errors.As(err, &nl):
			misdirected(w, nl)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		sum := sha256.Sum256(data)
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.Itoa(len(data)))
		h.Set(BackupAppliedHeader, strconv.FormatUint(applied, 10))
		h.Set(BackupVersionHeader, strconv.Itoa(int(version)))
		h.Set(BackupSHA256Header, hex.EncodeToString(sum[:]))
		w.Write(data)
	})
}
