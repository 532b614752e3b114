//go:build unix

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/cluster"
)

// TestClusterNemesis: a producer and a consumer work against a 3-node
// cluster of processes, every peer link through a faultProxy, while a
// nemesis SIGKILLs nodes (restarting them on their data), SIGSTOPs the
// leader for longer than an election, cuts the leader off (both ways, or
// only what it sends), slows every link, and replaces a follower whose
// disk was lost under a new ID (remove, join, add, promote).
// Afterwards every confirmed message must have been acked, and none
// delivered again after its ack was confirmed. CI runs one short
// schedule; CHUTE_NEMESIS_RUNS=N runs N (with seeds 1…N, or from
// CHUTE_NEMESIS_FIRST; one failing seed reruns with CHUTE_NEMESIS_SEED).
func TestClusterNemesis(t *testing.T) { nemesis(t, 1) }

// TestClusterNemesisShards: the same, against a cluster of three shards
// (--cluster-shards 3, each shard's leader on its own node once they
// spread), the producer and the consumer working on four queues placed
// across them; a member replaced or rebuilt is so in every shard.
func TestClusterNemesisShards(t *testing.T) { nemesis(t, 3) }

// envUint is the environment variable name as a number, or def when it is
// not set.
func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

func nemesis(t *testing.T, shards int) {
	runs := envUint(t, "CHUTE_NEMESIS_RUNS", 1)
	first := envUint(t, "CHUTE_NEMESIS_FIRST", 1) // runs go on from an earlier batch
	if seed := envUint(t, "CHUTE_NEMESIS_SEED", 0); seed != 0 {
		runs, first = 1, seed
	}
	var confirmed, acked, deadN int
	faults := map[string]int{}
	for seed := first; seed < first+runs; seed++ {
		ok := t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			f, c, a, d := nemesisRun(t, seed, shards)
			for k, n := range f {
				faults[k] += n
			}
			confirmed, acked, deadN = confirmed+c, acked+a, deadN+d
		})
		if !ok {
			t.Logf("reproduce: CHUTE_NEMESIS_SEED=%d go test ./tests/e2e -run '%s$' -v", seed, t.Name())
		}
	}
	total := 0
	for k, n := range faults {
		if !strings.HasSuffix(k, " found") { // an outcome of a flip, not a fault
			total += n
		}
	}
	t.Logf("%d runs: %d faults %v, %d messages confirmed, %d acked, %d received as dead letters", runs, total, faults, confirmed, acked, deadN)
}

