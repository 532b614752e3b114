package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/replica"
)

// addMember starts a node that joins the test cluster (as a learner, once
// the leader adds it) and returns its address.
func (c *testCluster) addMember(id uint64) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.peers[id] = "http://" + l.Addr().String()
	c.members[id] = &member{id: id, l: l, dir: filepath.Join(c.t.TempDir(), fmt.Sprint(id)), join: true}
	c.start(id)
	return c.peers[id]
}

// waitFor polls cond on the loop of n (at most 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMembership: a fourth node joins as a learner, catches up, is
// promoted; a voter is removed; the group goes on with the new member
// voting, every replica with the same state. Changes that make no sense
// are refused with typed errors, a follower names the leader.
func TestMembership(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute})
	for range 30 {
		c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("x")}}})
	}
	l := c.leader()
	addr := c.addMember(4)
	for _, m := range c.members {
		if m != l && m.id != 4 {
			var nl *NotLeaderError
			if err := m.node.ChangeMembers(ctx, MemberRequest{Op: "add", ID: 4, Addr: addr}); !errors.As(err, &nl) || nl.Leader != l.id {
				t.Fatalf("add at a follower: %v", err)
			}
			break
		}
	}
	for _, bad := range []MemberRequest{{Op: "add", ID: 4, Addr: "10.0.0.1:7420"}, {Op: "promote", ID: 4}, {Op: "remove", ID: 9}, {Op: "grow", ID: 4}, {Op: "add", Addr: addr}} {
		if err := l.node.ChangeMembers(ctx, bad); !errors.Is(err, ErrMemberChange) {
			t.Fatalf("%+v: %v, want ErrMemberChange", bad, err)
		}
	}
	if err := l.node.ChangeMembers(ctx, MemberRequest{Op: "add", ID: 4, Addr: addr}); err != nil {
		t.Fatal(err)
	}
	if err := l.node.ChangeMembers(ctx, MemberRequest{Op: "add", ID: 4, Addr: addr}); !errors.Is(err, ErrMemberChange) {
		t.Fatalf("add twice: %v", err)
	}
	// The learner catches up (from the log or a snapshot: CompactEvery 10).
	la, _ := l.node.inspect()
	waitFor(t, "the learner catches up", func() bool { a, _ := c.members[4].node.inspect(); return a >= la })
	if err := l.node.ChangeMembers(ctx, MemberRequest{Op: "promote", ID: 4}); err != nil {
		t.Fatal(err)
	}
	in, err := l.node.Info(ctx)
	if err != nil || len(in.Members) != 4 || !slices.ContainsFunc(in.Members, func(m Member) bool { return m.ID == 4 && m.Voter && m.Addr == addr }) {
		t.Fatalf("after the promotion: %v %+v", err, in.Members)
	}
	// Every member learned node 4's address from the log.
	for _, m := range c.members {
		in, err := m.node.Info(ctx)
		if err != nil || !slices.ContainsFunc(in.Members, func(m Member) bool { return m.ID == 4 && m.Addr == addr }) {
			t.Fatalf("node %d's view: %v %+v", m.id, err, in.Members)
		}
	}
	// Remove a follower (not 4), over HTTP, and stop it.
	var gone uint64
	for _, m := range c.members {
		if m != l && m.id != 4 {
			gone = m.id
			break
		}
	}
	body := fmt.Sprintf(`{"op":"remove","id":%d}`, gone)
	resp, err := http.Post(c.peers[l.id]+MembersPath, "application/json", bytes.NewReader([]byte(body)))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST remove: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	resp, err = http.Post(c.peers[l.id]+MembersPath, "application/json", bytes.NewReader([]byte(`{"op":`)))
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST junk: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	c.stop(gone)
	delete(c.members, gone)
	// The group of 1, 4 and the other commits, and all three agree.
	for range 30 {
		c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("y")}}})
	}
	c.converge(nil)
	voters, _ := func() (v, lr []uint64) {
		c.leader().node.onLoop(ctx, func() { v, lr = c.leader().node.rn.Membership() })
		return
	}()
	if len(voters) != 3 || !slices.Contains(voters, 4) || slices.Contains(voters, gone) {
		t.Fatalf("voters %v", voters)
	}
}
