package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/commitdelay"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/replica"
)

// TestSyncDelay: the loop's commit delay, on the node's (fake) clock. A
// proposal that wakes the idle loop within SyncDelay of its last sync is
// held until SyncDelay has passed since then, and what comes meanwhile
// joins it; after a quiet spell a proposal is not held; after
// FruitlessLimit waits in a row with nothing else coming, the loop stops
// waiting.
func TestSyncDelay(t *testing.T) {
	fc := chutetest.NewFakeClock()
	const delay = time.Second
	n, err := Start(Config{ID: 1, Peers: map[uint64]string{1: "http://127.0.0.1:1"}, Dir: t.TempDir(), Clock: fc, SyncDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	deadline := time.Now().Add(10 * time.Second)
	// until polls cond; each look moves the clock by step (0: not at
	// all), which fires the loop's tick or ends a wait.
	until := func(what string, step time.Duration, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			if step > 0 {
				fc.Advance(step)
			}
			runtime.Gosched()
		}
	}
	until("a leader", 10*time.Millisecond, func() bool { return n.Status().IsLeader })
	until("the command version recorded", delay, func() bool {
		in, err := n.Info(context.Background())
		return err == nil && in.Version == replica.MaxVersion()
	})
	delays := func() int64 { return n.delays.Load() }
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	submit := func(q string) *Future {
		t.Helper()
		f, err := n.Submit(ctx, replica.Command{Op: replica.OpCreateQueue, Queue: q, Visibility: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	done := func(f *Future) {
		t.Helper()
		if res, err := f.Wait(ctx); err != nil || res.Err != nil {
			t.Fatalf("%v %v", err, res.Err)
		}
	}

	// After a quiet spell: not held (the clock does not move).
	fc.Advance(2 * delay)
	before := delays()
	done(submit("quiet"))
	if d := delays(); d != before {
		t.Fatalf("%d waits after a quiet spell", d-before)
	}

	// Right behind that sync: held until the clock has moved by the delay,
	// and a proposal made meanwhile is taken with it.
	n.inspect() // a turn without a sync: the next proposal wakes the loop idle
	a := submit("a")
	until("the wait", 0, func() bool { return delays() == before+1 })
	b := submit("b")
	// Taken by the wait before the clock moves: proposals are buffered,
	// and a wait whose time is up takes its timer or a proposal waiting
	// beside it, whichever its select picks (seen: b left to the next
	// turn, the wait fruitless, and the loop then skipping the third
	// fruitless wait below as one past FruitlessLimit; 2 runs of 300 with
	// the CPUs busy).
	until("b taken by the wait", 0, func() bool { return len(n.props) == 0 })
	select {
	case r := <-a.reply:
		t.Fatalf("answered during the wait: %+v", r)
	default:
	}
	fc.Advance(delay - time.Nanosecond)
	select {
	case r := <-a.reply:
		t.Fatalf("answered a nanosecond before the delay was over: %+v", r)
	default:
	}
	fc.Advance(time.Nanosecond)
	done(a)
	done(b)

	// Waits with nothing else coming: after FruitlessLimit of them the
	// loop stops waiting.
	for i := range commitdelay.FruitlessLimit {
		n.inspect()
		f := submit(fmt.Sprint("c", i))
		until("a fruitless wait", 0, func() bool { return delays() == before+2+int64(i) })
		fc.Advance(delay)
		done(f)
	}
	n.inspect()
	done(submit("d"))
	if d := delays(); d != before+1+commitdelay.FruitlessLimit {
		t.Fatalf("%d waits, want %d", d-before, 1+commitdelay.FruitlessLimit)
	}
	in, err := n.Info(ctx)
	if err != nil || in.Log.SyncDelays != delays() {
		t.Fatalf("Info's sync delays %d, want %d (%v)", in.Log.SyncDelays, delays(), err)
	}
}

// TestSyncDelayCommit: a follower's answer that commits entries is not
// held by the leader's commit delay, and ends a hold under way. Three
// nodes on one fake clock, which runs (twice as fast as the system's)
// while they elect, then stands still: no ticks, no elections. After a
// quiet spell a proposal is not held (TestSyncDelay), and its commit
// arrives less than the delay after the leader's sync, which, held, would
// wait for the clock to move. A hold does come, on the slower follower's
// answer to the last round (it moves nothing), and the next round's
// commit arrives during it. (Seen to fail: with every answer held, the
// first round never finished; with holds not ended by a commit, 9 runs
// of 20.)
func TestSyncDelayCommit(t *testing.T) {
	fc := chutetest.NewFakeClock()
	const delay = 100 * time.Millisecond
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // drives the clock, does not synchronise anything
		defer close(stopped)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				fc.Advance(10 * time.Millisecond) // a tick
			}
		}
	}()
	// 100 ticks to an election (10 by default): once the clock stands
	// still, the few ticks this test makes cannot start one (seen with 10:
	// followers that campaigned on the ticks of the quiet spells, their
	// leader held for a clock that never moved; 2 runs of 300), and while
	// it runs a follower must miss the leader for half a second.
	c := newTestClusterWith(t, 3, &testCluster{compact: 10, clock: fc, syncDelay: delay, electionTicks: 100})
	close(stop)
	<-stopped
	// Settle, a tick at a time, until every node names the same leader
	// and term and has applied the same commit index: the leader then
	// has nothing left to sync, and the quiet spell of round 0 is quiet.
	// (Seen without: an election that ended just after the clock
	// stopped; the new leader synced its first entry at the clock's
	// time, so round 0's proposal was held, rightly, for a clock that
	// never moved.)
	settle := time.NewTicker(2 * time.Millisecond) // paces the ticks, synchronises nothing
	defer settle.Stop()
	for settleBy := time.Now().Add(10 * time.Second); ; {
		var sts []consensus.Status
		for _, m := range c.members {
			sts = append(sts, m.node.Status())
		}
		quiet := true
		for _, st := range sts {
			quiet = quiet && st.Leader != 0 && st.Leader == sts[0].Leader && st.Term == sts[0].Term &&
				st.Commit == sts[0].Commit && st.Applied == st.Commit
		}
		if quiet {
			break
		}
		if time.Now().After(settleBy) {
			t.Fatalf("not settled within 10 s: %+v", sts)
		}
		fc.Advance(10 * time.Millisecond)
		<-settle.C
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, try := 0, 0; i < 5; try++ {
		fc.Advance(2 * delay) // a quiet spell
		f, err := c.leader().node.Submit(ctx, replica.Command{Op: replica.OpCreateQueue, Queue: fmt.Sprint("q", i, "-", try), Visibility: time.Minute})
		var nl *NotLeaderError
		if errors.As(err, &nl) { // an election under way as the clock stopped
			fc.Advance(10 * time.Millisecond) // a tick for it
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Wait(ctx)
		if (errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &nl)) && try < 20 {
			// The same: a vote asked for before the clock stopped (a
			// journal slow to sync, say) deposed the leader since.
			fc.Advance(10 * time.Millisecond)
			continue
		}
		if err != nil || res.Err != nil {
			t.Fatalf("round %d: %v %v (the clock stood still)", i, err, res.Err)
		}
		i++
	}
}
