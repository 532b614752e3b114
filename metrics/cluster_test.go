package metrics_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/cluster"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

// TestClusterMetrics: a one-node cluster (its own leader) serves its
// shard's metrics at /metrics; the commit index moves with a publish.
func TestClusterMetrics(t *testing.T) {
	node, err := cluster.Start(cluster.Config{ID: 1, Peers: map[uint64]string{1: "http://127.0.0.1:1"}, Dir: filepath.Join(t.TempDir(), "raft")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !node.Status().IsLeader {
		if time.Now().After(deadline) {
			t.Fatal("a one-node cluster did not elect itself within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	api := cluster.NewAPI(node)
	addr := chutetest.StartServer(t, api, server.Options{Metrics: metrics.ClusterHandler(node)})
	fams, _ := scrape(t, addr, "")
	for name, want := range map[string]float64{"chute_cluster_up": 1, "chute_cluster_is_leader": 1, "chute_cluster_has_leader": 1} {
		if got := value(t, fams, name, "shard", "0"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, fams, "chute_cluster_members", "shard", "0", "kind", "voter"); got != 1 {
		t.Errorf("voters: %v", got)
	}
	if got := value(t, fams, "chute_cluster_member_lag", "shard", "0", "member", "1"); got != 0 {
		t.Errorf("the leader's own lag: %v", got)
	}
	before := value(t, fams, "chute_cluster_commit_index", "shard", "0")
	if v := value(t, fams, "chute_cluster_leader_transfers_total", "shard", "0"); v != 0 {
		t.Errorf("a one-shard node handed its leadership over %v times", v)
	}
	if value(t, fams, "chute_cluster_term", "shard", "0") < 1 || before < 1 {
		t.Errorf("term %v, commit %v: want both at least 1", value(t, fams, "chute_cluster_term", "shard", "0"), before)
	}
	syncs, logBytes := value(t, fams, "chute_cluster_log_syncs_total", "shard", "0"), value(t, fams, "chute_cluster_log_bytes_total", "shard", "0")
	commits := value(t, fams, "chute_cluster_commit_seconds", "shard", "0")
	ctx := context.Background()
	if err := api.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	// Keyed: a command of version 2; a one-node cluster records this
	// binary's latest version before it.
	if _, err := api.Publish(ctx, "q", chute.Message{Body: []byte("x"), Key: "k"}); err != nil {
		t.Fatal(err)
	}
	fams, _ = scrape(t, addr, "")
	if v := value(t, fams, "chute_cluster_command_version", "shard", "0"); v != float64(replica.MaxVersion()) {
		t.Errorf("command version %v after a keyed publish", v)
	}
	if v := value(t, fams, "chute_cluster_log_syncs_total", "shard", "0"); v < syncs+2 {
		t.Errorf("log syncs %v after a create and a publish, %v before", v, syncs)
	}
	if v := value(t, fams, "chute_cluster_log_bytes_total", "shard", "0"); v <= logBytes {
		t.Errorf("log bytes %v after a create and a publish, %v before", v, logBytes)
	}
	in, err := node.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The create and the publish (and the version record before it) were
	// proposed here and applied: each a commit timed, after a sync.
	if v := value(t, fams, "chute_cluster_commit_seconds", "shard", "0"); v < commits+2 || in.Commits.Count < uint64(v) || in.Commits.Sum <= 0 {
		t.Errorf("commits timed: %v after a create and a publish, %v before; the node's: %d, %v in all", v, commits, in.Commits.Count, in.Commits.Sum)
	}
	if v := value(t, fams, "chute_cluster_log_sync_delays_total", "shard", "0"); v != float64(in.Log.SyncDelays) {
		t.Errorf("sync delays %v, the node's status says %d", v, in.Log.SyncDelays)
	}
	if v := value(t, fams, "chute_cluster_log_segments", "shard", "0"); v < 1 {
		t.Errorf("log segments %v", v)
	}
	for _, name := range []string{"chute_cluster_carried_total", "chute_cluster_carry_failures_total", "chute_cluster_outbox_messages", "chute_cluster_forward_held"} {
		if v := value(t, fams, name, "shard", "0"); v != 0 { // one shard: nothing to carry
			t.Errorf("%s %v", name, v)
		}
	}
	if after := value(t, fams, "chute_cluster_commit_index", "shard", "0"); after < before+2 {
		t.Errorf("commit index %v after a create and a publish, %v before", after, before)
	}
	if value(t, fams, "chute_cluster_applied_index", "shard", "0") != value(t, fams, "chute_cluster_commit_index", "shard", "0") {
		t.Error("applied and committed differ on an idle node")
	}
	value(t, fams, "chute_server_connections") // the server's counters are there too
}