func nemesisRun(t *testing.T, seed uint64, shards int) (faults map[string]int, confirmedN, ackedN, deadN int) {
	faults = map[string]int{}
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	// Small segments and frequent snapshots: sealed segments to flip bits
	// in, and snapshots sent to nodes that come back behind.
	c := startClusterLinked(t, true, "--segment-size", "64KiB", "--cluster-compact-every", "500", "--cluster-shards", fmt.Sprint(shards))
	c.shards = uint32(shards)
	// The queues, each of a group of its own (with shards, the groups
	// spread over them: the router's hash), share the dead-letter queue
	// "dead": the consumer nacks one message in seven into it, and
	// consumes it too. With shards, three queues' dead letters are
	// carried to it from other shards (the forwarder).
	queues, groups := []string{"jobs"}, []string{"g0"}
	if shards > 1 {
		queues = append(queues, "jobs-b", "jobs-c", "jobs-d")
		groups = nil
		inShard := map[uint32]int{}
		for i := 0; len(groups) < len(queues); i++ {
			h := fnv.New32a() // the router's hash (cluster.Sharded)
			h.Write(fmt.Appendf(nil, "g%d", i))
			if sh := h.Sum32() % uint32(shards); inShard[sh] < (len(queues)+shards-1)/shards {
				inShard[sh]++
				groups = append(groups, fmt.Sprint("g", i))
			}
		}
		c.shardLeaders(c.shards, -1)
	}
	const dead = "dead"
	c.queues = append(slices.Clone(queues), dead)
	var addrs []string
	for _, port := range c.ports {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	{
		cl, err := client.Dial(addrs[0], client.WithEndpoints(addrs[1:]...))
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range queues {
			cfg := chute.QueueConfig{VisibilityTimeout: 2 * time.Second, Group: groups[i], MaxDeliveries: 1, DeadLetterQueue: dead}
			if err := cl.CreateQueue(ctx, q, cfg); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	dial := func() *client.Client {
		cl, err := client.Dial(addrs[0], client.WithEndpoints(addrs[1:]...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	// retryable: the call may be sent again (a producer session makes a
	// publish's retry a duplicate; receives and acks are safe to repeat).
	retryable := func(err error) bool {
		return errors.Is(err, chute.ErrOutcomeUnknown) || errors.Is(err, chute.ErrNotLeader) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, chute.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, chute.ErrStaleReceipt) ||
			// A node killed mid-call: the connection reset or closed
			// (connect calls that a cancellation).
			errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, context.Canceled) || isUnavailable(err)
	}
	var mu sync.Mutex
	confirmed, acked := map[string]bool{}, map[string]bool{}
	// delivered: every ID the consumer received; ackUnknown: IDs whose ack
	// failed in a way that leaves its outcome unknown (the node died with
	// the answer): such a message may be gone, acked, without the test
	// hearing of it.
	delivered, ackUnknown, deadLetters := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var violations []string
	violate := func(format string, args ...any) { // (not with mu held)
		mu.Lock()
		violations = append(violations, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the producer: batches of 5 in a session, each until confirmed
		defer wg.Done()
		pc := dial()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			// Batch b to queue b mod len(queues), numbered in that queue's
			// session.
			q, qb := queues[b%len(queues)], b/len(queues)
			msgs := make([]chute.Message, 5)
			for j := range msgs {
				id := fmt.Sprint(b*5 + j)
				msgs[j] = chute.Message{ID: id, Body: []byte("body " + id), Headers: map[string]string{"id": id},
					Session: "p-" + q, SessionSeq: uint64(qb*5 + j + 1)}
			}
			for {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := pc.Publish(cctx, q, msgs...)
				cancel()
				if err == nil {
					mu.Lock()
					for _, m := range msgs {
						confirmed[m.ID] = true
					}
					mu.Unlock()
					break
				}
				if !retryable(err) {
					violate("publish %d: %v", b, err)
					return
				}
			}
		}
	}()
	drained := make(chan struct{})
	go func() { // the consumer: receive, ack; an acked message must not come back
		defer wg.Done()
		cc := dial()
		for round := 0; ; round++ {
			select {
			case <-drained:
				return
			default:
			}
			q := c.queues[round%len(c.queues)]
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ds, err := cc.Receive(cctx, q, chute.ReceiveOptions{Max: 20, Wait: 200 * time.Millisecond})
			cancel()
			if err != nil {
				if !retryable(err) {
					violate("receive: %v", err)
					return
				}
				continue
			}
			// One message in seven is nacked, on its first delivery from
			// its queue: dead (max deliveries 1), to come again from the
			// dead-letter queue, the same message.
			var nacks []chute.Nack
			mu.Lock()
			for _, d := range ds {
				if acked[d.ID] {
					violations = append(violations, fmt.Sprintf("%s delivered after its ack was confirmed", d.ID))
				}
				if string(d.Body) != "body "+d.ID || d.Headers["id"] != d.ID {
					violations = append(violations, fmt.Sprintf("%s delivered with body %q, headers %v", d.ID, d.Body, d.Headers))
				}
				if q == dead && (d.DeadLetter == nil || !slices.Contains(queues, d.DeadLetter.Source)) {
					violations = append(violations, fmt.Sprintf("%s in %s without its death: %+v", d.ID, dead, d.DeadLetter))
				}
				if q == dead {
					deadLetters[d.ID] = true
				}
				delivered[d.ID] = true
			}
			mu.Unlock()
			kept := ds[:0]
			for _, d := range ds {
				if n, _ := strconv.Atoi(d.ID); q != dead && n%7 == 0 {
					nacks = append(nacks, chute.Nack{Receipt: d.Receipt, Error: "seventh"})
				} else {
					kept = append(kept, d)
				}
			}
			ds = kept
			if len(nacks) > 0 {
				// Whatever its outcome, the message comes again: dead, or
				// its lease runs out (then dead: max deliveries 1).
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				if err := cc.Nack(cctx, q, nacks...); err != nil && !retryable(err) && !errors.As(err, new(*chute.ReceiptErrors)) {
					violate("nack: %v", err)
				}
				cancel()
			}
			receipts := make([]string, len(ds))
			for i, d := range ds {
				receipts[i] = d.Receipt
			}
			if len(receipts) == 0 {
				continue
			}
			// A batch of an even size is acked in a transaction: all
			// or nothing, a stale receipt refuses it whole.
			cctx, cancel = context.WithTimeout(ctx, 2*time.Second)
			if len(receipts)%2 == 0 {
				_, err = cc.Commit(cctx, chute.Tx{Ack: []chute.TxAck{{Queue: q, Receipts: receipts}}})
				var se *chute.StaleReceiptsError
				if errors.As(err, &se) {
					err = nil // nothing acked: they come again
					cancel()
					continue
				}
			} else {
				err = cc.Ack(cctx, q, receipts...)
			}
			cancel()
			if err == nil {
				mu.Lock()
				for _, d := range ds {
					acked[d.ID] = true
				}
				mu.Unlock()
			} else if retryable(err) {
				mu.Lock()
				for _, d := range ds {
					ackUnknown[d.ID] = true
				}
				mu.Unlock()
			} else {
				var re *chute.ReceiptErrors
				if !errors.As(err, &re) {
					violate("ack: %v", err)
					return
				}
				mu.Lock()
				bad := map[int]bool{}
				for _, f := range re.Failed {
					bad[f.Index] = true
				}
				for i, d := range ds {
					if !bad[i] {
						acked[d.ID] = true
					}
				}
				mu.Unlock()
			}
		}
	}()
	// The nemesis: a short schedule of faults, one at a time.
	schedule := 4
	if os.Getenv("CHUTE_NEMESIS_RUNS") != "" || os.Getenv("CHUTE_NEMESIS_SEED") != "" {
		schedule = 6
	}
	links := func(f func(i, j int, p *faultProxy)) {
		for i := range 3 {
			for j := range 3 {
				if i != j {
					f(i, j, c.links[i][j])
				}
			}
		}
	}
	for range schedule {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond) // load between faults
		// 0–6 below; 7–9: SIGKILL a node (after the switch).
		switch rng.IntN(10) {
		case 0: // SIGSTOP the leader for twice the longest election timeout
			faults["stop"]++
			li, _ := c.leader(ctx, -1)
			p := c.procs[li]
			p.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(400 * time.Millisecond)
			p.cmd.Process.Signal(syscall.SIGCONT)
			continue
		case 1: // cut the leader off, both ways, for longer than an election
			faults["isolate"]++
			li, _ := c.leader(ctx, -1)
			links(func(i, j int, p *faultProxy) { p.setCut(i == li || j == li) })
			time.Sleep(time.Duration(400+rng.IntN(600)) * time.Millisecond)
			links(func(_, _ int, p *faultProxy) { p.setCut(false) })
			continue
		case 2: // cut what the leader sends (it still hears the others)
			faults["one-way"]++
			li, _ := c.leader(ctx, -1)
			links(func(i, _ int, p *faultProxy) { p.setCut(i == li) })
			time.Sleep(time.Duration(400+rng.IntN(600)) * time.Millisecond)
			links(func(_, _ int, p *faultProxy) { p.setCut(false) })
			continue
		case 3: // slow every link
			faults["slow"]++
			d := time.Duration(5+rng.IntN(30)) * time.Millisecond
			links(func(_, _ int, p *faultProxy) { p.setDelay(d) })
			time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
			links(func(_, _ int, p *faultProxy) { p.setDelay(0) })
			continue
		case 4: // a follower's disk is lost: the operator replaces it under a new ID
			faults["replace"]++
			li, _ := c.leader(ctx, -1)
			c.replace(ctx, (li+1+rng.IntN(2))%3)
			continue
		case 6: // the leader killed while it sends a follower a snapshot
			li, _ := c.leader(ctx, -1)
			f := (li + 1 + rng.IntN(2)) % 3
			links(func(i, j int, p *faultProxy) { p.setCut(i == f || j == f) })
			// Until the leader has compacted its log past what the
			// follower holds: the follower then needs a snapshot.
			behind := false
			for deadline := time.Now().Add(8 * time.Second); !behind && time.Now().Before(deadline); {
				in := c.status(ctx)
				for _, m := range in.Members {
					behind = behind || m.ID == c.ids[f] && in.Snapshot > m.Match
				}
				if !behind {
					time.Sleep(50 * time.Millisecond) // polling the leader's compaction
				}
			}
			// The snapshot crawls to the follower (each chunk of the
			// leader's stream held 200 ms), and the leader dies meanwhile.
			c.links[li][f].setDelay(200 * time.Millisecond)
			links(func(_, _ int, p *faultProxy) { p.setCut(false) })
			time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			c.procs[li].cmd.Process.Signal(syscall.SIGKILL)
			c.procs[li].wait(10 * time.Second)
			c.procs[li] = nil
			c.links[li][f].setDelay(0)
			if behind {
				faults["snapshot-kill"]++
			} else {
				faults["kill"]++ // the log did not move on far enough: a plain kill of the leader
			}
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			c.start(li)
			continue
		case 5: // a bit flips in a follower's sealed segment while it is down
			li, _ := c.leader(ctx, -1)
			i := (li + 1 + rng.IntN(2)) % 3
			c.procs[i].cmd.Process.Signal(syscall.SIGKILL)
			c.procs[i].wait(10 * time.Second)
			c.procs[i] = nil
			if !flipSealed(t, rng, filepath.Join(c.dirs[i], "raft")) {
				faults["kill"]++ // no sealed segment yet: a plain kill
				c.start(i)
				continue
			}
			faults["flip"]++
			// The node either finds the damage when it opens its log and
			// rebuilds itself from its peers under a new ID (a replica is
			// not repaired in place), or never reads that segment again
			// (it was before the log's snapshot).
			p := launch(t, c.args(i)...)
			select {
			case addr := <-p.errOut.listen:
				p.listening(addr)
				c.procs[i] = p
			case <-p.exited:
				t.Fatalf("node %d exited after a bit flip:\n%s", c.ids[i], p.errOut)
			case <-time.After(30 * time.Second):
				t.Fatalf("node %d neither served nor exited within 30 s after a bit flip", c.ids[i])
			}
			if strings.Contains(p.errOut.String(), "rebuilding") {
				faults["flip found"]++
				c.rebuilt(ctx, i)
			}
			continue
		}
		faults["kill"]++
		i := rng.IntN(3)
		c.procs[i].cmd.Process.Signal(syscall.SIGKILL)
		c.procs[i].wait(10 * time.Second)
		c.procs[i] = nil
		time.Sleep(time.Duration(200+rng.IntN(1000)) * time.Millisecond)
		c.start(i)
	}
	close(stop)
	// Drain: every confirmed message acked, within 60 s.
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for id := range confirmed {
			if !acked[id] && !ackUnknown[id] {
				missing++
			}
		}
		n := len(confirmed)
		mu.Unlock()
		if missing == 0 && queueEmpty(ctx, c) {
			break
		}
		if time.Now().After(deadline) {
			var ids []string
			mu.Lock()
			for id := range confirmed {
				if !acked[id] && !ackUnknown[id] && len(ids) < 10 {
					ids = append(ids, fmt.Sprintf("%s(delivered %v)", id, delivered[id]))
				}
			}
			mu.Unlock()
			cl := c.procs[c.shardLeader(0, -1)].dial(t)
			var depth []string
			for _, name := range c.queues {
				q, qerr := cl.QueueStats(ctx, name)
				depth = append(depth, fmt.Sprintf("%s: ready %d delayed %d in flight %d (%v)", name, q.Ready, q.Delayed, q.InFlight, qerr))
			}
			t.Errorf("%d of %d confirmed messages never acked (%v); %s", missing, n, ids, strings.Join(depth, "; "))
			break
		}
		time.Sleep(50 * time.Millisecond) // waiting for the consumer, not synchronising with it
	}
	close(drained)
	wg.Wait()
	// Those whose ack's outcome was unknown are gone from the queue (the
	// consumer drained it, and any lease of theirs ran out): their acks
	// took effect.
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	if len(confirmed) == 0 {
		t.Error("nothing was confirmed")
	}
	for _, p := range c.procs {
		if p != nil && p.cmd.ProcessState == nil {
			p.stop()
		}
	}
	return faults, len(confirmed), len(acked), len(deadLetters)
}

// rebuilt waits (20 s at most) until node i, which found its log damaged
// and rebuilds itself under a new ID (DATA/cluster-rebuild), is a voter
// of the leader's membership and the ID it replaced is gone; from then
// on it is started under its new ID.
func (c *clusterNodes) rebuilt(ctx context.Context, i int) {
	t := c.t
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dirs[i], "cluster-rebuild"))
	var origin, id, old uint64
	if err == nil {
		_, err = fmt.Sscanf(string(b), "origin=%d node=%d replaces=%d", &origin, &id, &old)
	}
	if err != nil {
		t.Fatalf("node %d rebuilds, but its rebuild file: %v", c.ids[i], err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for sh := range max(c.shards, 1) {
		for {
			in := c.shardStatus(sh)
			if !slices.ContainsFunc(in.Members, func(m cluster.Member) bool { return m.ID == c.ids[i] }) &&
				slices.ContainsFunc(in.Members, func(m cluster.Member) bool { return m.ID == id && m.Voter }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: node %d not rebuilt as %d within 20 s: %+v", sh, c.ids[i], id, in.Members)
			}
			time.Sleep(20 * time.Millisecond) // polling the membership
		}
	}
	c.ids[i] = id
}

// replace does what docs/operations.md says to do for a node that lost
// its disk: remove it, wipe it, start it with --join under a new ID, add
// it as a learner, and promote it once it has caught up. The node may be
// down already (c.procs[i] nil).
func (c *clusterNodes) replace(ctx context.Context, i int) {
	t := c.t
	t.Helper()
	c.changeMembers(ctx, cluster.MemberRequest{Op: "remove", ID: c.ids[i]})
	if c.procs[i] != nil {
		c.procs[i].cmd.Process.Signal(syscall.SIGKILL)
		c.procs[i].wait(10 * time.Second)
		c.procs[i] = nil
	}
	if err := os.RemoveAll(c.dirs[i]); err != nil {
		t.Fatal(err)
	}
	c.ids[i] = 10 + slices.Max(c.ids)
	c.joining[i] = true
	c.start(i)
	c.changeMembers(ctx, cluster.MemberRequest{Op: "add", ID: c.ids[i], Addr: fmt.Sprintf("http://127.0.0.1:%d", c.ports[i])})
	deadline := time.Now().Add(20 * time.Second)
	for sh := range max(c.shards, 1) {
		for {
			in := c.shardStatus(sh)
			if slices.ContainsFunc(in.Members, func(m cluster.Member) bool { return m.ID == c.ids[i] && m.Match > 0 && m.Lag == 0 }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: node %d did not catch up within 20 s: %+v", sh, c.ids[i], in)
			}
			time.Sleep(20 * time.Millisecond) // polling the learner's progress
		}
	}
	c.changeMembers(ctx, cluster.MemberRequest{Op: "promote", ID: c.ids[i]})
}

// changeMembers makes a membership change at the leader of every shard
// in turn, asking again (within 20 s) while there is no leader, the
// leader changed, or its outcome is unknown; a change found done already
// counts.
func (c *clusterNodes) changeMembers(ctx context.Context, req cluster.MemberRequest) {
	for sh := range max(c.shards, 1) {
		c.changeShardMembers(sh, req)
	}
}

func (c *clusterNodes) changeShardMembers(shard uint32, req cluster.MemberRequest) {
	t := c.t
	t.Helper()
	body, _ := json.Marshal(req)
	deadline := time.Now().Add(20 * time.Second)
	for {
		li := c.shardLeader(shard, -1)
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d%s", c.ports[li], cluster.ShardPath(cluster.MembersPath, shard)), "application/json", bytes.NewReader(body))
		if err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusNoContent:
				return
			case resp.StatusCode == http.StatusBadRequest && c.changed(shard, req):
				return // an earlier try whose answer was lost did it
			case resp.StatusCode == http.StatusBadRequest:
				t.Fatalf("%+v refused: %s", req, msg)
			}
			err = fmt.Errorf("%s: %s", resp.Status, msg)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%+v: %v", req, err)
		}
		time.Sleep(50 * time.Millisecond) // a new leader, or the last change to be applied
	}
}

