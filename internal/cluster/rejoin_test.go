package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/replica"
)

// TestRebuildDamaged: a follower whose sealed segment took a bit flip
// refuses its log (damage, not a torn tail); started empty under a new ID
// with Config.Replaces, it has the leader remove its old ID, add it and
// promote it once caught up, and ends with the others' state, while the
// cluster goes on serving.
func TestRebuildDamaged(t *testing.T) {
	ctx := context.Background()
	c := newTestClusterWith(t, 3, &testCluster{compact: 1 << 30, segmentSize: 64 << 10})
	api := func() *API { return NewAPI(c.leader().node) }
	if err := api().CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1024)
	publish := func(n int) {
		for range n {
			if _, err := api().Publish(ctx, "q", chute.Message{Body: body}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(200)
	c.converge(nil)
	old := c.leader().id%3 + 1 // a follower
	m := c.members[old]
	c.stop(old)
	segs, _ := filepath.Glob(filepath.Join(m.dir, "*.seg"))
	slices.Sort(segs)
	if len(segs) < 2 {
		t.Fatalf("%d segments: none sealed", len(segs))
	}
	seg := segs[len(segs)-2]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = c.tryStart(old)
	var ce *chute.CorruptionError
	if !errors.As(err, &ce) && !errors.Is(err, replica.ErrLogDamaged) {
		t.Fatalf("a node with a flipped bit in a sealed segment started: %v", err)
	}
	publish(20) // the others go on

	// Rebuilt under a new ID, at the same address.
	const id = 7
	c.peers[id] = c.peers[old]
	delete(c.peers, old)
	delete(c.members, old)
	c.members[id] = &member{id: id, dir: filepath.Join(t.TempDir(), fmt.Sprint(id)), join: true, replaces: old}
	c.start(id)
	deadline := time.Now().Add(20 * time.Second)
	for {
		in, err := c.leader().node.Info(ctx)
		ids := []uint64{}
		voters := 0
		for _, mb := range in.Members {
			ids = append(ids, mb.ID)
			if mb.Voter {
				voters++
			}
		}
		slices.Sort(ids)
		if err == nil && voters == 3 && slices.Contains(ids, id) && !slices.Contains(ids, old) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rebuilt within 20 s: members %v, %d voters (%v)", ids, voters, err)
		}
		publish(1) // load meanwhile
	}
	publish(20)
	c.converge(nil)
	if st, err := api().QueueStats(ctx, "q"); err != nil || st.Ready < 240 {
		t.Fatalf("after the rebuild: %+v %v", st, err)
	}
}
