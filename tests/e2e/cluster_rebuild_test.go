//go:build unix

package e2e

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// TestClusterRebuild: a follower whose sealed segment took a bit flip
// while it was down finds the damage at its start and rebuilds itself
// from its peers under a new ID (the leader removes the old one, adds and
// promotes the new); the cluster keeps every confirmed message, and the
// rebuilt node restarts under its new ID.
func TestClusterRebuild(t *testing.T) {
	ctx := context.Background()
	// Small segments, no compaction: every segment is read at a start.
	c := startClusterLinked(t, false, "--segment-size", "64KiB", "--cluster-compact-every", "1000000")
	li, cl := c.leader(ctx, -1)
	if err := cl.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 2048)
	for range 100 {
		if _, err := cl.Publish(ctx, "q", chute.Message{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	i := (li + 1) % 3
	c.procs[i].cmd.Process.Signal(syscall.SIGKILL)
	c.procs[i].wait(10 * time.Second)
	c.procs[i] = nil
	if !flipSealed(t, rand.New(rand.NewPCG(1, 2)), filepath.Join(c.dirs[i], "raft")) {
		t.Fatal("no sealed segment to flip a bit in")
	}
	c.start(i)
	if !strings.Contains(c.procs[i].errOut.String(), "rebuilding") {
		t.Fatalf("node %d started on a damaged log without rebuilding:\n%s", c.ids[i], c.procs[i].errOut)
	}
	old := c.ids[i]
	c.rebuilt(ctx, i)
	if c.ids[i] == old {
		t.Fatal("rebuilt under its old ID")
	}
	for range 10 {
		if _, err := cl.Publish(ctx, "q", chute.Message{Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	// Restarted, it runs under its new ID, caught up.
	c.procs[i].stop()
	c.start(i)
	_, lc := c.leader(ctx, -1)
	st, err := lc.QueueStats(ctx, "q")
	if err != nil || st.Ready != 110 {
		t.Fatalf("after the rebuild: %d ready (want 110), %v", st.Ready, err)
	}
	in := c.status(ctx)
	if len(in.Members) != 3 {
		t.Fatalf("members after the rebuild: %+v", in.Members)
	}
	for _, m := range in.Members {
		if !m.Voter || m.ID == old {
			t.Fatalf("members after the rebuild: %+v", in.Members)
		}
	}
}
