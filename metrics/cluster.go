package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chutemq/chute/internal/cluster"
	"github.com/chutemq/chute/internal/hist"
	"github.com/chutemq/chute/server"
)

// The metrics of a cluster node (chute serve --cluster-peers): its view
// of each shard's Raft group, as `chute cluster status` shows it: a node
// runs one per shard (--cluster-shards), labelled by its number.
var (
	cTerm      = desc("chute_cluster_term", "The node's current Raft term.", "shard")
	cLeader    = desc("chute_cluster_is_leader", "1 if this node leads the shard.", "shard")
	cHasLeader = desc("chute_cluster_has_leader", "1 if the node knows a leader of the shard.", "shard")
	cCommit    = desc("chute_cluster_commit_index", "The last log index the node knows committed.", "shard")
	cApplied   = desc("chute_cluster_applied_index", "The last log index the node applied.", "shard")
	cApplyLag  = desc("chute_cluster_apply_lag", "Committed entries the node has not applied yet.", "shard")
	cSnapshot  = desc("chute_cluster_snapshot_index", "The log index of the node's latest snapshot.", "shard")
	cLeaders   = desc("chute_cluster_leader_changes_total", "Leaders (or terms of a leader) the node has seen since it started.", "shard")
	cTransfers = desc("chute_cluster_leader_transfers_total", "Times the node, leading, handed the shard's leadership to its preferred voter (clusters of several shards).", "shard")
	cSnapSent  = desc("chute_cluster_snapshots_sent_total", "Snapshots this node sent to members that were behind.", "shard")
	cSnapRest  = desc("chute_cluster_snapshots_restored_total", "Snapshots this node received and restored.", "shard")
	cMembers   = desc("chute_cluster_members", "Members of the shard's group, by kind (voter, learner).", "shard", "kind")
	cLag       = desc("chute_cluster_member_lag", "On the leader: entries a member's log is known to be behind the commit index.", "shard", "member")
	cUp        = desc("chute_cluster_up", "1 if the node answered this scrape (0: its loop did not, within 2 s).", "shard")
	cSyncs     = desc("chute_cluster_log_syncs_total", "Syncs of the node's Raft log (one per batch of entries it saved).", "shard")
	cDelays    = desc("chute_cluster_log_sync_delays_total", "Times the node, leading, waited out its commit delay (--sync-delay) before a batch.", "shard")
	cCommits   = desc("chute_cluster_commit_seconds", "On the leader: time from proposing a command (a publish, a delivery, an ack, an admin change) to applying it, once a quorum synced it: a commit round.", "shard")
	cSyncTime  = desc("chute_cluster_log_sync_seconds_total", "Time the node spent syncing its Raft log.", "shard")
	cLogBytes  = desc("chute_cluster_log_bytes_total", "Bytes the node appended to its Raft log since it started.", "shard")
	cLogSegs   = desc("chute_cluster_log_segments", "Segment files of the node's Raft log.", "shard")
	cCarried   = desc("chute_cluster_carried_total", "Messages this node, leading, carried from the shard's outboxes (dead letters for a dead-letter queue in another shard, letters redriven to a queue in another shard) to their shards.", "shard")
	cCarryFail = desc("chute_cluster_carry_failures_total", "Carries from the shard's outboxes that failed (tried again at the next pass).", "shard")
	cHeld      = desc("chute_cluster_forward_held", "1 while this process's forwarder of dead letters between shards is held by a backup (chute cluster backup), else 0.", "shard")
	cOutboxed  = desc("chute_cluster_outbox_messages", "On the leader: messages waiting in the shard's outboxes to be carried to another shard, at the forwarder's last look.", "shard")
	cVersion   = desc("chute_cluster_command_version", "The command version the cluster has recorded in its log (a rolling upgrade is done once it is the binaries' latest).", "shard")
)

// ClusterCollector is a prometheus.Collector that reads a cluster node's
// Info on each scrape.
type ClusterCollector struct {
	nodes  []*cluster.Node     // one per shard
	server func() server.Stats // nil: no server counters
}

