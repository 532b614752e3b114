package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/cluster"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/serveproc"
	"github.com/chutemq/chute/internal/vfs"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

// serveCluster serves a replicated cluster node (issue 12): the API
// from a cluster.Node, its Raft, status and membership endpoints on the
// same port, and the node's metrics. Alerts and the dashboard read a
// single broker's statistics and are off here.
func (f *serveFlags) serveCluster(cmd *cobra.Command, so server.Options, log *slog.Logger) error {
	peers, err := parsePeers(f.clusterPeers)
	if err != nil {
		return usageError{err}
	}
	if _, ok := peers[f.nodeID]; !ok || f.nodeID == 0 {
		return usageError{fmt.Errorf("--node-id %d is not among --cluster-peers", f.nodeID)}
	}
	if f.clusterID == "" {
		return usageError{errors.New("--cluster-peers needs --cluster-id")}
	}
	if f.sync != "always" {
		return usageError{errors.New("a cluster node syncs every write (--sync always)")}
	}
	shards := max(f.clusterShards, 1)
	if shards > maxShards {
		return usageError{fmt.Errorf("--cluster-shards %d: at most %d", shards, maxShards)}
	}
	raftDir := filepath.Join(f.data, "raft")
	// A node rebuilt under a new ID (its log was damaged) keeps running
	// under it: DATA/cluster-rebuild maps the --node-id it was given to
	// the ID it has now, which takes over that node's address.
	id, replaces := f.nodeID, uint64(0)
	rb, err := readRebuild(f.data)
	if err != nil {
		return err
	}
	if rb.origin == f.nodeID && rb.node != 0 {
		id, replaces = rb.node, rb.replaces
	}
	if err := checkIdentity(f.data, raftDir, f.clusterID, id, shards); err != nil {
		return err
	}
	// Members added since the cluster started (chute cluster add) are
	// known from the file this node keeps; --cluster-peers wins for an ID
	// it names.
	known, err := readPeersFile(f.data)
	if err != nil {
		return err
	}
	for kid, addr := range known {
		if _, ok := peers[kid]; !ok {
			peers[kid] = addr
		}
	}
	if id != f.nodeID {
		peers[id] = peers[f.nodeID]
		delete(peers, f.nodeID)
	}
	if f.clusterRestore != "" {
		if err := f.seedFromBackup(raftDir, shards, peers, log); err != nil {
			return err
		}
	}
	cfg := cluster.Config{ID: id, Peers: peers, Dir: raftDir, Join: f.join || replaces != 0, Token: f.token,
		SegmentSize: f.segmentSize, SyncDelay: max(syncDelay(f.syncDelay), 0), CompactEvery: f.compactEvery, CompactBytes: f.compactBytes, MaxVersion: f.clusterMaxVersion,
		MaxMessageSize: int(f.maxMessage), Replaces: replaces, OnRebuilt: afterAll(shards, f.rebuilt(log)),
		Authenticated: server.Authenticated, Logger: log, Shards: shards,
		OnPeers: func(p map[uint64]string) {
			if err := writePeersFile(f.data, p); err != nil {
				log.Error("cluster peers file", "err", err)
			}
		}}
	nodes, err := startShards(cfg, shards)
	var ce *chute.CorruptionError
	if (errors.As(err, &ce) || errors.Is(err, replica.ErrLogDamaged)) && f.clusterRebuild {
		// Not salvaged in place (the replica would diverge) nor brought
		// back under its ID (it may have voted or acknowledged entries it
		// lost): rebuilt from the peers under a new one, every shard.
		log.Error("the node's log is damaged: rebuilding it from the peers under a new ID", "err", err)
		if cfg, err = f.rebuild(cfg, log); err != nil {
			return err
		}
		nodes, err = startShards(cfg, shards)
	}
	if err != nil {
		return err
	}
	var fwd *cluster.Forwarder
	if shards > 1 { // dead letters carried to a dead-letter queue in another shard
		fwd = cluster.StartForwarder(nodes)
	}
	closeAll := func() error {
		var errs []error
		if fwd != nil {
			fwd.Close()
		}
		for _, n := range nodes {
			errs = append(errs, n.Close())
		}
		return errors.Join(errs...)
	}
	node := nodes[0]
	id = cfg.ID
	if f.metrics { // the node's shard metrics
		so.Metrics = metrics.ClusterHandler(nodes...)
	}
	so.Alerts, so.Dashboard = nil, nil
	var api chute.API = cluster.NewAPI(node)
	if shards > 1 {
		api = cluster.NewSharded(nodes)
	}
	srv := server.New(api, so)
	for _, n := range nodes {
		for path, h := range n.Routes() {
			srv.Handle(path, h)
		}
	}
	if fwd != nil { // held by chute cluster backup
		srv.Handle(cluster.ForwardHoldPath, fwd.HoldHandler())
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		closeAll()
		return err
	}
	stopIdentity := writeIdentityOnce(node, f.data, identityLine(f.clusterID, id, shards), log)
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	log.Info(serveproc.ServingMsg, "addr", scheme+"://"+ln.Addr().String(), "cluster", f.clusterID, "node", id,
		"peers", len(peers), "shards", shards, "data", f.data, "version", so.Info.Version)
	// A node that stops on its own (a log it cannot read: a command of a
	// later version, damage) ends the process with its error, for the
	// operator or the service manager to see, instead of serving
	// refusals.
	halt := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			<-n.Stopped()
			if err := n.Err(); err != nil {
				halt <- fmt.Errorf("shard %d: %w", n.Shard(), err)
			}
		}()
	}
	_, cancel, serveErr := f.serveUntilDone(cmd, srv, ln, log, halt)
	defer cancel()
	stopIdentity()
	if err := closeAll(); err != nil {
		log.Error("cluster node close", "err", err)
		return err
	}
	log.Info("stopped")
	return serveErr
}

