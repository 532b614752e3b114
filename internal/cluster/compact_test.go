package cluster

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// snapIndex is the index of member id's log snapshot, read on its loop.
func (c *testCluster) snapIndex(id uint64) uint64 {
	c.t.Helper()
	var at uint64
	n := c.members[id].node
	if err := n.onLoop(context.Background(), func() { at = n.rep.SnapshotIndex() }); err != nil {
		c.t.Fatal(err)
	}
	return at
}

// awaitSnap waits (10 s at most) until member id's log snapshot is past
// index above.
func (c *testCluster) awaitSnap(id, above uint64, why string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.snapIndex(id) <= above {
		if time.Now().After(deadline) {
			c.t.Fatalf("member %d did not compact %s", id, why)
		}
		time.Sleep(10 * time.Millisecond) // polling the member's loop
	}
}

// snapBase waits until every member has compacted once, for its
// membership (Compact), and returns each one's snapshot index then.
func (c *testCluster) snapBase() map[uint64]uint64 {
	c.t.Helper()
	base := map[uint64]uint64{}
	for id := range c.members {
		c.awaitSnap(id, 0, "for its membership")
		base[id] = c.snapIndex(id)
	}
	return base
}

// TestCompactBytes: a log is compacted once the entries since its
// snapshot hold Config.CompactBytes of commands, whatever their count,
// and not before they hold as many bytes as the snapshot itself.
func TestCompactBytes(t *testing.T) {
	c := newTestClusterWith(t, 3, &testCluster{compact: 1 << 40, compactBytes: 16 << 10})
	if res := c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute}); res.Err != nil {
		t.Fatal(res.Err)
	}
	publish := func(n, size int) {
		t.Helper()
		for range n {
			if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: bytes.Repeat([]byte{'x'}, size)}}}); res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	// Each member compacts once first, for its membership (Compact):
	// that is the starting point.
	base := c.snapBase()
	// One command of 64 KiB: past 16 KiB, on every member.
	publish(1, 64<<10)
	for id := range c.members {
		c.awaitSnap(id, base[id], "after 64 KiB of commands (count: every 2^40 entries)")
	}
	// The snapshot holds the 64 KiB message: 10 × 2 KiB more are past
	// 16 KiB but short of it. The leader compacts (or not) on its loop
	// right after applying, before it answers the next command.
	l := c.leader()
	first := c.snapIndex(l.id)
	publish(10, 2<<10)
	if at := c.snapIndex(l.id); at != first {
		t.Fatalf("the leader compacted at %d after about 20 KiB of commands, with a snapshot of over 64 KiB", at)
	}
	publish(30, 2<<10)
	if at := c.snapIndex(l.id); at <= first {
		t.Fatalf("the leader did not compact after about 80 KiB of commands (snapshot at %d, 64 KiB)", at)
	}
}

// TestCompactShrunk: a log whose messages are gone is compacted though
// it is short of CompactBytes and of the count: once a snapshot would
// be at most a quarter of what it replaces (replica.Replica's shrunk).
// A burst published is not compacted for it (its messages are live);
// drained, it is, on every member. (Seen to fail with the rule taken
// out: no member compacted after the drain.)
func TestCompactShrunk(t *testing.T) {
	c := newTestClusterWith(t, 3, &testCluster{compact: 1 << 40, compactBytes: 256 << 10})
	if res := c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute}); res.Err != nil {
		t.Fatal(res.Err)
	}
	base := c.snapBase()
	// 160 KiB in 10 messages: past an eighth of CompactBytes (32 KiB),
	// short of it, and every message live.
	for range 10 {
		if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: bytes.Repeat([]byte{'x'}, 16<<10)}}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	l := c.leader()
	if at := c.snapIndex(l.id); at != base[l.id] {
		t.Fatalf("the leader compacted at %d with every message live (160 KiB of log)", at)
	}
	for got := 0; got < 10; {
		res := c.do(replica.Command{Op: replica.OpReceive, Queue: "q", Max: 10, Lease: time.Minute})
		if res.Err != nil || len(res.Delivered) == 0 {
			t.Fatalf("receive after %d of 10: %v", got, res.Err)
		}
		var items []engine.Item
		for _, d := range res.Delivered {
			items = append(items, engine.Item{Seq: d.Seq, Deliv: d.Deliv})
		}
		got += len(items)
		if res := c.do(replica.Command{Op: replica.OpAck, Queue: "q", Items: items}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	for id := range c.members {
		c.awaitSnap(id, base[id], "after the messages were acked")
	}
}