// NewClusterCollector returns a collector for a process's nodes (one per
// shard), with the server's counters from stats if it is not nil.
func NewClusterCollector(stats func() server.Stats, nodes ...*cluster.Node) *ClusterCollector {
	return &ClusterCollector{nodes: nodes, server: stats}
}

// Describe implements prometheus.Collector.
func (c *ClusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cTerm, cLeader, cHasLeader, cCommit, cApplied, cApplyLag, cSnapshot, cLeaders, cTransfers, cSnapSent, cSnapRest, cMembers, cLag, cUp, cVersion,
		cSyncs, cDelays, cSyncTime, cCommits, cLogBytes, cLogSegs, cCarried, cCarryFail, cOutboxed, cHeld,
		sConns, sConnsTotal, sRequests, sAuthFailures, sRefused, sInflight, sInflightMax} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ClusterCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	count := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	if c.server != nil {
		collectServer(c.server(), gauge, count)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	histogram := func(d *prometheus.Desc, h hist.Snapshot, l ...string) {
		ch <- histogramMetric(d, h, l...)
	}
	for _, n := range c.nodes {
		collectShard(ctx, n, gauge, count, histogram)
	}
}

// collectShard collects one shard's node.
func collectShard(ctx context.Context, n *cluster.Node, gauge, count func(*prometheus.Desc, float64, ...string), histogram func(*prometheus.Desc, hist.Snapshot, ...string)) {
	shard := strconv.FormatUint(uint64(n.Shard()), 10)
	in, err := n.Info(ctx)
	if err != nil {
		gauge(cUp, 0, shard)
		return
	}
	gauge(cUp, 1, shard)
	gauge(cTerm, float64(in.Term), shard)
	gauge(cLeader, bool01(in.IsLeader), shard)
	gauge(cHasLeader, bool01(in.Leader != 0), shard)
	gauge(cCommit, float64(in.Commit), shard)
	gauge(cApplied, float64(in.Applied), shard)
	gauge(cApplyLag, float64(in.Commit-min(in.Applied, in.Commit)), shard)
	gauge(cSnapshot, float64(in.Snapshot), shard)
	count(cLeaders, float64(in.LeaderChanges), shard)
	count(cTransfers, float64(in.Transfers), shard)
	count(cSnapSent, float64(in.SnapshotsSent), shard)
	count(cSnapRest, float64(in.Restores), shard)
	gauge(cVersion, float64(in.Version), shard)
	count(cSyncs, float64(in.Log.Syncs), shard)
	count(cDelays, float64(in.Log.SyncDelays), shard)
	count(cSyncTime, in.Log.SyncSeconds, shard)
	histogram(cCommits, in.Commits, shard)
	count(cLogBytes, float64(in.Log.Bytes), shard)
	gauge(cLogSegs, float64(in.Log.Segments), shard)
	count(cCarried, float64(in.Carried), shard)
	count(cCarryFail, float64(in.CarryFailures), shard)
	gauge(cOutboxed, float64(in.Outboxed), shard)
	held := 0.0
	if !in.ForwardHeldUntil.IsZero() {
		held = 1
	}
	gauge(cHeld, held, shard)
	var voters, learners int
	for _, m := range in.Members {
		if m.Voter {
			voters++
		} else {
			learners++
		}
		if in.IsLeader {
			gauge(cLag, float64(m.Lag), shard, strconv.FormatUint(m.ID, 10))
		}
	}
	gauge(cMembers, float64(voters), shard, "voter")
	gauge(cMembers, float64(learners), shard, "learner")
}

// ClusterHandler is for server.Options.Metrics on a cluster node: the
// node's shard metrics, the server's counters, and the Go runtime's and
// process's metrics. (The queue metrics of a single broker are not there
// yet: the shard's statistics come from the leader's state.)
func ClusterHandler(nodes ...*cluster.Node) func(*server.Server) http.Handler {
	return func(s *server.Server) http.Handler {
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewClusterCollector(s.Stats, nodes...), collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
}
