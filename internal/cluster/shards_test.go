package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/apitest"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/server"
)

// shardedMember is one process of a sharded test cluster: a node per
// shard, all served on one address.
type shardedMember struct {
	l     net.Listener
	srv   *http.Server
	api   *server.Server // with shardedCluster.api
	nodes []*Node
	fwd   *Forwarder
}

type shardedCluster struct {
	t       *testing.T
	shards  int
	api     bool // serve the API (server.New over NewSharded) beside the nodes' endpoints
	dir     string
	peers   map[uint64]string
	members map[uint64]*shardedMember
}

func newShardedCluster(t *testing.T, members, shards int) *shardedCluster {
	return newShardedClusterWith(t, members, &shardedCluster{shards: shards})
}

func newShardedClusterWith(t *testing.T, members int, c *shardedCluster) *shardedCluster {
	c.t, c.dir, c.peers, c.members = t, t.TempDir(), map[uint64]string{}, map[uint64]*shardedMember{}
	for id := uint64(1); id <= uint64(members); id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.peers[id] = "http://" + l.Addr().String()
		c.members[id] = &shardedMember{l: l}
	}
	for id := range c.members {
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.members {
			c.stop(id)
		}
	})
	return c
}

func (c *shardedCluster) start(id uint64) {
	m := c.members[id]
	if m.l == nil {
		l, err := net.Listen("tcp", strings.TrimPrefix(c.peers[id], "http://"))
		if err != nil {
			c.t.Fatal(err)
		}
		m.l = l
	}
	mux := http.NewServeMux()
	handle := mux.Handle
	for sh := range uint32(c.shards) {
		dir := filepath.Join(c.dir, fmt.Sprint(id), "raft")
		if sh > 0 {
			dir += fmt.Sprintf("-%d", sh)
		}
		n, err := Start(Config{ID: id, Shard: sh, Shards: uint32(c.shards), Peers: c.peers, Dir: dir, CompactEvery: 20})
		if err != nil {
			c.t.Fatal(err)
		}
		m.nodes = append(m.nodes, n)
	}
	m.fwd = StartForwarder(m.nodes)
	if c.api {
		m.api = server.New(NewSharded(m.nodes), server.Options{})
		handle = m.api.Handle
	}
	for _, n := range m.nodes {
		for path, h := range n.Routes() {
			handle(path, h)
		}
	}
	handle(ForwardHoldPath, m.fwd.HoldHandler())
	if m.api != nil {
		go m.api.Serve(m.l)
		return
	}
	m.srv = &http.Server{Handler: mux}
	go m.srv.Serve(m.l)
}

func (c *shardedCluster) stop(id uint64) {
	m := c.members[id]
	if m.nodes == nil {
		return
	}
	if m.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.api.Shutdown(ctx); err != nil {
			c.t.Errorf("shutdown of member %d: %v", id, err)
		}
		cancel()
	} else {
		m.srv.Close()
	}
	m.srv, m.api, m.l = nil, nil, nil
	m.fwd.Close()
	for _, n := range m.nodes {
		if err := n.Close(); err != nil {
			c.t.Errorf("close node %d shard %d: %v", id, n.Shard(), err)
		}
	}
	m.nodes = nil
}

// leader waits (10 s at most) for a leader of shard among the running
// members.
func (c *shardedCluster) leader(shard uint32) (uint64, *Node) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for id, m := range c.members {
			if m.nodes != nil && m.nodes[shard].Status().IsLeader {
				return id, m.nodes[shard]
			}
		}
		time.Sleep(10 * time.Millisecond) // polling for an election
	}
	c.t.Fatalf("no leader of shard %d within 10 s", shard)
	return 0, nil
}

// do runs cmd in shard at its leader, retrying what may not have been
// applied (within 10 s).
func (c *shardedCluster) do(shard uint32, cmd replica.Command) replica.Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, n := c.leader(shard)
		res, err := n.Do(ctx, cmd)
		if err == nil {
			return res
		}
		var nl *NotLeaderError
		if !errors.As(err, &nl) && !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrClosed) || ctx.Err() != nil {
			c.t.Fatalf("shard %d: %v: %v", shard, cmd.Op, err)
		}
		time.Sleep(10 * time.Millisecond) // an election
	}
}

