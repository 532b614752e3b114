package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// TestClusterProducerFailover: a Producer dialled at a follower (its
// stream refused there, naming the leader) publishes through the
// leader's SIGKILL; every message it was confirmed is in the queue of
// the new leader once (its session numbers make the retries
// duplicates).
func TestClusterProducerFailover(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	li, lc := c.leader(ctx, -1)
	if err := lc.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	fi := (li + 1) % 3
	var eps []string
	for _, p := range c.procs {
		eps = append(eps, p.addr)
	}
	cl := c.procs[fi].dial(t, client.WithEndpoints(eps...))
	p := client.NewProducer(cl, "q", client.ProducerOptions{})
	defer p.Close(ctx)
	var futures []*client.Future
	const n = 400
	for i := range n {
		if i == n/2 {
			c.procs[li].cmd.Process.Signal(syscall.SIGKILL)
			c.procs[li].wait(10 * time.Second)
			c.procs[li] = nil
		}
		f, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, f := range futures {
		if _, err := f.Wait(wctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_, nc := c.leader(ctx, li)
	st, err := nc.QueueStats(ctx, "q")
	if err != nil || st.Ready != n {
		t.Fatalf("the new leader holds %d ready (want %d), %v", st.Ready, n, err)
	}
}
