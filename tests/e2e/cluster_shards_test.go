package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/cluster"
	"github.com/chutemq/chute/internal/replica"
)

// shardInfo is node i's status of shard (nil: it did not answer).
func (c *clusterNodes) shardInfo(i int, shard uint32) *cluster.Info {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", c.ports[i], cluster.ShardPath(cluster.StatusPath, shard)))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var in cluster.Info
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&in) != nil {
		return nil
	}
	return &in
}

// shardLeaders waits (10 s at most) until every shard has a leader among
// the running nodes (skip: not asked), at this binary's command version,
// and returns each shard's leader's index.
func (c *clusterNodes) shardLeaders(shards uint32, skip int) []int {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaders := make([]int, shards)
		found := 0
		for sh := range shards {
			for i := range c.procs {
				if i == skip || c.procs[i] == nil {
					continue
				}
				if in := c.shardInfo(i, sh); in != nil && in.IsLeader && in.Version == replica.MaxVersion() {
					leaders[sh] = i
					found++
					break
				}
			}
		}
		if found == int(shards) {
			return leaders
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not every one of %d shards has a leader at version %d after 10 s", shards, replica.MaxVersion())
		}
		time.Sleep(10 * time.Millisecond) // polling for elections
	}
}

// TestClusterShards: three `chute serve --cluster-shards 3` processes.
// Queues and a topic with its subscriptions are placed across the
// shards, each shard with a leader of its own; a client that dials one
// node reaches every shard's leader; a transaction across shards is
// refused and one within a group goes through; SIGKILL of the node that
// leads the most shards loses no confirmed message, and every shard is
// served again. `chute cluster status` and the metrics show each shard;
// a node started with another --cluster-shards is refused.
func TestClusterShards(t *testing.T) {
	ctx := chutetest.Ctx(t)
	const shards = 3
	c := startClusterDeferred(t, "--cluster-shards", fmt.Sprint(shards))
	for i := range 3 {
		c.start(i)
	}
	c.shardLeaders(shards, -1)
	var addrs []string
	for _, port := range c.ports {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	cl, err := client.Dial(addrs[0], client.WithEndpoints(addrs[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	queues := []string{"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"}
	for _, q := range queues {
		if err := cl.CreateQueue(ctx, q, chute.QueueConfig{VisibilityTimeout: time.Minute}); err != nil {
			t.Fatalf("create %s: %v", q, err)
		}
	}
	if err := cl.CreateQueue(ctx, "q0", chute.QueueConfig{}); !errors.Is(err, chute.ErrExists) {
		t.Fatalf("q0 again: %v", err)
	}
	for _, g := range []string{"pay-a", "pay-b"} {
		if err := cl.CreateQueue(ctx, g, chute.QueueConfig{Group: "payments"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.CreateTopic(ctx, "events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"audit", "billing"} {
		if err := cl.Subscribe(ctx, "events", s, chute.SubscriptionConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range queues {
		if st, err := cl.QueueStats(ctx, q); err != nil || st.Name != q {
			t.Fatalf("stats of %s: %+v, %v", q, st, err)
		}
	}
	// A transaction within the group goes through; across shards (if
	// q0..q7 are not all in one: the hash spreads them) it is refused.
	if _, err := cl.Commit(ctx, chute.Tx{Publish: []chute.TxPublish{{Target: "pay-a", Messages: []chute.Message{{Body: []byte("a")}}},
		{Target: "pay-b", Messages: []chute.Message{{Body: []byte("b")}}}}}); err != nil {
		t.Fatalf("a transaction within a group: %v", err)
	}
	var cross error
	for _, q := range queues[1:] {
		_, cross = cl.Commit(ctx, chute.Tx{Publish: []chute.TxPublish{{Target: "q0", Messages: []chute.Message{{Body: []byte("x")}}},
			{Target: q, Messages: []chute.Message{{Body: []byte("y")}}}}})
		if cross != nil {
			break
		}
	}
	if !errors.Is(cross, chute.ErrCrossGroup) {
		t.Fatalf("a transaction across shards: %v", cross)
	}

	// Publishes to every queue and the topic, in producer sessions.
	confirmed := map[string]map[string]bool{}
	publish := func(target string, from, to int) {
		t.Helper()
		for n := from; n < to; n++ {
			id := fmt.Sprintf("%s-%d", target, n)
			// In a producer session a retry is stored once: retried while
			// a shard elects a leader (10 s at most).
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := cl.Publish(ctx, target, chute.Message{ID: id, Body: []byte(id), Session: "s-" + target, SessionSeq: uint64(n + 1)})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("publish %s: %v", id, err)
				}
				time.Sleep(20 * time.Millisecond) // an election in progress
			}
			if confirmed[target] == nil {
				confirmed[target] = map[string]bool{}
			}
			confirmed[target][id] = true
		}
	}
	for _, q := range queues {
		publish(q, 0, 20)
	}
	publish("events", 0, 20)

	// A dead-letter queue shared by queues of three groups in the three
	// shards: their dead letters are carried to it (the first group's
	// shard) by the forwarders, across the SIGKILL below.
	var dlGroups []string
	inShard := map[uint32]bool{}
	for i := 0; len(dlGroups) < shards; i++ {
		h := fnv.New32a() // the router's hash (cluster.Sharded)
		h.Write(fmt.Appendf(nil, "dg%d", i))
		if sh := h.Sum32() % shards; !inShard[sh] {
			inShard[sh] = true
			dlGroups = append(dlGroups, fmt.Sprintf("dg%d", i))
		}
	}
	deadIDs := map[string]bool{}
	for i, g := range dlGroups {
		q := fmt.Sprint("dl-", i)
		if err := cl.CreateQueue(ctx, q, chute.QueueConfig{Group: g, MaxDeliveries: 1, DeadLetterQueue: "dl-shared"}); err != nil {
			t.Fatal(err)
		}
		publish(q, 0, 5)
		for got := 0; got < 5; {
			ds, err := cl.Receive(ctx, q, chute.ReceiveOptions{Max: 5, Wait: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if err := cl.Nack(ctx, q, chute.Nack{Receipt: d.Receipt, Error: "boom"}); err != nil {
					t.Fatal(err)
				}
				deadIDs[d.ID] = true
			}
			got += len(ds)
		}
		delete(confirmed, q) // checked as dead letters below
	}

	// SIGKILL the node that leads the most shards.
	leaders := c.shardLeaders(shards, -1)
	count := map[int]int{}
	victim := leaders[0]
	for _, l := range leaders {
		if count[l]++; count[l] > count[victim] {
			victim = l
		}
	}
	t.Logf("leaders by shard %v; killing node %d", leaders, victim)
	c.procs[victim].cmd.Process.Signal(syscall.SIGKILL)
	c.procs[victim].wait(10 * time.Second)
	c.procs[victim] = nil
	c.shardLeaders(shards, victim)
	for _, q := range queues {
		publish(q, 20, 30)
	}
	publish("events", 20, 30)

	// Every confirmed message is there, once.
	for target, ids := range confirmed {
		from := []string{target}
		if target == "events" {
			from = []string{"audit", "billing"}
		}
		for _, q := range from {
			got := map[string]bool{}
			for {
				ds, err := cl.Receive(ctx, q, chute.ReceiveOptions{Max: 100, Wait: -1})
				if err != nil {
					t.Fatalf("receive %s: %v", q, err)
				}
				if len(ds) == 0 {
					break
				}
				var rs []string
				for _, d := range ds {
					if got[d.ID] || !ids[d.ID] {
						t.Fatalf("%s: %s delivered twice or never confirmed", q, d.ID)
					}
					got[d.ID] = true
					rs = append(rs, d.Receipt)
				}
				if err := cl.Ack(ctx, q, rs...); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(ids) {
				t.Fatalf("%s: %d of %d confirmed messages delivered", q, len(got), len(ids))
			}
		}
	}

	// Every dead letter reached the shared dead-letter queue, once.
	gotDead := map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); len(gotDead) < len(deadIDs); {
		ds, err := cl.Receive(ctx, "dl-shared", chute.ReceiveOptions{Max: 100, Wait: time.Second})
		if err != nil && time.Now().After(deadline) {
			t.Fatalf("receive dl-shared: %v", err)
		}
		for _, d := range ds {
			if gotDead[d.ID] || !deadIDs[d.ID] || d.DeadLetter == nil || d.DeadLetter.LastError != "boom" {
				t.Fatalf("dl-shared: %s (delivered before: %v, never dead: %v): %+v", d.ID, gotDead[d.ID], !deadIDs[d.ID], d.DeadLetter)
			}
			gotDead[d.ID] = true
			if err := cl.Ack(ctx, "dl-shared", d.Receipt); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dl-shared: %d of %d dead letters after 30 s", len(gotDead), len(deadIDs))
		}
	}
	if ds, err := cl.Receive(ctx, "dl-shared", chute.ReceiveOptions{Max: 10, Wait: 500 * time.Millisecond}); err != nil || len(ds) != 0 {
		t.Fatalf("dl-shared after all %d: %d more, %v", len(deadIDs), len(ds), err)
	}

	// The status and the metrics show each shard.
	alive := (victim + 1) % 3
	out, code := bkRunChute(t, "cluster", "status", "--server", addrs[alive])
	for sh := range shards {
		if want := fmt.Sprintf("shard %d of %d", sh, shards); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("chute cluster status (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	resp, err := http.Get("http://" + addrs[alive] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for sh := range shards {
		if want := fmt.Sprintf(`chute_cluster_up{shard="%d"} 1`, sh); !strings.Contains(string(metrics), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}

	// The killed node, started with another number of shards: refused.
	c.extra = []string{"--cluster-shards", "2"}
	p := launch(t, c.args(victim)...)
	if code := p.wait(20 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "--cluster-shards is fixed") {
		t.Fatalf("a node restarted with --cluster-shards 2: exit %d\n%s", code, p.errOut.String())
	}
	// Its disk lost instead: the operator replaces it under a new ID with
	// the CLI, which changes every shard's membership.
	c.extra = []string{"--cluster-shards", fmt.Sprint(shards)}
	server := addrs[alive]
	if out, code := bkRunChute(t, "cluster", "remove", fmt.Sprint(c.ids[victim]), "--server", server); code != 0 {
		t.Fatalf("chute cluster remove: exit %d\n%s", code, out)
	}
	if err := os.RemoveAll(c.dirs[victim]); err != nil {
		t.Fatal(err)
	}
	c.ids[victim], c.joining[victim] = 4, true
	c.start(victim)
	url := fmt.Sprintf("http://127.0.0.1:%d", c.ports[victim])
	if out, code := bkRunChute(t, "cluster", "add", "4", url, "--server", server); code != 0 {
		t.Fatalf("chute cluster add: exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sh := range uint32(shards) {
		for {
			in := c.shardStatus(sh)
			if slices.ContainsFunc(in.Members, func(m cluster.Member) bool { return m.ID == 4 && m.Match > 0 && m.Lag == 0 }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: node 4 did not catch up within 20 s: %+v", sh, in.Members)
			}
			time.Sleep(20 * time.Millisecond) // polling the learner's progress
		}
	}
	if out, code := bkRunChute(t, "cluster", "promote", "4", "--server", server); code != 0 {
		t.Fatalf("chute cluster promote: exit %d\n%s", code, out)
	}
	// Run again: every shard has it done already, and says nothing else.
	if out, code := bkRunChute(t, "cluster", "promote", "4", "--server", server); code != 0 {
		t.Fatalf("chute cluster promote, again: exit %d\n%s", code, out)
	}
	for sh := range uint32(shards) {
		in := c.shardStatus(sh)
		if len(in.Members) != 3 || !slices.ContainsFunc(in.Members, func(m cluster.Member) bool { return m.ID == 4 && m.Voter }) {
			t.Fatalf("shard %d after the replacement: %+v", sh, in.Members)
		}
	}
	c.shardLeaders(shards, -1)
}

// TestClusterShardsBackup: `chute cluster backup` of a cluster of three
// shards holds every member's forwarder and takes each shard's snapshot
// from its leader (shard 0's, the directory, last); with a member down it
// is refused, unless --force; three new `chute serve --cluster-shards 3
// --cluster-restore DIR` start a cluster that routes every queue to its
// shard and holds every message confirmed before the backup. A backup
// restored with another number of shards, or with one shard's snapshot
// damaged, is refused at start.
func TestClusterShardsBackup(t *testing.T) {
	ctx := chutetest.Ctx(t)
	const shards = 3
	a := startClusterLinked(t, false, "--cluster-shards", fmt.Sprint(shards))
	a.shardLeaders(shards, -1)
	cl, err := client.Dial(fmt.Sprintf("127.0.0.1:%d", a.ports[0]), client.WithEndpoints(fmt.Sprintf("127.0.0.1:%d", a.ports[1])))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	queues := []string{"a", "b", "c", "d", "e", "f"}
	for _, q := range queues {
		if err := cl.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := cl.Publish(ctx, q, chute.Message{ID: fmt.Sprint(q, i), Body: []byte(q)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := filepath.Join(t.TempDir(), "backup")
	out, code := bkRunChute(t, "cluster", "backup", dir, "--server", fmt.Sprintf("127.0.0.1:%d", a.ports[1]))
	if code != 0 || !strings.Contains(out, "backed up 3 shards") || !strings.Contains(out, "held the forwarders of 3 node(s)") {
		t.Fatalf("cluster backup: exit %d\n%s", code, out)
	}
	for k := range uint32(shards) {
		if _, err := os.Stat(filepath.Join(dir, cluster.BackupShardFile(k))); err != nil {
			t.Fatal(err)
		}
	}
	// A member down: its forwarder cannot be held, and the backup is
	// refused, unless --force.
	a.procs[0].stop()
	live := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", a.ports[1], a.ports[2])
	if out, code := bkRunChute(t, "cluster", "backup", filepath.Join(t.TempDir(), "refused"), "--server", live); code == 0 ||
		!strings.Contains(out, "could not hold every member's forwarder") || !strings.Contains(out, "node 1:") || !strings.Contains(out, "--force") {
		t.Fatalf("cluster backup with node 1 down: exit %d\n%s", code, out)
	}
	if out, code := bkRunChute(t, "cluster", "backup", filepath.Join(t.TempDir(), "forced"), "--server", live, "--force"); code != 0 ||
		!strings.Contains(out, "not held (--force): node 1:") || !strings.Contains(out, "held the forwarders of 2 node(s)") || !strings.Contains(out, "backed up 3 shards") {
		t.Fatalf("cluster backup --force with node 1 down: exit %d\n%s", code, out)
	}

	// Another number of shards: refused.
	wrong := startClusterDeferred(t, "--cluster-shards", "2", "--cluster-restore", dir)
	p := launch(t, wrong.args(0)...)
	if code := p.wait(30 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "holds 3 shard(s)") {
		t.Fatalf("restored with 2 shards: exit %d\n%s", code, p.errOut)
	}

	b := startClusterLinked(t, false, "--cluster-shards", fmt.Sprint(shards), "--cluster-restore", dir)
	b.shardLeaders(shards, -1)
	bc, err := client.Dial(fmt.Sprintf("127.0.0.1:%d", b.ports[2]), client.WithEndpoints(fmt.Sprintf("127.0.0.1:%d", b.ports[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	for _, q := range queues {
		ds, err := bc.Receive(ctx, q, chute.ReceiveOptions{Max: 100, Wait: -1})
		if err != nil || len(ds) != 10 {
			t.Fatalf("%s after the restore: %d messages, %v", q, len(ds), err)
		}
		for _, d := range ds {
			if string(d.Body) != q {
				t.Fatalf("%s: %q", q, d.Body)
			}
		}
	}
	if err := bc.CreateQueue(ctx, "a", chute.QueueConfig{}); !errors.Is(err, chute.ErrExists) {
		t.Fatalf("a again after the restore: %v", err)
	}

	// One shard's snapshot damaged: refused, naming the file.
	flipMiddle(t, filepath.Join(dir, cluster.BackupShardFile(2)))
	c := startClusterDeferred(t, "--cluster-shards", fmt.Sprint(shards), "--cluster-restore", dir)
	p = launch(t, c.args(0)...)
	if code := p.wait(30 * time.Second); code == 0 || !strings.Contains(p.errOut.String(), "shard-2.snapshot does not match its manifest") {
		t.Fatalf("a damaged backup (exit %d):\n%s", code, p.errOut)
	}
}
