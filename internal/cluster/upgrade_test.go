package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/replica"
)

// TestRollingUpgrade: three nodes of a binary that reads command version
// 1 (Config.MaxVersion) are upgraded one at a time while the cluster
// serves. Until the last one runs the newer binary, what only version 2
// carries is refused with ErrNotReplicated naming the members holding it
// back, and version 1 commands go on; then the leader moves the cluster
// to this binary's latest version through the log and the refused publish goes through. A
// member downgraded after that is stopped by the version change (or
// refuses its snapshot) instead of misreading the log.
func TestRollingUpgrade(t *testing.T) {
	c := newTestClusterWith(t, 3, &testCluster{compact: 10, maxVersion: 1})
	ctx := context.Background()
	keyed := chute.Message{Body: []byte("k"), Key: "account-7"}
	api := func() *API { return NewAPI(c.leader().node) }
	if err := api().CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	nudge := replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("v1")}}}
	for id := uint64(1); id <= 3; id++ {
		_, err := api().Publish(ctx, "q", keyed)
		if !errors.Is(err, chute.ErrNotReplicated) || !strings.Contains(err.Error(), "reads version 1") {
			t.Fatalf("a keyed publish with %d of 3 upgraded: %v", id-1, err)
		}
		c.stop(id)
		c.members[id].maxVersion = 0 // this binary's
		c.start(id)
		c.converge(&nudge)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if in, err := c.leader().node.Info(ctx); err == nil && in.Version == replica.MaxVersion() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not move to version %d within 10 s", replica.MaxVersion())
		}
		time.Sleep(10 * time.Millisecond) // polling the leader's loop
	}
	if _, err := api().Publish(ctx, "q", keyed); err != nil {
		t.Fatalf("a keyed publish once all are upgraded: %v", err)
	}
	c.converge(&nudge)
	for id, m := range c.members {
		in, err := m.node.Info(ctx)
		if err != nil || in.Version != replica.MaxVersion() {
			t.Fatalf("node %d: version %d, %v", id, in.Version, err)
		}
	}

	// A downgrade after the version change.
	down := c.leader().id%3 + 1 // a follower
	c.stop(down)
	for range 20 {
		c.do(nudge) // the others go on; compaction may put the change in a snapshot
	}
	m := c.members[down]
	m.maxVersion = 1
	if err := c.tryStart(down); err == nil {
		select {
		case <-m.node.done: // stopped at the version change, or at the snapshot
		case <-time.After(10 * time.Second):
			t.Fatal("a downgraded node read a log of version 2")
		}
		c.stop(down)
	} else if !strings.Contains(err.Error(), "upgrade it") {
		t.Fatalf("a downgraded node refused to start, saying: %v", err)
	}
	m.maxVersion = 0
	c.start(down) // upgraded again: catches up
	c.converge(&nudge)
}
