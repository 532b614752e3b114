package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/cluster"
	"github.com/chutemq/chute/internal/replica"
)

// freePorts returns n ports free on 127.0.0.1 for `chute serve`
// processes that bind them later (and again after each restart). They
// are drawn from 20000–31999, below the ephemeral ranges of Linux
// (32768–60999), macOS and Windows (49152–65535): a port the kernel
// hands out for :0 listeners or outgoing connections — of this test or
// of another package's, running beside it — then never takes one between
// the check here and the bind. (Drawn from :0 itself, a port was once
// taken by a benchmark's connection in that gap: "address already in
// use".)
func freePorts(t *testing.T, n int) []int {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for try := 0; len(ports) < n; try++ {
		if try == 1000 {
			t.Fatalf("no %d free ports in 20000–31999 after 1000 tries", n)
		}
		port := 20000 + mrand.IntN(12000)
		if slices.Contains(ports, port) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, port)
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
	// ids[i] is node i's ID (i+1 until the node is replaced); joining[i]
	// starts it with --join.
	ids     []uint64
	joining []bool
	extra   []string // more flags for every node
	shards  uint32   // its --cluster-shards (0: 1)
	queues  []string // the queues a nemesis run works on
	// links[i][j] (i ≠ j), if the cluster is proxied, carries what node
	// i sends node j: node i's --cluster-peers names it as j's address.
	links [][]*faultProxy
}

func startCluster(t *testing.T) *clusterNodes { return startClusterLinked(t, false) }

// startClusterLinked starts the cluster, with a faultProxy on every peer
// link if proxied, and the extra flags on every node.
func startClusterLinked(t *testing.T, proxied bool, extra ...string) *clusterNodes {
	c := newClusterNodes(t, proxied, extra...)
	for i := range 3 {
		c.start(i)
	}
	if !slices.Contains(extra, "--cluster-max-version") {
		c.upgraded()
	}
	return c
}

// upgraded waits (10 s at most) until the leader has recorded that every
// member reads this binary's command version, which a new cluster does
// once it has heard from every member (until then, what only that
// version carries is refused: a member could be of an older binary).
func (c *clusterNodes) upgraded() {
	t := c.t
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if in := c.status(context.Background()); in.Version == replica.MaxVersion() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster did not record its command version within 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling the leader
	}
}

// startClusterDeferred is a cluster of three nodes none of which is
// started yet.
func startClusterDeferred(t *testing.T, extra ...string) *clusterNodes {
	return newClusterNodes(t, false, extra...)
}

func newClusterNodes(t *testing.T, proxied bool, extra ...string) *clusterNodes {
	c := &clusterNodes{t: t, ports: freePorts(t, 3), ids: []uint64{1, 2, 3}, joining: make([]bool, 3), extra: extra}
	var peers []string
	for i, port := range c.ports {
		peers = append(peers, fmt.Sprintf("%d=http://127.0.0.1:%d", i+1, port))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprint(i+1)))
	}
	c.peers = strings.Join(peers, ",")
	if proxied {
		c.links = make([][]*faultProxy, 3)
		for i := range 3 {
			c.links[i] = make([]*faultProxy, 3)
			for j := range 3 {
				if i != j {
					c.links[i][j] = newFaultProxy(t, fmt.Sprintf("127.0.0.1:%d", c.ports[j]))
				}
			}
		}
	}
	c.procs = make([]*proc, 3)
	return c
}

// peersOf is node i's --cluster-peers: its own address, and the others'
// (through its links to them, if proxied).
func (c *clusterNodes) peersOf(i int) string {
	var peers []string
	for j, port := range c.ports {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if j != i && c.links != nil {
			addr = c.links[i][j].addr()
		}
		peers = append(peers, fmt.Sprintf("%d=http://%s", c.ids[j], addr))
	}
	return strings.Join(peers, ",")
}

func (c *clusterNodes) args(i int) []string {
	args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", c.ports[i]), "--data", c.dirs[i],
		"--cluster-id", "e2e", "--node-id", fmt.Sprint(c.ids[i]), "--cluster-peers", c.peersOf(i)}
	if c.joining[i] {
		args = append(args, "--join")
	}
	return append(args, c.extra...)
}

func (c *clusterNodes) start(i int) { c.procs[i] = start(c.t, c.args(i)...) }

// leader finds the node that leads (shard 0, in a cluster of several),
// within 10 s, and returns its index and a client of it.
func (c *clusterNodes) leader(ctx context.Context, skip int) (int, *client.Client) {
	i := c.shardLeader(0, skip)
	return i, c.procs[i].dial(c.t)
}

