package cluster

import (
	"time"

	"github.com/chutemq/chute/internal/consensus"
)

// The loop's commit delay (Config.SyncDelay).
//
// Each turn of a node's loop takes what is waiting (proposals, peers'
// messages), makes one Update of it and syncs that Update's entries
// before the next turn: a group commit. At a moderate, steady load the
// turns are small: at 2,000 messages/s (a publish, a delivery and an ack
// each) every node synced 550–700 times a second, and each fdatasync
// costs a node about 140 µs of CPU on this project's machine, whatever
// it covers. There every process stops for milliseconds once the
// machine's CPU quota is spent, and those stops are the tail of
// end-to-end latency (internal/journal/syncdelay.go; docs/replication.md,
// "The latency tail, sixth session").
//
// The journal's delay on the Raft log itself changed nothing in a
// cluster (fifth session), presumably because the log's writer has one
// caller, the loop, which waits for each sync, and the journal's
// fruitless rule leaves such a caller alone (not measured).
// The wait belongs where the events arrive, in the loop: woken idle by a
// proposal or a message less than SyncDelay after its last sync ended,
// the loop keeps taking proposals and messages until SyncDelay has passed
// since then, and makes one Update of them. Only the leader waits: its
// batches are what the followers receive, so fewer of them mean fewer
// syncs on every node, while a follower's wait would sit whole on the
// commit's path (measured with followers waiting too: W1's confirm p50
// 1.5–2 ms higher, 15.4–16.9 against 13.9–14.9 ms). The rule is the journal's
// (commitdelay.Rule): only on an idle wake, never from one batch straight
// to the next, and after waits in a row during which nothing came, only
// now and then. What a commit means does not change: an entry is still
// acknowledged only once synced, and committed on a quorum of syncs.
//
// A turn whose messages moved the commit index (a follower's answer to
// the leader's last batch) is not held, and a hold ends when one comes:
// what it commits has waited its round already, and its callers
// (confirms, deliveries) wait for the apply, not for more proposals.
// Held, it added up to the delay to a commit that came less than the
// delay after a sync. Measured (W3 at 2,000/s, interleaved pairs), the
// gain is within this machine's noise: e2e p99 15.2, 14.7, 14.5 ms
// against 16.2, 16.2, 15.1 with the hold, then 17.7, 20.2, 19.9 against
// 17.2, 21.3, 20.6 in a busier hour (docs/replication.md, ninth session).

// hold is the delay's wait: until wait has passed by the node's clock,
// or a message moved the commit index, the loop takes
// proposals and messages as they come (into the next Update). arrived
// reports whether any came; stopped, that the node was closed meanwhile.
func (n *Node) hold(wait time.Duration, receive func([]consensus.Message), propose func(*proposal),
	park func(*Parked), stand func(standReq)) (arrived, stopped bool) {
	t := n.cfg.Clock.NewTimer(wait)
	defer t.Stop()
	n.delays.Add(1) // (counted once armed: a test that sees it may move the clock)
	committed := n.rn.Status().Commit
	for taken := 0; taken < maxBatchEvents; taken++ {
		select {
		case <-t.C():
			return arrived, false
		case <-n.stop:
			return arrived, true
		case msgs := <-n.inbox:
			receive(msgs)
			if n.rn.Status().Commit != committed {
				return true, false
			}
		case p := <-n.props:
			propose(p)
		case p := <-n.parks:
			park(p)
		case r := <-n.stands:
			stand(r)
		}
		arrived = true
	}
	return arrived, false
}