// rebuildFile records a node rebuilt under a new ID: "origin=O node=N
// replaces=R", O the --node-id it is started with, N its ID now, R the
// ID it replaced (O, or the ID of an earlier rebuild).
const rebuildFile = "cluster-rebuild"

type rebuildState struct{ origin, node, replaces uint64 }

func readRebuild(data string) (rebuildState, error) {
	var st rebuildState
	b, err := os.ReadFile(filepath.Join(data, rebuildFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if _, err := fmt.Sscanf(string(b), "origin=%d node=%d replaces=%d", &st.origin, &st.node, &st.replaces); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(data, rebuildFile), err)
	}
	return st, nil
}

// rebuild sets a node whose log is damaged up to start empty under a new
// ID, replacing its current one (cluster.Config.Replaces): the damaged
// logs (every shard's) are kept aside (raft.damaged-TIME, raft-K.damaged-TIME), DATA/cluster-rebuild records the
// new ID (synced, before anything else changes), and the identity file
// goes (the node writes it again under the new ID once it holds a
// committed entry).
func (f *serveFlags) rebuild(cfg cluster.Config, log *slog.Logger) (cluster.Config, error) {
	var b [4]byte
	rand.Read(b[:])
	newID := uint64(binary.BigEndian.Uint32(b[:])) | 1<<32 // above any ID a person types, in practice
	path := filepath.Join(f.data, rebuildFile)
	line := fmt.Sprintf("origin=%d node=%d replaces=%d\n", f.nodeID, newID, cfg.ID)
	if err := vfs.WriteFileSynced(vfs.OS, path, path+".tmp", []byte(line)); err != nil {
		return cfg, err
	}
	var aside string
	for k := range max(cfg.Shards, 1) {
		dir := shardDir(cfg.Dir, k)
		aside = fmt.Sprintf("%s.damaged-%d", dir, time.Now().Unix())
		if err := os.Rename(dir, aside); err != nil && !errors.Is(err, os.ErrNotExist) {
			return cfg, err
		}
	}
	if err := os.Remove(filepath.Join(f.data, identityFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return cfg, err
	}
	cfg.Peers[newID] = cfg.Peers[cfg.ID]
	delete(cfg.Peers, cfg.ID)
	cfg.ID, cfg.Join, cfg.Replaces, cfg.OnRebuilt = newID, true, cfg.ID, afterAll(max(cfg.Shards, 1), f.rebuilt(log))
	log.Warn("rebuilding", "node", newID, "replaces", cfg.Replaces, "damaged log kept in", aside)
	return cfg, nil
}

// afterAll returns a function that runs fn on its n-th call: every
// shard's node reports its rebuild done (cluster.Config.OnRebuilt), and
// the node forgets the ID it replaced only once all have (a restart
// before then finishes the others').
func afterAll(n uint32, fn func()) func() {
	var mu sync.Mutex
	left := n
	return func() {
		mu.Lock()
		left--
		last := left == 0
		mu.Unlock()
		if last {
			fn()
		}
	}
}

// rebuilt returns what a node does once its rebuild is done: it keeps its
// new ID and forgets the one it replaced.
func (f *serveFlags) rebuilt(log *slog.Logger) func() {
	return func() {
		st, err := readRebuild(f.data)
		if err != nil || st.node == 0 || st.replaces == 0 {
			return
		}
		path := filepath.Join(f.data, rebuildFile)
		line := fmt.Sprintf("origin=%d node=%d replaces=0\n", st.origin, st.node)
		if err := vfs.WriteFileSynced(vfs.OS, path, path+".tmp", []byte(line)); err != nil {
			log.Error("cluster rebuild file", "err", err)
		}
	}
}

// seedFromBackup starts the node's log from a cluster backup (chute
// cluster backup), as every member of a new cluster does with the same
// backup and --cluster-peers; a node that has its log already keeps it
// (the flag can stay on its command line).
func (f *serveFlags) seedFromBackup(raftDir string, shards uint32, peers map[uint64]string, log *slog.Logger) error {
	if f.join {
		return usageError{errors.New("--cluster-restore starts a new cluster: not with --join (a joining node gets the state from the leader)")}
	}
	if names, _ := os.ReadDir(raftDir); len(names) > 0 {
		log.Info("the node has its log: --cluster-restore not used", "dir", raftDir)
		return nil
	}
	snaps, m, err := cluster.ReadBackup(f.clusterRestore)
	if err != nil {
		return err
	}
	if len(snaps) != int(shards) {
		return usageError{fmt.Errorf("--cluster-restore: the backup holds %d shard(s); start the cluster with --cluster-shards %d", len(snaps), len(snaps))}
	}
	versions := []uint8{m.CommandVersion}
	for _, p := range m.Shards {
		versions = append(versions, p.CommandVersion)
	}
	if v := slices.Max(versions); v > replica.MaxVersion() {
		return fmt.Errorf("--cluster-restore: the backup is of command version %d; this binary reads up to %d: use a newer one", v, replica.MaxVersion())
	}
	// Shard 0 last: a crash between two seeds leaves shard 0's log empty,
	// and the next start seeds them all again (a shard seeded already
	// is seeded anew: SeedLog refuses a log that is there, so it is
	// removed first).
	for k := len(snaps) - 1; k >= 0; k-- {
		dir := shardDir(raftDir, uint32(k))
		if k > 0 {
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
		if err := replica.SeedLog(vfs.OS, dir, replica.LogOptions{SegmentSize: f.segmentSize}, snaps[k], slices.Sorted(maps.Keys(peers))); err != nil {
			return fmt.Errorf("--cluster-restore: shard %d: %w", k, err)
		}
	}
	log.Info("log started from a backup", "backup", f.clusterRestore, "shards", len(snaps), "index", m.Applied, "taken", m.Created, "from", m.From)
	return nil
}

// parsePeers reads "1=http://a:7401,2=http://b:7401".
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		id, url, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.ParseUint(id, 10, 64)
		if !ok || err != nil || n == 0 || !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return nil, fmt.Errorf("--cluster-peers: %q is not ID=URL (an ID above 0, an http:// or https:// URL)", part)
		}
		if _, dup := peers[n]; dup {
			return nil, fmt.Errorf("--cluster-peers: node %d twice", n)
		}
		peers[n] = strings.TrimRight(url, "/")
	}
	return peers, nil
}

