package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/replica"
)

// askNext asks the loop for s's results (at most max more), as the API's
// Next does, and returns the channel they come on.
func askNext(t *testing.T, s *Standing, max int) chan standReply {
	t.Helper()
	reply := make(chan standReply, 1)
	s.last = reply
	if err := s.request(context.Background(), standReq{s: s, op: standNext, max: max, reply: reply}); err != nil {
		t.Fatal(err)
	}
	return reply
}

// waitStanding waits until the leader holds want standing receives of
// queue (the request has reached its loop).
func waitStanding(t *testing.T, n *Node, queue string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := -1
	for time.Now().Before(deadline) {
		n.onLoop(context.Background(), func() { got = len(n.standing.byQueue[queue]) })
		if got == want {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d standing receives of %s, want %d", got, queue, want)
}

// waitAsked waits until the leader's loop has taken s's Next whose
// reply channel is reply (and holds it, waiting). A request goes on the
// loop's channel of standing requests, a publish on its channel of
// proposals, and the loop takes from both in no set order: a publish
// made before the loop took the Next would see the credit before it.
func waitAsked(t *testing.T, n *Node, s *Standing, reply chan standReply) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		asked := false
		n.onLoop(context.Background(), func() { asked = s.waiting == reply })
		if asked {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the loop did not take a Next within 10 s")
}

func standReplyOf(t *testing.T, ch chan standReply) standReply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to a standing receive within 10 s")
		return standReply{}
	}
}

func delivered(r standReply) (n int) {
	for _, res := range r.res {
		n += len(res.Delivered)
	}
	return n
}

// TestStandingReceive: a standing receive takes each publish's message in
// the publish's commit (its receive applies right behind it), every one
// of several publishes in a row, not only the first, and within the
// stream's credit; two streams share a publish of two; a follower's
// answers with the leader; Close hands back what the stream still holds.
func TestStandingReceive(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Hour})
	l := c.leader()
	stats := func() (ready, inflight int64) {
		l.node.Read(ctx, func(sh *replica.Shard) {
			s, _ := sh.QueueStats("q")
			ready, inflight = s.Ready, s.InFlight
		})
		return
	}
	s := l.node.Stand("q", time.Hour)
	reply := askNext(t, s, 10)
	waitStanding(t, l.node, "q", 1)

	// Three publishes in flight at once: each one's receive rides behind
	// it. (With a parked receive, the second and third waited for the
	// next receive.)
	var futs []*Future
	for i := range 3 {
		f, err := l.node.Submit(ctx, replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte{byte('a' + i)}}}})
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	var pubs []replica.Result
	for _, f := range futs {
		r, err := f.Wait(ctx)
		if err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
		pubs = append(pubs, r)
	}
	got := standReplyOf(t, reply).res
	for more := 0; delivered(standReply{res: got}) < 3 && more < 3; more++ {
		got = append(got, standReplyOf(t, askNext(t, s, 10-delivered(standReply{res: got}))).res...)
	}
	if len(got) != 3 {
		t.Fatalf("%d receive results for 3 publishes: %+v", len(got), got)
	}
	for i, r := range got {
		if len(r.Delivered) != 1 || string(r.Delivered[0].Body) != string(rune('a'+i)) {
			t.Fatalf("result %d: %+v", i, r)
		}
		if r.Index != pubs[i].Index+1 {
			t.Fatalf("receive %d applied at %d, its publish at %d: not right behind it", i, r.Index, pubs[i].Index)
		}
	}

	// Credit: with 1, a publish of three gives one; the rest waits ready.
	reply = askNext(t, s, 1)
	waitAsked(t, l.node, s, reply) // (seen: the publish first, 3 delivered; 1 run of 150)
	c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("x")}, {Body: []byte("y")}, {Body: []byte("z")}}})
	if r := standReplyOf(t, reply); delivered(r) != 1 {
		t.Fatalf("with credit 1: %d delivered", delivered(r))
	}
	if ready, _ := stats(); ready != 2 {
		t.Fatalf("with credit 1, %d left ready, want 2", ready)
	}
	// The next Next, with credit, takes what is ready at once.
	if r := standReplyOf(t, askNext(t, s, 10)); delivered(r) != 2 {
		t.Fatalf("what was ready: %d delivered, want 2", delivered(r))
	}

	// Two streams share a publish of two, one each.
	s2 := l.node.Stand("q", time.Hour)
	r1, r2 := askNext(t, s, 10), askNext(t, s2, 10)
	waitStanding(t, l.node, "q", 2)
	c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("1")}, {Body: []byte("2")}}})
	if a, b := delivered(standReplyOf(t, r1)), delivered(standReplyOf(t, r2)); a != 1 || b != 1 {
		t.Fatalf("a publish of two between two streams: %d and %d", a, b)
	}

	// Close hands back what the stream holds: published with no Next
	// waiting, the message goes to s2's mailbox; s2 closes; it is ready
	// again.
	_, inflight0 := stats()
	s.Close()
	waitStanding(t, l.node, "q", 1)
	c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("held")}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, inflight := stats()
		if ready == 0 && inflight == inflight0+1 {
			break // in s2's mailbox
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publish for a stream with credit: ready %d, in flight %d (before %d)", ready, inflight, inflight0)
		}
		time.Sleep(time.Millisecond)
	}
	s2.Close()
	for {
		ready, inflight := stats()
		if ready == 1 && inflight == inflight0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Close: ready %d, in flight %d, want 1 and %d", ready, inflight, inflight0)
		}
		time.Sleep(time.Millisecond)
	}

	// A follower answers with the leader.
	for _, m := range c.members {
		if m != l {
			fs := m.node.Stand("q", time.Hour)
			var nl *NotLeaderError
			if r := standReplyOf(t, askNext(t, fs, 10)); !errors.As(r.err, &nl) || nl.Leader != l.id {
				t.Fatalf("standing at a follower: %v", r.err)
			}
			fs.Close()
			break
		}
	}
}

// TestStandingPoll: a message made ready by time (a delay), with no
// command, is taken on the stream's next poll.
func TestStandingPoll(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Hour})
	l := c.leader()
	st := NewAPI(l.node).StandingReceive("q", time.Hour)
	defer st.Close()
	c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte("later"), Delay: 50 * time.Millisecond}}})
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ds, err := st.Next(nctx, 10)
	if err != nil || len(ds) != 1 || string(ds[0].Body) != "later" || ds[0].Receipt == "" {
		t.Fatalf("a delayed message through a standing receive: %v %+v", err, ds)
	}
}
