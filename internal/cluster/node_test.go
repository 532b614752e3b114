package cluster

import (
	"context"
	"crypto/tls"
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

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/vfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// member is one node of a test cluster with its HTTP server on loopback.
type member struct {
	id   uint64
	l    net.Listener
	srv  *http.Server
	node *Node
	dir  string
	join bool // starts with Config.Join
	// maxVersion is its Config.MaxVersion (an older binary's).
	maxVersion uint8
	replaces   uint64 // its Config.Replaces
}

type testCluster struct {
	t       testing.TB
	compact uint64 // CompactEvery (default 10)
	// compactBytes is Config.CompactBytes (0: the default).
	compactBytes int64
	// certFile and keyFile, if set, serve the nodes over TLS (HTTP/2),
	// and client reaches them.
	certFile, keyFile string
	client            *http.Client
	http2             atomic.Int64 // Raft requests that came over HTTP/2
	direct            atomic.Int64 // Raft requests a connStream made (HTTP/1.1, chunked, User-Agent chute)
	maxVersion        uint8        // every member's Config.MaxVersion at first
	seed              []byte       // if set, every member's log starts from this shard snapshot (replica.SeedLog)
	segmentSize       int64        // Config.SegmentSize
	clock             chute.Clock  // Config.Clock (nil: the system's)
	syncDelay         time.Duration
	electionTicks     int    // Config.ElectionTicks (0: the default)
	fs                vfs.FS // Config.FS (nil: the disk)
	peers             map[uint64]string
	members           map[uint64]*member
}

func newTestCluster(t testing.TB, n int) *testCluster {
	return newTestClusterCompacting(t, n, 10)
}

func newTestClusterCompacting(t testing.TB, n int, compact uint64) *testCluster {
	return newTestClusterWith(t, n, &testCluster{compact: compact})
}

// newTestClusterWith starts the cluster c describes (its compaction and
// TLS settings) with n members.
func newTestClusterWith(t testing.TB, n int, c *testCluster) *testCluster {
	c.t, c.peers, c.members = t, map[uint64]string{}, map[uint64]*member{}
	scheme := "http://"
	if c.certFile != "" {
		scheme = "https://"
	}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		id := uint64(i)
		c.peers[id] = scheme + l.Addr().String()
		c.members[id] = &member{id: id, l: l, dir: filepath.Join(dir, fmt.Sprint(i)), maxVersion: c.maxVersion}
	}
	for id, m := range c.members {
		if c.seed != nil {
			if err := replica.SeedLog(vfs.OS, m.dir, replica.LogOptions{}, c.seed, slices.Sorted(maps.Keys(c.members))); err != nil {
				t.Fatal(err)
			}
		}
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.members {
			c.stop(id)
		}
	})
	if c.maxVersion == 0 {
		c.upgraded()
	}
	return c
}

// upgraded waits (10 s at most) until the leader has recorded that every
// member reads this binary's command version: a new cluster does so once
// it has heard from every member, and commands of that version are
// refused before (a member could be of an older binary).
func (c *testCluster) upgraded() {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, err := c.leader().node.Info(context.Background())
		if err == nil && in.Version == replica.MaxVersion() {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("command version %d after 10 s (%v)", in.Version, err)
		}
		time.Sleep(5 * time.Millisecond) // polling the leader's loop
	}
}

// start starts member id's node and serves it on its address.
func (c *testCluster) start(id uint64) {
	if err := c.tryStart(id); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart is start, with the node's refusal to start returned.
func (c *testCluster) tryStart(id uint64) error {
	m := c.members[id]
	if m.l == nil {
		_, hostport, _ := strings.Cut(c.peers[id], "://")
		l, err := net.Listen("tcp", hostport)
		if err != nil {
			c.t.Fatal(err)
		}
		m.l = l
	}
	node, err := Start(Config{ID: id, Peers: c.peers, Dir: m.dir, CompactEvery: c.compact, CompactBytes: c.compactBytes, Join: m.join, HTTP: c.client,
		MaxVersion: m.maxVersion, Replaces: m.replaces, SegmentSize: c.segmentSize,
		Clock: c.clock, SyncDelay: c.syncDelay, ElectionTicks: c.electionTicks, FS: c.fs})
	if err != nil {
		m.l.Close()
		m.l = nil
		return err
	}
	m.node = node
	mux := http.NewServeMux()
	raft := node.Handler()
	mux.HandleFunc(RaftPath, func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			c.http2.Add(1)
		}
		if r.ProtoMajor == 1 && slices.Equal(r.TransferEncoding, []string{"chunked"}) && r.UserAgent() == "chute" {
			c.direct.Add(1)
		}
		raft.ServeHTTP(w, r)
	})
	mux.Handle(MembersPath, node.MembersHandler())
	mux.Handle(StatusPath, node.StatusHandler())
	m.srv = &http.Server{Handler: mux}
	if c.certFile != "" {
		go m.srv.ServeTLS(m.l, c.certFile, c.keyFile)
		return nil
	}
	go m.srv.Serve(m.l)
	return nil
}