// peersFile keeps the members' addresses a node learned from membership
// changes (ID=URL lines), for its next start.
const peersFile = "cluster-peers"

func readPeersFile(data string) (map[uint64]string, error) {
	b, err := os.ReadFile(filepath.Join(data, peersFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	list := strings.Join(strings.Fields(string(b)), ",")
	if list == "" {
		return nil, nil
	}
	peers, err := parsePeers(list)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(data, peersFile), err)
	}
	return peers, nil
}

// writePeersFile replaces the file durably.
func writePeersFile(data string, peers map[uint64]string) error {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		fmt.Fprintf(&b, "%d=%s\n", id, peers[id])
	}
	path := filepath.Join(data, peersFile)
	return vfs.WriteFileSynced(vfs.OS, path, path+".tmp", []byte(b.String()))
}

// The identity file says which cluster and node a data directory belongs
// to. A node whose log is gone while the file says it was a member is
// refused: it may have voted or acknowledged entries under that ID, and
// coming back empty under it could elect a leader without them. It must
// be removed from the cluster and join under a new ID.
const identityFile = "cluster-identity"

// identityLine: "cluster=ID node=N", and " shards=S" for a cluster of
// more than one shard (a node started with another number is refused).
func identityLine(clusterID string, node uint64, shards uint32) string {
	if shards > 1 {
		return fmt.Sprintf("cluster=%s node=%d shards=%d\n", clusterID, node, shards)
	}
	return fmt.Sprintf("cluster=%s node=%d\n", clusterID, node)
}

