package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// freePorts returns n ports of 127.0.0.1 free a moment ago (a cluster's
// members must know each other's addresses before they start).
func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// clusterNodes is a 3-node cluster of `chute serve` processes on loopback.
type clusterNodes struct {
	t     *testing.T
	ports []int
	dirs  []string
	peers string
	procs []*proc
}

func startCluster(t *testing.T) *clusterNodes {
	c := &clusterNodes{t: t, ports: freePorts(t, 3)}
	var peers []string
	for i, port := range c.ports {
		peers = append(peers, fmt.Sprintf("%d=http://127.0.0.1:%d", i+1, port))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprint(i+1)))
	}
	c.peers = strings.Join(peers, ",")
	c.procs = make([]*proc, 3)
	for i := range 3 {
		c.start(i)
	}
	return c
}

func (c *clusterNodes) args(i int) []string {
	return []string{"--listen", fmt.Sprintf("127.0.0.1:%d", c.ports[i]), "--data", c.dirs[i],
		"--cluster-id", "e2e", "--node-id", fmt.Sprint(i + 1), "--cluster-peers", c.peers}
}

func (c *clusterNodes) start(i int) { c.procs[i] = start(c.t, c.args(i)...) }

// leader finds the node that leads (following the others' hints), within
// 10 s, and returns its index and a client of it.
func (c *clusterNodes) leader(ctx context.Context, skip int) (int, *client.Client) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range c.procs {
			if i == skip || p == nil {
				continue
			}
			cl := p.dial(c.t)
			_, err := cl.Queues(ctx)
			if err == nil {
				return i, cl
			}
		}
		time.Sleep(20 * time.Millisecond) // polling for an election, not synchronising
	}
	c.t.Fatal("no leader within 10 s")
	return 0, nil
}

// TestCluster: three `chute serve --cluster-peers` processes. Messages
// published at the leader survive its SIGKILL: a new leader is elected,
// hands out every confirmed message once, and a follower's refusal names
// it. The killed node rejoins with its data; a node whose log is wiped is
// refused under its old ID.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t)
	li, lc := c.leader(ctx, -1)
	if err := lc.CreateQueue(ctx, "jobs", chute.QueueConfig{VisibilityTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// A follower refuses and names the leader.
	fi := (li + 1) % 3
	_, err := c.procs[fi].dial(t).Publish(ctx, "jobs", chute.Message{Body: []byte("x")})
	var le *chute.LeaderError
	if !errors.As(err, &le) || le.Addr != fmt.Sprintf("http://127.0.0.1:%d", c.ports[li]) {
		t.Fatalf("a follower's publish: %v", err)
	}
	const batches, per = 40, 5
	for b := range batches {
		msgs := make([]chute.Message, per)
		for j := range msgs {
			id := fmt.Sprint(b*per + j)
			msgs[j] = chute.Message{ID: id, Body: []byte("body " + id), Session: "p", SessionSeq: uint64(b*per + j + 1)}
		}
		if _, err := lc.Publish(ctx, "jobs", msgs...); err != nil {
			t.Fatalf("publish %d: %v", b, err)
		}
	}
	// SIGKILL the leader; time how long until a publish is confirmed again.
	killed := time.Now()
	c.procs[li].cmd.Process.Signal(syscall.SIGKILL)
	c.procs[li].wait(10 * time.Second)
	c.procs[li] = nil
	var nc *client.Client
	for {
		_, nc = c.leader(ctx, li)
		if _, err := nc.Publish(ctx, "jobs", chute.Message{ID: "after", Body: []byte("body after"), Session: "p", SessionSeq: batches*per + 1}); err == nil {
			break
		} else if time.Since(killed) > 10*time.Second {
			t.Fatalf("no publish confirmed within 10 s of the kill: %v", err)
		}
	}
	t.Logf("failover: a publish confirmed again %v after the leader's SIGKILL", time.Since(killed).Round(time.Millisecond))
	got := map[string]bool{}
	for len(got) < batches*per+1 {
		ds, err := nc.Receive(ctx, "jobs", chute.ReceiveOptions{Max: 50, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			t.Fatalf("the queue ran dry after %d of %d", len(got), batches*per+1)
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			if got[d.ID] || string(d.Body) != "body "+d.ID {
				t.Fatalf("%s delivered twice or with body %q", d.ID, d.Body)
			}
			got[d.ID], receipts[i] = true, d.Receipt
		}
		if err := nc.Ack(ctx, "jobs", receipts...); err != nil {
			t.Fatal(err)
		}
	}
	// A Consume stream (client.Consumer) works against the leader too.
	for i := range 10 {
		if _, err := nc.Publish(ctx, "jobs", chute.Message{Body: []byte(fmt.Sprint("stream ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	cons := client.NewConsumer(nc, "jobs", client.ConsumerOptions{Prefetch: 4})
	for n := 0; n < 10; {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ds, err := cons.Receive(rctx, 10)
		cancel()
		if err != nil {
			t.Fatalf("consume after %d of 10: %v", n, err)
		}
		for _, d := range ds {
			if err := cons.Ack(ctx, d.Receipt); err != nil {
				t.Fatal(err)
			}
		}
		n += len(ds)
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	// The killed node rejoins with its data and catches up.
	c.start(li)
	// A node whose log is gone is refused under its old ID.
	oi := (li + 2) % 3
	c.procs[oi].stop()
	if err := os.RemoveAll(filepath.Join(c.dirs[oi], "raft")); err != nil {
		t.Fatal(err)
	}
	p := launch(t, c.args(oi)...)
	if code := p.wait(30 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "lost its log") {
		t.Fatalf("a node without its log started under its old ID (exit %d):\n%s", code, p.errOut)
	}
	for _, p := range c.procs {
		if p != nil && p.cmd.ProcessState == nil {
			p.stop()
		}
	}
}
