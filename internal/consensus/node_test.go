package consensus

import (
	"errors"
	"math"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is a lossless, instant cluster driven by hand: each step every
// node's update is done in the package doc's order.
type cluster struct {
	nodes   map[uint64]*Node
	durable map[uint64]*Durable
	applied map[uint64][]string
	inbox   []Message
}

func newCluster(t *testing.T, ids ...uint64) *cluster {
	c := &cluster{nodes: map[uint64]*Node{}, durable: map[uint64]*Durable{}, applied: map[uint64][]string{}}
	for _, id := range ids {
		n, err := Bootstrap(Config{ID: id, Peers: ids})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[id], c.durable[id] = n, &Durable{}
	}
	return c
}

// settle runs updates and delivers messages until nothing is left.
func (c *cluster) settle(t *testing.T) {
	for range 1000 {
		busy := false
		for _, id := range c.ids() {
			n := c.nodes[id]
			for n.HasUpdate() {
				busy = true
				u := n.Update()
				d := c.durable[id]
				if u.HardState != nil {
					d.HardState = *u.HardState
				}
				if len(u.Entries) > 0 {
					d.Entries = append(d.Entries[:u.Entries[0].Index-1], u.Entries...)
				}
				c.inbox = append(c.inbox, u.Messages...)
				for _, e := range u.Committed {
					if e.Kind == Command && len(e.Data) > 0 {
						c.applied[id] = append(c.applied[id], string(e.Data))
					}
				}
				n.Advance()
			}
		}
		msgs := c.inbox
		c.inbox = nil
		for _, m := range msgs {
			if to := c.nodes[m.To]; to != nil {
				busy = true
				if err := to.Receive(m); err != nil {
					t.Fatalf("receive: %v", err)
				}
			}
		}
		if !busy {
			return
		}
	}
	t.Fatal("the cluster did not settle")
}

func (c *cluster) ids() []uint64 {
	var ids []uint64
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestReplicates: a leader elected by Campaign commits proposals on every
// node, in order; a node rebuilt from its durable state re-applies them.
func TestReplicates(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.settle(t)
	if err := c.nodes[1].Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if s := c.nodes[1].Status(); !s.IsLeader || s.Leader != 1 {
		t.Fatalf("node 1 after its campaign: %+v", s)
	}
	if s := c.nodes[2].Status(); s.IsLeader || s.Leader != 1 {
		t.Fatalf("node 2: %+v", s)
	}
	for _, cmd := range []string{"a", "b", "c"} {
		if err := c.nodes[1].Propose([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
	}
	// A follower forwards to the leader.
	if err := c.nodes[3].Propose([]byte("d")); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	want := []string{"a", "b", "c", "d"}
	for _, id := range c.ids() {
		if !slices.Equal(c.applied[id], want) {
			t.Fatalf("node %d applied %q, want %q", id, c.applied[id], want)
		}
	}

	// Node 2 restarts from what it made durable.
	n2, err := Restart(Config{ID: 2}, *c.durable[2])
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[2], c.applied[2] = n2, nil
	if err := c.nodes[1].Propose([]byte("e")); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if want := append(want, "e"); !slices.Equal(c.applied[2], want) {
		t.Fatalf("restarted node 2 applied %q, want %q", c.applied[2], want)
	}
	// Membership entries survive the round trip through an owner's disk.
	var kinds int
	for _, e := range c.durable[2].Entries {
		if e.Kind == Membership {
			kinds++
		}
	}
	if kinds != 3 {
		t.Fatalf("%d membership entries in the durable log, want 3 (the bootstrap)", kinds)
	}
}

// TestRefuses: bad input gets typed errors.
func TestRefuses(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.settle(t)
	n := c.nodes[2]
	if err := n.Propose([]byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("propose with no leader: %v", err)
	}
	if err := n.Propose(nil); err == nil {
		t.Error("an empty command was taken")
	}
	if err := n.Receive(Message{From: 1, To: 2, Data: []byte{0xff, 0xff, 0xff}}); !errors.Is(err, ErrBadMessage) {
		t.Errorf("garbage: %v", err)
	}
	if err := c.nodes[1].Campaign(); err != nil {
		t.Fatal(err)
	}
	u := c.nodes[1].Update()
	c.nodes[1].Advance()
	if len(u.Messages) == 0 {
		t.Fatal("a campaign sent nothing")
	}
	m := u.Messages[0]
	m.From = 3 // says it is from another node than the one that wrote it
	if err := c.nodes[m.To].Receive(m); !errors.Is(err, ErrBadMessage) {
		t.Errorf("misattributed message: %v", err)
	}
	if _, err := Bootstrap(Config{ID: 1}); err == nil {
		t.Error("bootstrap without peers")
	}
	if _, err := Bootstrap(Config{Peers: []uint64{1}}); err == nil {
		t.Error("node ID 0")
	}
}

// TestMembership: a fourth node joins as a learner, catches up, is
// promoted; then an old member is removed, and the group commits without
// it.
func TestMembership(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	c.settle(t)
	if err := c.nodes[1].Campaign(); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	for _, cmd := range []string{"a", "b"} {
		if err := c.nodes[1].Propose([]byte(cmd)); err != nil {
			t.Fatal(err)
		}
	}
	c.settle(t)
	if err := c.nodes[2].AddLearner(4); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a follower took a membership change: %v", err)
	}
	n4, err := Join(Config{ID: 4})
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[4], c.durable[4] = n4, &Durable{}
	c.nodes[2].TakeMemberChanges() // the bootstrap's
	if err := c.nodes[1].ProposeMemberChange(AddLearner, 4, []byte("http://n4")); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if got := c.nodes[2].TakeMemberChanges(); len(got) != 1 || got[0].Kind != AddLearner || got[0].ID != 4 || string(got[0].Context) != "http://n4" {
		t.Fatalf("node 2 applied the changes %+v", got)
	}
	if v, l := c.nodes[1].Membership(); !slices.Equal(v, []uint64{1, 2, 3}) || !slices.Equal(l, []uint64{4}) {
		t.Fatalf("after adding a learner: voters %v, learners %v", v, l)
	}
	if !slices.Equal(c.applied[4], []string{"a", "b"}) || c.nodes[1].Match(4) != c.nodes[1].Status().Commit {
		t.Fatalf("the learner applied %q, match %d of %d", c.applied[4], c.nodes[1].Match(4), c.nodes[1].Status().Commit)
	}
	if err := c.nodes[1].Promote(4); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if err := c.nodes[1].Remove(3); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if v, l := c.nodes[4].Membership(); !slices.Equal(v, []uint64{1, 2, 4}) || len(l) != 0 {
		t.Fatalf("node 4 sees voters %v, learners %v", v, l)
	}
	delete(c.nodes, 3) // gone
	if err := c.nodes[1].Propose([]byte("c")); err != nil {
		t.Fatal(err)
	}
	c.settle(t)
	if !slices.Equal(c.applied[4], []string{"a", "b", "c"}) || !slices.Equal(c.applied[2], []string{"a", "b", "c"}) {
		t.Fatalf("after the removal: node 2 applied %q, node 4 %q", c.applied[2], c.applied[4])
	}
}

// TestCompactCatchUp: Compact keeps the catch-up entries before the
// snapshot (Config.CatchUpEntries, bounded by CatchUpBytes), none when
// they are 0, and the snapshot is the one given either way.
func TestCompactCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries int
		bytes   int // in entries' sizes: the last this many fit
		keep    uint64
	}{
		{"none", 0, 0, 0},
		{"entries", 3, 100, 3},
		{"bytes", 100, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Bootstrap(Config{ID: 1, Peers: []uint64{1}, CatchUpEntries: tc.entries})
			if err != nil {
				t.Fatal(err)
			}
			c := &cluster{nodes: map[uint64]*Node{1: n}, durable: map[uint64]*Durable{1: {}}, applied: map[uint64][]string{}}
			c.settle(t)
			if err := n.Campaign(); err != nil {
				t.Fatal(err)
			}
			c.settle(t)
			for i := range 10 {
				if err := n.Propose(make([]byte, 100+i)); err != nil {
					t.Fatal(err)
				}
				c.settle(t)
			}
			applied := n.rn.BasicStatus().Applied
			es, err := n.storage.Entries(applied-uint64(min(tc.bytes, 5))+1, applied+1, math.MaxUint64)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				n.cfg.CatchUpBytes += uint64(e.Size())
			}
			snap, err := n.SnapshotAt(applied)
			if err != nil {
				t.Fatal(err)
			}
			snap.Data = []byte("state")
			if err := n.Compact(snap); err != nil {
				t.Fatal(err)
			}
			if first, _ := n.storage.FirstIndex(); first != applied+1-tc.keep {
				t.Fatalf("the log starts at %d after a snapshot at %d, want %d entries kept", first, applied, tc.keep)
			}
			if s, _ := n.storage.Snapshot(); s.Metadata.Index != applied || string(s.Data) != "state" {
				t.Fatalf("the snapshot is at %d (%q), want %d", s.Metadata.Index, s.Data, applied)
			}
		})
	}
}