func checkIdentity(data, raftDir, clusterID string, node uint64, shards uint32) error {
	b, err := os.ReadFile(filepath.Join(data, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new node; the file is written once its log holds something
	}
	if err != nil {
		return err
	}
	if string(b) != identityLine(clusterID, node, shards) {
		return fmt.Errorf("%s belongs to %q, not cluster %s node %d of %d shard(s) (--cluster-shards is fixed when a cluster is made)",
			data, strings.TrimSpace(string(b)), clusterID, node, shards)
	}
	names, _ := os.ReadDir(raftDir)
	if len(names) == 0 {
		return fmt.Errorf("node %d of cluster %s lost its log (%s is empty): it must not come back under the same ID (it may have voted or acknowledged entries and forgotten them); remove node %d from the cluster and start this one with --join and a new --node-id, after deleting %s",
			node, clusterID, raftDir, node, filepath.Join(data, identityFile))
	}
	return nil
}

// writeIdentityOnce writes the identity file once the node's log holds a
// committed entry (from then on, losing the log matters); it returns a
// function that stops waiting.
func writeIdentityOnce(node *cluster.Node, data, line string, log *slog.Logger) (stop func()) {
	path := filepath.Join(data, identityFile)
	if _, err := os.Stat(path); err == nil {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if node.Status().Commit > 0 {
				// Synced: a torn file after a power loss would refuse the
				// node's next start as another cluster's.
				if err := vfs.WriteFileSynced(vfs.OS, path, path+".tmp", []byte(line)); err != nil {
					log.Error("cluster identity file", "err", err)
				}
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// maxShards bounds --cluster-shards.
const maxShards = 256

// shardDir is shard k's log directory: raftDir for shard 0 (as before
// shards), raftDir-K for the others.
func shardDir(raftDir string, k uint32) string {
	if k == 0 {
		return raftDir
	}
	return fmt.Sprintf("%s-%d", raftDir, k)
}

// startShards starts the process's node of each shard (cfg's, in its
// shard's directory); if one fails, those started are closed.
func startShards(cfg cluster.Config, shards uint32) ([]*cluster.Node, error) {
	var nodes []*cluster.Node
	for k := range shards {
		c := cfg
		c.Shard, c.Dir = k, shardDir(cfg.Dir, k)
		n, err := cluster.Start(c)
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			if shards > 1 {
				err = fmt.Errorf("shard %d: %w", k, err)
			}
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}