// converge waits (10 s at most) until every running member's node of
// shard has applied the same index, and fails if their state hashes
// differ; it returns that hash.
func (c *shardedCluster) converge(shard uint32) [32]byte {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var applied []uint64
		var hashes [][32]byte
		for _, m := range c.members {
			if m.nodes != nil {
				a, h := m.nodes[shard].inspect()
				applied, hashes = append(applied, a), append(hashes, h)
			}
		}
		same := true
		for i := range applied {
			same = same && applied[i] == applied[0]
		}
		if same {
			for _, h := range hashes[1:] {
				if h != hashes[0] {
					c.t.Fatalf("shard %d: members at index %d with different state hashes", shard, applied[0])
				}
			}
			return hashes[0]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("shard %d: not converged within 10 s: applied %v", shard, applied)
		}
		c.do(shard, replica.Command{Op: replica.OpReceive, Queue: "nudge", Max: 1}) // makes every member apply up to it
		time.Sleep(5 * time.Millisecond)                                            // polling the members' progress
	}
}

// TestShards: three processes, each running two shards' nodes on one
// address. Each shard is a Raft group of its own: it elects its own
// leader, holds only what was done in it, and its members converge;
// both survive the loss of a process and catch its nodes up when it
// comes back (through snapshots: the logs are compacted meanwhile). A
// stream that reaches another shard's path is refused, and each shard's
// status names its shard.
func TestShards(t *testing.T) {
	c := newShardedCluster(t, 3, 2)
	for sh := range uint32(2) {
		for _, q := range []string{"nudge", fmt.Sprintf("q%d", sh)} {
			if res := c.do(sh, replica.Command{Op: replica.OpCreateQueue, Queue: q, Visibility: time.Minute}); res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	publish := func(sh uint32, from, to int) {
		for i := from; i < to; i++ {
			res := c.do(sh, replica.Command{Op: replica.OpPublish, Queue: fmt.Sprintf("q%d", sh), Msgs: []replica.Msg{{ID: fmt.Sprint(i), Body: []byte{byte(i)}}}})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	publish(0, 0, 10)
	publish(1, 0, 25)
	// Each shard holds only its own queue.
	for sh := range uint32(2) {
		_, n := c.leader(sh)
		_, own := readyOn(t, n, fmt.Sprintf("q%d", sh))
		_, other := readyOn(t, n, fmt.Sprintf("q%d", 1-sh))
		if !own || other {
			t.Fatalf("shard %d: its queue there %v, the other shard's %v", sh, own, other)
		}
		c.converge(sh)
	}
	// Status per shard, at the shard's path.
	for sh := range uint32(2) {
		resp, err := http.Get(c.peers[1] + ShardPath(StatusPath, sh))
		if err != nil {
			t.Fatal(err)
		}
		var in Info
		err = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if err != nil || in.Shard != sh || len(in.Members) != 3 {
			t.Fatalf("status of shard %d: %+v, %v", sh, in, err)
		}
	}
	// A stream for shard 0 sent to shard 1's path: refused.
	req, _ := http.NewRequest(http.MethodPost, c.peers[2]+ShardPath(RaftPath, 1), bytes.NewReader(nil))
	req.Header.Set(shardHeader, "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a stream for shard 0 at shard 1: %s, want 400", resp.Status)
	}
	// Losing a process: both shards go on (each elects a leader among the
	// other two if it led there), and catch it up when it is back.
	down, _ := c.leader(1)
	c.stop(down)
	publish(0, 10, 40)
	publish(1, 25, 60)
	c.start(down)
	for sh := range uint32(2) {
		c.converge(sh)
		ready, _ := readyOn(t, c.members[down].nodes[sh], fmt.Sprintf("q%d", sh))
		if want := []int64{40, 60}[sh]; ready != want {
			t.Fatalf("shard %d on the returning member: %d ready, want %d", sh, ready, want)
		}
	}
	restored := c.members[down].nodes[0].restores.Load() + c.members[down].nodes[1].restores.Load()
	if restored == 0 {
		t.Fatalf("member %d caught up with no snapshot (its peers compacted every 20 entries)", down)
	}
	// Leaders spread: each shard ends led by its preferred voter (shard 0
	// by member 1, shard 1 by member 2), whoever won its elections.
	deadline := time.Now().Add(20 * time.Second)
	for sh := range uint32(2) {
		want := uint64(sh + 1)
		for {
			if id, _ := c.leader(sh); id == want {
				break
			}
			if time.Now().After(deadline) {
				id, n := c.leader(sh)
				in, _ := n.Info(context.Background())
				t.Fatalf("shard %d led by member %d after 20 s, want %d: %+v", sh, id, want, in)
			}
			time.Sleep(20 * time.Millisecond) // polling for the transfer
		}
	}
}

// TestPreferredLeader: shards are spread over the voters in order,
// whatever order the voters are listed in.
func TestPreferredLeader(t *testing.T) {
	voters := []uint64{7, 3, 5}
	for sh, want := range []uint64{3, 5, 7, 3} {
		if got := preferredLeader(voters, uint32(sh)); got != want {
			t.Errorf("shard %d: %d, want %d", sh, got, want)
		}
	}
	if preferredLeader(nil, 0) != 0 {
		t.Error("no voters: a leader")
	}
	if !slices.Equal(voters, []uint64{7, 3, 5}) {
		t.Errorf("the voters were reordered: %v", voters)
	}
}

// readyOn is queue's ready messages in n's state, read on its loop; ok
// false: no such queue there.
func readyOn(t *testing.T, n *Node, queue string) (ready int64, ok bool) {
	t.Helper()
	if err := n.onLoop(context.Background(), func() { ready, _, _, ok = n.rep.Shard().Counts(queue) }); err != nil {
		t.Fatal(err)
	}
	return ready, ok
}

// TestShardedConformance: the API conformance suite (as the embedded
// broker, the client and one shard's API pass it) through the Go client
// against three processes of three shards each, the client dialling one
// and following leader hints: every queue, topic and schedule the suite
// makes is placed in a shard, and each call goes to that shard's leader.
func TestShardedConformance(t *testing.T) {
	c := newShardedClusterWith(t, 3, &shardedCluster{shards: 3, api: true})
	c.settled(20 * time.Second)
	// Dialled: a member that does not lead shard 0, so that the calls on
	// names placed there follow a hint at least.
	lead0, _ := c.leader(0)
	dial := lead0%3 + 1
	leaders := map[uint32]uint64{}
	for sh := range uint32(3) {
		leaders[sh], _ = c.leader(sh)
	}
	t.Logf("leaders by shard %v; the client dials member %d", leaders, dial)
	var others []string
	for id := range c.members {
		if id != dial {
			others = append(others, c.peers[id])
		}
	}
	cl, err := client.Dial(c.peers[dial], client.WithEndpoints(others...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	apitest.Suite{NewAPI: func(*testing.T) chute.API { return cl }}.Run(t)
	// The suite's names went to every shard.
	var spread [3]int
	for _, sh := range c.placed() {
		spread[sh]++
	}
	if spread[0] == 0 || spread[1] == 0 || spread[2] == 0 {
		t.Fatalf("names per shard %v: some shard got none", spread)
	}
	for sh := range uint32(3) {
		c.converge(sh)
	}
}

// settled waits (within d) until every shard is led by its preferred
// voter (shard k by member k+1: balance.go) at this binary's command
// version: a new cluster hands leaderships over in its first seconds,
// which a test's calls would meet as elections.
func (c *shardedCluster) settled(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for sh := range uint32(c.shards) {
		c.upgraded(sh)
		want := preferredLeader(slices.Sorted(maps.Keys(c.peers)), sh)
		for {
			if id, _ := c.leader(sh); id == want {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("shard %d not led by member %d within %v", sh, want, d)
			}
			time.Sleep(20 * time.Millisecond) // polling for the transfer
		}
	}
}

// upgraded waits (10 s at most) until shard's leader has recorded this
// binary's command version (a directory needs version 3).
func (c *shardedCluster) upgraded(shard uint32) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, n := c.leader(shard)
		if in, err := n.Info(context.Background()); err == nil && in.Version == replica.MaxVersion() {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("shard %d: not at command version %d after 10 s", shard, replica.MaxVersion())
		}
		time.Sleep(5 * time.Millisecond) // polling the leader's loop
	}
}

// placed is each placed name's shard, from member 1's directory.
func (c *shardedCluster) placed() map[string]uint32 {
	out := map[string]uint32{}
	n := c.members[1].nodes[0]
	if dir := n.places.Load(); dir != nil {
		maps.Copy(out, *dir)
	}
	return out
}

// countLeaderHints counts the responses that name a leader (a refused
// call) on their way to the client.
type countLeaderHints struct {
	base  http.RoundTripper
	hints atomic.Int64
}

func (c *countLeaderHints) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil && resp.Header.Get("Chute-Leader") != "" {
		c.hints.Add(1)
	}
	return resp, err
}

// TestShardedHints: the Go client keeps a leader hint per queue. With
// three queues in three shards led by three different nodes, a client
// that alternates between them is refused once per queue, not on most
// calls (a single target would follow each refusal to the next).
func TestShardedHints(t *testing.T) {
	c := newShardedClusterWith(t, 3, &shardedCluster{shards: 3, api: true})
	c.settled(20 * time.Second) // shard k led by member k+1
	counter := &countLeaderHints{base: http.DefaultTransport}
	cl, err := client.Dial(c.peers[1], client.WithHTTPClient(&http.Client{Transport: counter}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	// A queue in each shard.
	byShard := map[uint32]string{}
	for i := 0; len(byShard) < 3; i++ {
		if i == 100 {
			t.Fatalf("100 queues in %d shards", len(byShard))
		}
		name := fmt.Sprint("h", i)
		if err := cl.CreateQueue(ctx, name, chute.QueueConfig{}); err != nil {
			t.Fatal(err)
		}
		sh, ok := c.members[1].nodes[0].Placement(name)
		if !ok {
			t.Fatalf("%s not placed", name)
		}
		if _, seen := byShard[sh]; !seen {
			byShard[sh] = name
		}
	}
	queues := []string{byShard[0], byShard[1], byShard[2]}
	for _, q := range queues { // one hint each, at most
		if _, err := cl.Publish(ctx, q, chute.Message{Body: []byte("warm")}); err != nil {
			t.Fatal(err)
		}
	}
	before := counter.hints.Load()
	for round := range 30 {
		for _, q := range queues {
			if _, err := cl.Publish(ctx, q, chute.Message{Body: []byte(fmt.Sprint(round))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := counter.hints.Load() - before; n != 0 {
		t.Fatalf("%d calls refused in 90 alternating publishes to three shards' queues", n)
	}
	// Every queue got its 31 messages.
	for _, q := range queues {
		st, err := cl.QueueStats(ctx, q)
		if err != nil || st.Ready != 31 {
			t.Fatalf("%s: %d ready, %v", q, st.Ready, err)
		}
	}
}

// TestShardedPlacement: the placement rules (cluster.Sharded), through
// one process's API of a 3-process, 3-shard cluster, at shard 0's
// leader's process so that the directory it reads is current. A group's
// queues share a shard; a queue its dead-letter queue's; a topic its
// subscriptions' and theirs; a dead-letter queue in another shard than
// its queue's group is refused; a refused create and a delete free their
// names; an update of an unknown queue places nothing; a transaction
// across shards is refused, within one group it goes through.
func TestShardedPlacement(t *testing.T) {
	c := newShardedClusterWith(t, 3, &shardedCluster{shards: 3})
	for sh := range uint32(3) {
		c.upgraded(sh)
	}
	id, _ := c.leader(0)
	m := c.members[id]
	api := NewSharded(m.nodes)
	dir := m.nodes[0]
	ctx := context.Background()
	// Calls go to each shard's leader: follow the hints by hand.
	do := func(f func(a chute.API) error) error {
		for range 50 {
			err := f(api)
			var le *chute.LeaderError
			if !errors.As(err, &le) {
				return err
			}
			for mid, mm := range c.members {
				if c.peers[mid] == le.Addr {
					err = f(NewSharded(mm.nodes))
					if !errors.As(err, &le) {
						return err
					}
				}
			}
			time.Sleep(10 * time.Millisecond) // an election
		}
		t.Fatal("no leader answered in 50 tries")
		return nil
	}
	where := func(name string) uint32 { t.Helper(); return placed(t, dir, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(do(func(a chute.API) error { return a.CreateQueue(ctx, "pay-a", chute.QueueConfig{Group: "payments"}) }))
	must(do(func(a chute.API) error { return a.CreateQueue(ctx, "pay-b", chute.QueueConfig{Group: "payments"}) }))
	if where("pay-a") != where("pay-b") || where("pay-a.dlq") != where("pay-a") {
		t.Fatalf("a group's queues and dead-letter queues in shards %d, %d, %d", where("pay-a"), where("pay-b"), where("pay-a.dlq"))
	}
	must(do(func(a chute.API) error { return a.CreateQueue(ctx, "orders", chute.QueueConfig{}) }))
	must(do(func(a chute.API) error {
		return a.CreateQueue(ctx, "refunds", chute.QueueConfig{DeadLetterQueue: "orders.dlq"})
	}))
	if where("refunds") != where("orders.dlq") {
		t.Fatalf("refunds in shard %d, its dead-letter queue in %d", where("refunds"), where("orders.dlq"))
	}
	// A group whose shard is not orders.dlq's, sharing it: the queue in
	// its group's shard, the dead-letter queue where it was (the
	// forwarder carries its dead letters: TestShardedDeadLetters).
	var group string
	for i := 0; group == ""; i++ {
		if g := fmt.Sprint("g", i); api.home(g) != where("orders.dlq") {
			group = g
		}
	}
	dlqShard := where("orders.dlq")
	must(do(func(a chute.API) error {
		return a.CreateQueue(ctx, "returns", chute.QueueConfig{Group: group, DeadLetterQueue: "orders.dlq"})
	}))
	if where("returns") != api.home(group) || where("orders.dlq") != dlqShard {
		t.Fatalf("returns in shard %d (its group's: %d), orders.dlq moved to %d from %d", where("returns"), api.home(group), where("orders.dlq"), dlqShard)
	}
	// A topic, its subscriptions and their dead-letter queues.
	must(do(func(a chute.API) error { return a.CreateTopic(ctx, "events", chute.TopicConfig{}) }))
	for _, sub := range []string{"audit", "billing"} {
		must(do(func(a chute.API) error { return a.Subscribe(ctx, "events", sub, chute.SubscriptionConfig{}) }))
		if where(sub) != where("events") || where(sub+".dlq") != where("events") {
			t.Fatalf("%s (dlq %d) in shard %d, its topic in %d", sub, where(sub+".dlq"), where(sub), where("events"))
		}
	}
	// A create the shard refuses frees what it placed.
	err := do(func(a chute.API) error {
		return a.CreateQueue(ctx, "bad", chute.QueueConfig{Backoff: chute.Backoff{Kind: 99}})
	})
	if !errors.Is(err, chute.ErrInvalidConfig) {
		t.Fatalf("an invalid config: %v", err)
	}
	waitUnplaced := func(name string) { t.Helper(); awaitPlacement(t, dir, name, false) }

	waitUnplaced("bad")
	waitUnplaced("bad.dlq")
	// A delete between a create's placing and its making (the create's
	// two steps by hand): the name, placed a moment ago, stays placed,
	// so the queue made is found.
	racy := api.home("racy")
	must(dir.Place(ctx, PlaceRequest{Name: "racy", Shard: racy}))
	if err := do(func(a chute.API) error { return a.DeleteQueue(ctx, "racy") }); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("delete of a queue placed, not made: %v", err)
	}
	must(do(func(a chute.API) error {
		return NewAPI(a.(*Sharded).apis[racy].n).CreateQueue(ctx, "racy", chute.QueueConfig{})
	}))
	if sh := where("racy"); sh != racy {
		t.Fatalf("racy made in shard %d, placed in %d", racy, sh)
	}
	must(do(func(a chute.API) error { _, err := a.QueueStats(ctx, "racy"); return err }))
	// A create's leftover (placed, never made: it crashed between its
	// steps) is freed by a delete once older than placeGrace.
	defer func(g time.Duration) { placeGrace = g }(placeGrace)
	placeGrace = 200 * time.Millisecond
	for _, kind := range []string{"queue", "topic", "schedule"} {
		name := "left-" + kind
		must(dir.Place(ctx, PlaceRequest{Name: name, Shard: api.home(name)}))
		time.Sleep(300 * time.Millisecond) // older than placeGrace, by the leader's clock
		err := do(func(a chute.API) error {
			switch kind {
			case "topic":
				return a.DeleteTopic(ctx, name)
			case "schedule":
				return a.DeleteSchedule(ctx, name)
			}
			return a.DeleteQueue(ctx, name)
		})
		if !notFound(err) {
			t.Fatalf("delete of the leftover %s: %v", kind, err)
		}
		waitUnplaced(name)
	}
	// An update of an unknown queue: not found, nothing placed.
	if err := do(func(a chute.API) error { return a.UpdateQueue(ctx, "ghost", chute.QueueConfig{}) }); !errors.Is(err, chute.ErrNotFound) && !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("update of an unknown queue: %v", err)
	}
	if _, ok := dir.Placement("ghost.dlq"); ok {
		t.Fatal("an update of an unknown queue placed its dead-letter queue")
	}
	// Transactions: within a group, and across shards.
	_, err = api.Commit(ctx, chute.Tx{Publish: []chute.TxPublish{{Target: "pay-a", Messages: []chute.Message{{Body: []byte("a")}}},
		{Target: "pay-b", Messages: []chute.Message{{Body: []byte("b")}}}}})
	var le *chute.LeaderError
	if err != nil && !errors.As(err, &le) {
		t.Fatalf("a transaction within a group: %v", err)
	}
	var other string
	for _, q := range []string{"orders", "refunds", "events"} {
		if where(q) != where("pay-a") {
			other = q
		}
	}
	if other != "" {
		_, err = api.Commit(ctx, chute.Tx{Publish: []chute.TxPublish{{Target: "pay-a", Messages: []chute.Message{{Body: []byte("a")}}},
			{Target: other, Messages: []chute.Message{{Body: []byte("b")}}}}})
		if !errors.Is(err, chute.ErrCrossGroup) {
			t.Fatalf("a transaction across shards: %v", err)
		}
	}
	// A delete frees the name (its dead-letter queue stays, as in one
	// broker: made again, the queue goes where that is); names freed can
	// be taken in another shard.
	must(do(func(a chute.API) error { return a.DeleteQueue(ctx, "pay-b") }))
	must(do(func(a chute.API) error { return a.DeleteQueue(ctx, "pay-b.dlq") }))
	waitUnplaced("pay-b")
	waitUnplaced("pay-b.dlq")
	must(do(func(a chute.API) error { return a.CreateQueue(ctx, "pay-b", chute.QueueConfig{Group: group}) }))
	if where("pay-b") != api.home(group) || where("pay-b.dlq") != api.home(group) {
		t.Fatalf("pay-b made again in shard %d (dlq %d), its group's is %d", where("pay-b"), where("pay-b.dlq"), api.home(group))
	}
	must(do(func(a chute.API) error { return a.DeleteQueue(ctx, "orders") }))
	waitUnplaced("orders")
	must(do(func(a chute.API) error { return a.CreateQueue(ctx, "orders", chute.QueueConfig{}) }))
	if where("orders") != where("orders.dlq") {
		t.Fatalf("orders made again in shard %d, its dead-letter queue is in %d", where("orders"), where("orders.dlq"))
	}
}

// TestShardedDeadLetters: a dead-letter queue shared by queues of three
// groups in three shards, and by a subscription of a topic in another
// shard than its own: every dead letter reaches it once, with its death
// (source, reason, last error) and its body; the outboxes empty, and
// lists do not show them; a carry repeated (a forwarder that failed
// before it cancelled its batch in the outbox, or a new leader's) puts
// nothing in twice, a later one goes in.
func TestShardedDeadLetters(t *testing.T) {
	c := newShardedClusterWith(t, 3, &shardedCluster{shards: 3, api: true})
	cl, ctx := c.dialSettled()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	router := NewSharded(c.members[1].nodes) // for its hash
	dir := c.members[1].nodes[0]
	groups := map[uint32]string{}
	for i := 0; len(groups) < 3; i++ {
		if g := fmt.Sprint("g", i); groups[router.home(g)] == "" {
			groups[router.home(g)] = g
		}
	}
	cfg := func(group string) chute.QueueConfig {
		return chute.QueueConfig{Group: group, MaxDeliveries: 1, DeadLetterQueue: "shared"}
	}
	sources := []string{"w0", "w1", "w2"}
	for sh, q := range sources {
		must(cl.CreateQueue(ctx, q, cfg(groups[uint32(sh)])))
	}
	dlqShard := placed(t, dir, "shared")
	topic := ""
	for i := 0; topic == ""; i++ {
		if name := fmt.Sprint("t", i); router.home(name) != dlqShard {
			topic = name
		}
	}
	must(cl.CreateTopic(ctx, topic, chute.TopicConfig{}))
	must(cl.Subscribe(ctx, topic, "sub", chute.SubscriptionConfig{Queue: cfg("")}))
	sources = append(sources, "sub")
	if sh := placed(t, dir, "sub"); sh == dlqShard {
		t.Fatalf("sub in the dead-letter queue's shard %d", sh)
	}

	const per = 25
	for _, q := range sources {
		target := q
		if q == "sub" {
			target = topic
		}
		for i := range per {
			if _, err := cl.Publish(ctx, target, chute.Message{Body: []byte(fmt.Sprintf("%s-%d", q, i))}); err != nil {
				t.Fatal(err)
			}
		}
		for got := 0; got < per; {
			ds, err := cl.Receive(ctx, q, chute.ReceiveOptions{Max: per, Wait: 5 * time.Second})
			must(err)
			for _, d := range ds {
				must(cl.Nack(ctx, q, chute.Nack{Receipt: d.Receipt, Error: "failed: " + string(d.Body)}))
			}
			got += len(ds)
		}
	}
	want := int64(per * len(sources))
	awaitReady(t, ctx, cl, "shared", want)
	seen := map[string]bool{}
	bySource := map[string]int{}
	for len(seen) < int(want) {
		ds, err := cl.Receive(ctx, "shared", chute.ReceiveOptions{Max: 100, Wait: 5 * time.Second})
		must(err)
		if len(ds) == 0 {
			t.Fatalf("shared: %d of %d received, then none", len(seen), want)
		}
		for _, d := range ds {
			body := string(d.Body)
			dl := d.DeadLetter
			if seen[body] || dl == nil || !strings.HasPrefix(body, dl.Source+"-") || dl.Reason != "max-deliveries" ||
				dl.LastError != "failed: "+body || d.Published.IsZero() {
				t.Fatalf("dead letter %q (seen before: %v): %+v", body, seen[body], dl)
			}
			seen[body] = true
			bySource[dl.Source]++
			must(cl.Nack(ctx, "shared", chute.Nack{Receipt: d.Receipt, Delay: -1})) // ready again, for the redrive
		}
	}
	for _, q := range sources {
		if bySource[q] != per {
			t.Fatalf("dead letters by source %v, want %d each", bySource, per)
		}
	}
	// A redrive sends each back to its source, in whichever shard it is.
	moved, err := cl.Redrive(ctx, "shared", 0)
	if err != nil || moved != want {
		t.Fatalf("redrive: %d moved, %v; want %d", moved, err, want)
	}
	for _, q := range sources {
		got := 0
		for got < per {
			ds, err := cl.Receive(ctx, q, chute.ReceiveOptions{Max: per, Wait: 10 * time.Second})
			must(err)
			if len(ds) == 0 {
				t.Fatalf("%s: %d of %d redriven received, then none", q, got, per)
			}
			for _, d := range ds {
				if !strings.HasPrefix(string(d.Body), q+"-") || d.DeadLetter != nil {
					t.Fatalf("%s received %q (dead letter info %+v)", q, d.Body, d.DeadLetter)
				}
				must(cl.Ack(ctx, q, d.Receipt))
			}
			got += len(ds)
		}
		if st, err := cl.QueueStats(ctx, q); err != nil || st.Totals.Redriven != per || st.Depth() != 0 {
			t.Fatalf("%s after its redriven letters: %+v, %v", q, st, err)
		}
	}
	// One chosen dead letter of a source in another shard back, by ref.
	remote := sources[(dlqShard+1)%3]
	_, err = cl.Publish(ctx, remote, chute.Message{Body: []byte(remote + "-once")})
	must(err)
	ds, err := cl.Receive(ctx, remote, chute.ReceiveOptions{Wait: 5 * time.Second})
	must(err)
	must(cl.Nack(ctx, remote, chute.Nack{Receipt: ds[0].Receipt}))
	var letter chute.Delivery
	for deadline := time.Now().Add(20 * time.Second); letter.Seq == 0; {
		if ps, err := cl.Peek(ctx, "shared", 1); err == nil && len(ps) == 1 {
			letter = ps[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("the dead letter of %s not in shared after 20 s: %v", remote, err)
		} else {
			time.Sleep(20 * time.Millisecond) // the forwarder's pass
		}
	}
	rr, err := cl.RedriveMessages(ctx, "shared", chute.MessageRef{Seq: letter.Seq})
	if err != nil || len(rr) != 1 || rr[0].Err != nil || rr[0].Queue != remote {
		t.Fatalf("redrive of %d: %+v, %v", letter.Seq, rr, err)
	}
	ds, err = cl.Receive(ctx, remote, chute.ReceiveOptions{Wait: 10 * time.Second})
	if err != nil || len(ds) != 1 || string(ds[0].Body) != remote+"-once" {
		t.Fatalf("%s after the redrive by ref: %+v, %v", remote, ds, err)
	}
	must(cl.Ack(ctx, remote, ds[0].Receipt))
	// The outboxes are empty, on every member, and not listed.
	placed := c.placed()
	for sh := range uint32(3) {
		c.converge(sh)
		for _, name := range append([]string{"shared"}, sources...) {
			if placed[name] == sh {
				continue
			}
			for id, m := range c.members {
				if ready, _ := readyOn(t, m.nodes[sh], name); ready != 0 {
					t.Fatalf("member %d shard %d: the outbox %s holds %d", id, sh, name, ready)
				}
			}
		}
	}
	// The forwarders counted what they carried: 75 dead letters and 75
	// redriven back, one of each by reference.
	var carried int64
	for _, m := range c.members {
		for _, n := range m.nodes {
			in, err := n.Info(ctx)
			must(err)
			carried += in.Carried
		}
	}
	if carried < 152 {
		t.Fatalf("the forwarders carried %d, want 152 at least", carried)
	}
	qs, err := cl.Queues(ctx)
	must(err)
	names := map[string]int{}
	for _, q := range qs {
		names[q.Name]++
	}
	for _, name := range append([]string{"shared"}, sources...) {
		if names[name] != 1 {
			t.Fatalf("%s listed %d times: %v", name, names[name], names)
		}
	}
	// A carry repeated, by an outbox that carried before: nothing goes
	// in again; a letter numbered above the last goes in.
	from := (dlqShard + 1) % 3
	carry := func(seq uint64) replica.Result {
		return c.do(dlqShard, replica.Command{Op: replica.OpCarry, Queue: "shared", Client: carryClient(from, "shared"), ClientSeq: seq,
			Carry: []replica.CarryMsg{{Seq: seq, Msg: replica.Msg{Body: []byte("again")},
				CarryIn: engine.CarryIn{Info: engine.DeadInfo{Source: "w0", Reason: engine.ReasonMaxDeliveries}}}}})
	}
	if res := carry(1); res.Err != nil || res.Count != 0 {
		t.Fatalf("a repeated carry: %d in, %v", res.Count, res.Err)
	}
	if res := carry(1 << 40); res.Err != nil || res.Count != 1 {
		t.Fatalf("a later carry: %d in, %v", res.Count, res.Err)
	}
	if st, err := cl.QueueStats(ctx, "shared"); err != nil || st.Ready != 1 {
		t.Fatalf("shared after the carries: %d ready, %v", st.Ready, err)
	}
}

// dialSettled waits for c's leaders (settled) and returns a client of
// members 1–3, dialling 1, closed when the test ends, and a context of a
// minute.
func (c *shardedCluster) dialSettled() (*client.Client, context.Context) {
	c.t.Helper()
	c.settled(20 * time.Second)
	cl, err := client.Dial(c.peers[1], client.WithEndpoints(c.peers[2], c.peers[3]))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c.t.Cleanup(cancel)
	return cl, ctx
}

// placed is the shard dir's copy of the directory places name in, once
// it has it: a name placed through another member (or at shard 0's
// leader, from here) reaches this copy a moment later (seen in CI:
// "pay-b.dlq is not placed").
func placed(t *testing.T, dir *Node, name string) uint32 {
	t.Helper()
	return awaitPlacement(t, dir, name, true)
}

// awaitPlacement waits (10 s at most) until dir's copy has name placed,
// or not, and returns its shard.
func awaitPlacement(t *testing.T, dir *Node, name string, want bool) uint32 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if sh, ok := dir.Placement(name); ok == want {
			return sh
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: placed %v after 10 s, want %v", name, !want, want)
		}
		time.Sleep(5 * time.Millisecond) // the (un)place applying here
	}
}

// awaitReady waits (20 s at most) until queue holds want ready messages
// (the forwarders' passes carry them), and fails if it holds more.
func awaitReady(t *testing.T, ctx context.Context, cl *client.Client, queue string, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := cl.QueueStats(ctx, queue)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready == want {
			return
		}
		if st.Ready > want || time.Now().After(deadline) {
			t.Fatalf("%s holds %d ready, want %d", queue, st.Ready, want)
		}
		time.Sleep(10 * time.Millisecond) // the forwarders' period
	}
}
