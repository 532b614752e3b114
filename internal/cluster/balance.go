package cluster

import "slices"

// Leaders spread over the members: in a cluster of several shards, each
// shard has a preferred leader, its number modulo the voters (sorted), so
// that with as many shards as members each member leads one, and their
// work (proposals, syncs, the receives' leases) is spread instead of
// piled on whichever node won every first election (the first started,
// usually: measured in TestClusterShards, one node led all three shards).
// A leader that is not its shard's preferred one hands leadership over
// (the library's leadership transfer) once the preferred voter is active
// and close behind; it looks every balanceTicks ticks. While a transfer
// runs the library drops proposals (an election timeout at most): they
// fail as any proposal to a deposed leader does, and are retried.

// balanceTicks is how often (in ticks) a leader looks; balanceLag how
// far behind the commit index the preferred voter may be.
const (
	balanceTicks = 100
	balanceLag   = 1000
)

// preferredLeader is the voter that should lead shard (0: none).
func preferredLeader(voters []uint64, shard uint32) uint64 {
	if len(voters) == 0 {
		return 0
	}
	v := slices.Sorted(slices.Values(voters))
	return v[int(shard)%len(v)]
}

// balance runs on the loop at each tick.
func (n *Node) balance() {
	if n.cfg.Shards <= 1 || n.ticks%balanceTicks != 0 {
		return
	}
	st := n.rn.Status()
	if !st.IsLeader || n.confPending {
		return
	}
	voters, _ := n.rn.Membership()
	to := preferredLeader(voters, n.cfg.Shard)
	// Active: heard from within an election timeout. (Not the library's
	// RecentActive: its quorum check clears that every election timeout,
	// on the very tick this runs.)
	heard, ok := n.heard[to]
	active := ok && n.ticks-heard <= int64(max(n.cfg.ElectionTicks, 10))
	if to == 0 || to == n.cfg.ID || !active || n.rn.Match(to)+balanceLag < st.Commit {
		return
	}
	n.transfers.Add(1)
	n.cfg.Logger.Info("handing the shard's leadership to its preferred voter", "shard", n.cfg.Shard, "to", to)
	n.rn.TransferLeader(to)
}