// shardLeader is the index of the node that leads shard, within 10 s
// (skip: not asked).
func (c *clusterNodes) shardLeader(shard uint32, skip int) int {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range c.procs {
			if i == skip || p == nil {
				continue
			}
			if in := c.shardInfo(i, shard); in != nil && in.IsLeader {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond) // polling for an election, not synchronising
	}
	c.t.Fatalf("no leader of shard %d within 10 s", shard)
	return 0
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
	if err := lc.CreateQueue(ctx, "jobs", chute.QueueConfig{VisibilityTimeout: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// A follower refuses and names the leader, to any client (here curl's
	// way: Connect with JSON)...
	fi := (li + 1) % 3
	leaderURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports[li])
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/chute.v1.MessageService/Publish", c.ports[fi]), "application/json",
		strings.NewReader(`{"target":"jobs","messages":[{"body":"eA=="}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Chute-Leader") != leaderURL || !strings.Contains(string(body), "NOT_LEADER") {
		t.Fatalf("a follower answered %s, Chute-Leader %q: %s", resp.Status, resp.Header.Get("Chute-Leader"), body)
	}
	// ... and the Go client follows it: a publish sent to the follower is
	// stored by the leader.
	if res, err := c.procs[fi].dial(t).Publish(ctx, "jobs", chute.Message{ID: "via-follower", Body: []byte("body via-follower")}); err != nil || len(res) != 1 {
		t.Fatalf("a publish through a follower: %v", err)
	}
	// A client of the leader that knows the others, for after its death.
	var others []string
	for i, port := range c.ports {
		if i != li {
			others = append(others, fmt.Sprintf("127.0.0.1:%d", port))
		}
	}
	fc, err := client.Dial(leaderURL, client.WithEndpoints(others...))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	const batches, per = 40, 5
	for b := range batches {
		msgs := make([]chute.Message, per)
		for j := range msgs {
			id := fmt.Sprint(b*per + j)
			msgs[j] = chute.Message{ID: id, Body: []byte("body " + id), Session: "p", SessionSeq: uint64(b*per + j + 1)}
		}
		// In a producer session a retry is stored once: retried while the
		// leader changes (a loaded machine may hold an election).
		for {
			_, err := lc.Publish(ctx, "jobs", msgs...)
			if err == nil {
				break
			}
			if !errors.Is(err, chute.ErrOutcomeUnknown) && !errors.Is(err, chute.ErrNotLeader) {
				t.Fatalf("publish %d: %v", b, err)
			}
		}
	}
	// SIGKILL the leader; time how long until a publish is confirmed again.
	killed := time.Now()
	c.procs[li].cmd.Process.Signal(syscall.SIGKILL)
	c.procs[li].wait(10 * time.Second)
	c.procs[li] = nil
	// The client that was talking to the leader goes on: it tries the
	// others, follows the new leader's hint, and the publish is confirmed.
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := fc.Publish(pctx, "jobs", chute.Message{ID: "after", Body: []byte("body after"), Session: "p", SessionSeq: batches*per + 1}); err != nil {
		t.Fatalf("no publish confirmed within 10 s of the kill: %v", err)
	}
	t.Logf("failover: a publish confirmed again %v after the leader's SIGKILL", time.Since(killed).Round(time.Millisecond))
	_, nc := c.leader(ctx, li)
	// Every confirmed message is delivered, and none again once its ack
	// is confirmed. On a loaded machine the leader may change again
	// meanwhile: a call whose outcome is unknown is retried, and leases
	// it may have taken come back after the queue's visibility timeout.
	acked := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(acked) < batches*per+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages acked within 60 s", len(acked), batches*per+2)
		}
		ds, err := nc.Receive(ctx, "jobs", chute.ReceiveOptions{Max: 50, Wait: time.Second})
		if errors.Is(err, chute.ErrOutcomeUnknown) || errors.Is(err, chute.ErrNotLeader) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			if acked[d.ID] || string(d.Body) != "body "+d.ID {
				t.Fatalf("%s delivered after its ack, or with body %q", d.ID, d.Body)
			}
			receipts[i] = d.Receipt
		}
		if err := nc.Ack(ctx, "jobs", receipts...); err == nil {
			for _, d := range ds {
				acked[d.ID] = true
			}
		} else if !errors.Is(err, chute.ErrOutcomeUnknown) && !errors.Is(err, chute.ErrNotLeader) && !errors.Is(err, chute.ErrStaleReceipt) {
			t.Fatal(err)
		}
	}
	// A Consume stream (client.Consumer) works against the leader too.
	for i := range 10 {
		if _, err := nc.Publish(ctx, "jobs", chute.Message{ID: fmt.Sprint("stream ", i), Body: []byte("x"),
			Session: "p", SessionSeq: batches*per + 2 + uint64(i)}); err != nil && !errors.Is(err, chute.ErrOutcomeUnknown) {
			t.Fatal(err)
		}
	}
	cons := client.NewConsumer(nc, "jobs", client.ConsumerOptions{Prefetch: 4})
	streamed := map[string]bool{}
	for len(streamed) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of 10 within the time", len(streamed))
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ds, err := cons.Receive(rctx, 10)
		cancel()
		if err != nil { // a stream the leader's change broke: the next one reopens
			continue
		}
		for _, d := range ds {
			if err := cons.Ack(ctx, d.Receipt); err == nil && strings.HasPrefix(d.ID, "stream ") {
				streamed[d.ID] = true
			}
		}
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	// chute cluster status, asked of a follower and of the leader.
	ni, _ := c.leader(ctx, li)
	for _, at := range []int{ni, 3 - li - ni} {
		out, err := exec.Command(binary(t), "cluster", "status", "--json", "--server", fmt.Sprintf("127.0.0.1:%d", c.ports[at])).Output()
		if err != nil {
			t.Fatalf("chute cluster status: %v", err)
		}
		var in struct {
			ID, Leader uint64
			IsLeader   bool `json:"is_leader"`
			Members    []struct {
				ID  uint64
				Lag uint64
			}
		}
		if err := json.Unmarshal(out, &in); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if in.ID != uint64(at+1) || in.Leader != uint64(ni+1) || in.IsLeader != (at == ni) || len(in.Members) != 3 {
			t.Fatalf("chute cluster status at node %d: %s", at+1, out)
		}
		// The same view as Prometheus metrics.
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.ports[at]))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		leading := "0"
		if at == ni {
			leading = "1"
		}
		if want := `chute_cluster_is_leader{shard="0"} ` + leading; !strings.Contains(string(body), want) {
			t.Fatalf("/metrics of node %d has no %q:\n%s", at+1, want, body)
		}
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
	// The operator's way back (docs/operations.md): remove the old ID,
	// join the node under a new one, add it, promote it once caught up.
	// The CLI is given the live nodes; a follower's answer names the
	// leader.
	var live []string
	for i, port := range c.ports {
		if i != oi {
			live = append(live, fmt.Sprintf("127.0.0.1:%d", port))
		}
	}
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binary(t), append(args, "--server", strings.Join(live, ","))...).CombinedOutput()
		if err != nil {
			t.Fatalf("chute %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("cluster", "remove", fmt.Sprint(oi+1))
	if err := os.Remove(filepath.Join(c.dirs[oi], "cluster-identity")); err != nil {
		t.Fatal(err)
	}
	newAddr := fmt.Sprintf("http://127.0.0.1:%d", freePorts(t, 1)[0])
	joined := start(t, "--listen", strings.TrimPrefix(newAddr, "http://"), "--data", c.dirs[oi], "--cluster-id", "e2e",
		"--node-id", "4", "--cluster-peers", c.peers+",4="+newAddr, "--join")
	defer joined.stop()
	cli("cluster", "add", "4", newAddr)
	type member struct {
		ID    uint64
		Voter bool
		Lag   uint64
		Addr  string
	}
	type status struct {
		Leader  uint64
		Members []member
	}
	var st status
	caughtUp := time.Now().Add(10 * time.Second)
	for {
		ni, _ := c.leader(ctx, oi)
		out, err := exec.Command(binary(t), "cluster", "status", "--json", "--server", fmt.Sprintf("127.0.0.1:%d", c.ports[ni])).Output()
		if err != nil || json.Unmarshal(out, &st) != nil {
			t.Fatalf("cluster status: %v %s", err, out)
		}
		if slices.ContainsFunc(st.Members, func(m member) bool { return m.ID == 4 && m.Lag == 0 && m.Addr == newAddr }) {
			break
		}
		if time.Now().After(caughtUp) {
			t.Fatalf("node 4 did not catch up within 10 s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond) // polling the learner's progress
	}
	if out := cli("cluster", "promote", "4"); !strings.Contains(out, "node 4 is a voter") {
		t.Fatalf("promote: %s", out)
	}
	out, err := exec.Command(binary(t), "cluster", "status", "--json", "--server", strings.TrimPrefix(newAddr, "http://")).Output()
	if err != nil || json.Unmarshal(out, &st) != nil || st.Leader == 0 || len(st.Members) != 3 {
		t.Fatalf("cluster status at node 4: %v %s", err, out)
	}
	for _, m := range st.Members {
		if !m.Voter || m.ID == uint64(oi+1) {
			t.Fatalf("members after the replacement: %s", out)
		}
	}
	// The others keep node 4's address for their next start.
	if b, err := os.ReadFile(filepath.Join(c.dirs[li], "cluster-peers")); err != nil || !strings.Contains(string(b), "4="+newAddr) {
		t.Fatalf("node %d's cluster-peers: %v %q", li+1, err, b)
	}
	for _, p := range c.procs {
		if p != nil && p.cmd.ProcessState == nil {
			p.stop()
		}
	}
}

// status is the leader's cluster.Info (of shard 0).
func (c *clusterNodes) status(ctx context.Context) cluster.Info { return c.shardStatus(0) }

// shardStatus is shard's leader's cluster.Info.
func (c *clusterNodes) shardStatus(shard uint32) cluster.Info {
	c.t.Helper()
	for range 50 {
		if in := c.shardInfo(c.shardLeader(shard, -1), shard); in != nil && in.IsLeader {
			return *in
		}
	}
	c.t.Fatalf("shard %d: no leader answered its status", shard)
	return cluster.Info{}
}
