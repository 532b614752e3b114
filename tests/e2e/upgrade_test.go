package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// TestClusterRollingUpgrade: three `chute serve` processes that read
// command version 1 (as the previous release does: hidden
// --cluster-max-version 1) are restarted one at a time as this release
// while a producer publishes through the client: nothing it was
// confirmed is lost, and a keyed publish (version 2) is refused until
// the last node is upgraded, then taken. A node then started as the
// older binary exits with an error that says to upgrade it.
func TestClusterRollingUpgrade(t *testing.T) {
	ctx := context.Background()
	c := startClusterLinked(t, false, "--cluster-max-version", "1")
	_, cl := c.leader(ctx, -1)
	if err := cl.CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	endpoints := func() client.Option {
		var eps []string
		for _, p := range c.procs {
			eps = append(eps, p.addr)
		}
		return client.WithEndpoints(eps...)
	}
	keyed := chute.Message{Body: []byte("keyed"), Key: "account-7"}
	var confirmed []uint64
	publish := func(cl *client.Client, n int) {
		for range n {
			res, err := cl.Publish(ctx, "q", chute.Message{Body: []byte("m")})
			if err != nil {
				t.Fatalf("publish during the upgrade: %v", err)
			}
			confirmed = append(confirmed, res[0].Seq)
		}
	}
	for i := range 3 {
		_, cl := c.leader(ctx, -1)
		if _, err := cl.Publish(ctx, "q", keyed); !errors.Is(err, chute.ErrNotReplicated) || !strings.Contains(err.Error(), "reads version 1") {
			t.Fatalf("a keyed publish with %d of 3 nodes upgraded: %v", i, err)
		}
		publish(cl, 20)
		c.procs[i].stop()
		c.extra = nil // this release
		c.start(i)
		publish(c.procs[(i+1)%3].dial(t, endpoints()), 20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, cl := c.leader(ctx, -1)
		_, err := cl.Publish(ctx, "q", keyed)
		if err == nil {
			break
		}
		if !errors.Is(err, chute.ErrNotReplicated) || time.Now().After(deadline) {
			t.Fatalf("a keyed publish once all are upgraded: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the leader records the version at its next turn
	}
	// Every confirmed message is there, once.
	_, cl = c.leader(ctx, -1)
	var got []uint64
	for len(got) < len(confirmed)+1 {
		ds, err := cl.Receive(ctx, "q", chute.ReceiveOptions{Max: 100, Wait: 5 * time.Second})
		if err != nil || len(ds) == 0 {
			t.Fatalf("receive: %v (%d of %d)", err, len(got), len(confirmed)+1)
		}
		for _, d := range ds {
			got = append(got, d.Seq)
			if err := cl.Ack(ctx, "q", d.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range confirmed {
		if !slices.Contains(got, s) {
			t.Fatalf("confirmed message %d lost", s)
		}
	}
	// The older binary cannot read the log any more: it exits, saying so.
	li, _ := c.leader(ctx, -1)
	oi := (li + 1) % 3
	c.procs[oi].stop()
	c.extra = []string{"--cluster-max-version", "1"}
	p := launch(t, c.args(oi)...)
	if code := p.wait(30 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "upgrade it") {
		t.Fatalf("a node of the older version on a log of the newer (exit %d):\n%s", code, p.errOut)
	}
	c.extra = nil
	c.start(oi)
}