// stop stops member id (its server, then its node).
func (c *testCluster) stop(id uint64) {
	m := c.members[id]
	if m.node == nil {
		return
	}
	m.srv.Close()
	m.l = nil
	if err := m.node.Close(); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
	m.node = nil
}

// converge waits (at most 10 s) until every running member has applied
// the same index, and fails if their state hashes then differ. nudge, if
// not nil, is run between looks (a command makes every node apply up to
// it).
func (c *testCluster) converge(nudge *replica.Command) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var applied []uint64
		var hashes [][32]byte
		for _, m := range c.members {
			if m.node != nil {
				a, h := m.node.inspect()
				applied, hashes = append(applied, a), append(hashes, h)
			}
		}
		if slices.Min(applied) == slices.Max(applied) {
			for _, h := range hashes[1:] {
				if h != hashes[0] {
					c.t.Fatalf("members at index %d with different state hashes", applied[0])
				}
			}
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not converged within 10 s: applied %v", applied)
		}
		if nudge != nil {
			c.do(*nudge)
		}
		time.Sleep(5 * time.Millisecond) // polling the members' progress
	}
}

// leader waits (at most 10 s) for a leader among the running members.
func (c *testCluster) leader() *member {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range c.members {
			if m.node != nil && m.node.Status().IsLeader {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader within 10 s")
	return nil
}

// do runs cmd at the leader, following NotLeaderErrors and retrying what
// may not have been applied (within 10 s).
func (c *testCluster) do(cmd replica.Command) replica.Result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		m := c.leader()
		res, err := m.node.Do(ctx, cmd)
		if err == nil {
			return res
		}
		var nl *NotLeaderError
		if !errors.As(err, &nl) && !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrClosed) || ctx.Err() != nil {
			c.t.Fatalf("%v: %v", cmd.Op, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFailover: three nodes over HTTP on loopback with real journals. A
// queue and 100 messages go in; the leader stops; the others elect a new
// leader, which hands out all 100; the old leader comes back, catches up
// (its log was compacted meanwhile: from a snapshot) and ends with the
// same state as the others.
func TestFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	if res := c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute, MaxDeliveries: 5}); res.Err != nil {
		t.Fatal(res.Err)
	}
	for i := range 20 {
		msgs := make([]replica.Msg, 5)
		for j := range msgs {
			id := fmt.Sprint(i*5 + j)
			msgs[j] = replica.Msg{ID: id, Body: []byte("body " + id)}
		}
		res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Session: "p", SessionSeq: uint64(i*5 + 1), Msgs: msgs})
		if res.Err != nil || len(res.Published) != 5 {
			t.Fatalf("publish %d: %v %+v", i, res.Err, res.Published)
		}
	}
	old := c.leader().id
	c.stop(old)
	got := map[string]bool{}
	for len(got) < 100 {
		res := c.do(replica.Command{Op: replica.OpReceive, Queue: "q", Max: 30, Lease: time.Minute})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(res.Delivered) == 0 {
			t.Fatalf("the queue is empty after %d of 100", len(got))
		}
		var items []engine.Item
		for _, d := range res.Delivered {
			if got[d.ID] || string(d.Body) != "body "+d.ID {
				t.Fatalf("delivered %s (%q) twice or with the wrong body", d.ID, d.Body)
			}
			got[d.ID] = true
			items = append(items, engine.Item{Seq: d.Seq, Deliv: d.Deliv})
		}
		if res := c.do(replica.Command{Op: replica.OpAck, Queue: "q", Items: items}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	l := c.leader()
	if l.id == old {
		t.Fatalf("node %d leads again while stopped", l.id)
	}
	// A follower answers with the leader's address.
	for id, m := range c.members {
		if id != old && id != l.id {
			_, err := m.node.Do(context.Background(), replica.Command{Op: replica.OpReceive, Queue: "q", Max: 1})
			var nl *NotLeaderError
			if !errors.As(err, &nl) || nl.Leader != l.id || nl.Addr != c.peers[l.id] {
				t.Fatalf("a follower answered %v, want the leader %d at %s", err, l.id, c.peers[l.id])
			}
		}
	}
	c.start(old)
	c.converge(&replica.Command{Op: replica.OpReceive, Queue: "q", Max: 1})
	// The others compacted their logs while it was away: it caught up
	// from a snapshot.
	if n := c.members[old].node.restores.Load(); n == 0 {
		t.Fatalf("node %d caught up without a snapshot", old)
	}
}

// TestTLS: the nodes stream Raft messages to each other over TLS (HTTP/2,
// whose request bodies flush per chunk too): a cluster elects, commits
// and agrees.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := chutetest.SelfSignedCert(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	c := newTestClusterWith(t, 3, &testCluster{compact: 10, certFile: certFile, keyFile: keyFile, client: client})
	c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute})
	for i := range 30 {
		if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte{byte(i)}}}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	c.converge(nil)
	if c.http2.Load() == 0 {
		t.Fatal("no Raft stream came over HTTP/2")
	}
}
