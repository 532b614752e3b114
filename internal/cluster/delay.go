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

// hold is the delay's wait: until wait has passed by the node's clock,
// the loop takes proposals and messages as they come (into the next
// Update). arrived reports whether any came; stopped, that the node was
// closed meanwhile.
func (n *Node) hold(wait time.Duration, receive func([]consensus.Message), propose func(*proposal),
	park func(*Parked), stand func(standReq)) (arrived, stopped bool) {
	t := n.cfg.Clock.NewTimer(wait)
	defer t.Stop()
	n.delays.Add(1) // (counted once armed: a test that sees it may move the clock)
	for taken := 0; taken < maxBatchEvents; taken++ {
		select {
		case <-t.C():
			return arrived, false
		case <-n.stop:
			return arrived, true
		case msgs := <-n.inbox:
			receive(msgs)
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