// changed says whether shard's leader's membership shows req done.
func (c *clusterNodes) changed(shard uint32, req cluster.MemberRequest) bool {
	in := c.shardStatus(shard)
	i := slices.IndexFunc(in.Members, func(m cluster.Member) bool { return m.ID == req.ID })
	switch req.Op {
	case "remove":
		return i < 0
	case "add":
		return i >= 0
	}
	return i >= 0 && in.Members[i].Voter
}

// flipSealed flips one random bit in a random sealed segment (any but
// the newest) of the journal in dir; false if it has none.
func flipSealed(t *testing.T, rng *rand.Rand, dir string) bool {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(segs)
	if len(segs) < 2 {
		return false
	}
	f, err := os.OpenFile(segs[rng.IntN(len(segs)-1)], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		t.Fatalf("a sealed segment: %v, %d bytes", err, st.Size())
	}
	off := rng.Int64N(st.Size())
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << rng.IntN(8)
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	return true
}

// isUnavailable: a call cut short by a node that died or stopped
// (connection reset, refused, or the server shutting down).
func isUnavailable(err error) bool {
	return connect.CodeOf(err) == connect.CodeUnavailable || connect.CodeOf(err) == connect.CodeDeadlineExceeded
}

// queueEmpty: the cluster's queues (c.queues) hold no message (ready,
// delayed or leased), as their leaders see them.
func queueEmpty(ctx context.Context, c *clusterNodes) bool {
	_, lc := c.leader(ctx, -1)
	for _, name := range c.queues {
		q, err := lc.QueueStats(ctx, name)
		if err != nil || q.Ready+q.Delayed+q.InFlight != 0 {
			return false
		}
	}
	return true
}
