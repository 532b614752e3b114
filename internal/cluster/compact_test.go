package cluster

import (
	"bytes"
	"context"
	"testing"
	"time"

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
	awaitSnap := func(id, above uint64, why string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for c.snapIndex(id) <= above {
			if time.Now().After(deadline) {
				t.Fatalf("member %d did not compact %s", id, why)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	base := map[uint64]uint64{}
	for id := range c.members {
		awaitSnap(id, 0, "for its membership")
		base[id] = c.snapIndex(id)
	}
	// One command of 64 KiB: past 16 KiB, on every member.
	publish(1, 64<<10)
	for id := range c.members {
		awaitSnap(id, base[id], "after 64 KiB of commands (count: every 2^40 entries)")
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
