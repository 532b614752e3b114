package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestForwardHoldRule: a hold of the forwarder, on its (fake) clock: a
// new hold is not "in force already", its renewal is; another ID's is
// refused while it lasts; it lapses when its time is up, and a renewal
// after that says so; a release ends it.
func TestForwardHoldRule(t *testing.T) {
	fc := chutetest.NewFakeClock()
	f := &Forwarder{nodes: []*Node{{cfg: Config{Clock: fc}}}}
	if held, err := f.Hold("a", time.Minute); held || err != nil {
		t.Fatalf("a new hold: %v %v", held, err)
	}
	if held, err := f.Hold("a", time.Minute); !held || err != nil {
		t.Fatalf("its renewal: %v %v", held, err)
	}
	if _, err := f.Hold("b", time.Minute); !errors.Is(err, ErrHeld) {
		t.Fatalf("another's while it lasts: %v", err)
	}
	for _, d := range []time.Duration{0, -time.Second, maxHold + time.Second} {
		if _, err := f.Hold("c", d); err == nil || errors.Is(err, ErrHeld) {
			t.Fatalf("a hold for %v: %v", d, err)
		}
	}
	fc.Advance(time.Minute - time.Nanosecond)
	if !f.Held("a") || f.Held("b") || f.Held("") {
		t.Fatal("held: a until its time, no other")
	}
	fc.Advance(time.Nanosecond)
	if f.Held("a") {
		t.Fatal("held after its time")
	}
	if held, err := f.Hold("a", time.Minute); held || err != nil {
		t.Fatalf("renewed after it lapsed: %v %v", held, err)
	}
	f.Release("b") // not its
	if !f.Held("a") {
		t.Fatal("released by another ID")
	}
	f.Release("a")
	if f.Held("a") {
		t.Fatal("held after its release")
	}
	if held, err := f.Hold("b", time.Minute); held || err != nil {
		t.Fatalf("another's after the release: %v %v", held, err)
	}
}

// TestForwardHold: every member's forwarder held over ForwardHoldPath
// (as `chute cluster backup` does): dead letters for a dead-letter queue
// in another shard stay in their outbox while the forwarders pass by (two
// passes each, skipped), and are carried once the holds are released.
// A second backup's hold is refused while the first's lasts.
func TestForwardHold(t *testing.T) {
	c := newShardedClusterWith(t, 3, &shardedCluster{shards: 2, api: true})
	cl, ctx := c.dialSettled()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cl.CreateQueue(ctx, "dead", chute.QueueConfig{}))
	dir := c.members[1].nodes[0]
	dlq := placed(t, dir, "dead")
	router := NewSharded(c.members[1].nodes)
	group := ""
	for i := 0; group == ""; i++ {
		if g := fmt.Sprint("g", i); router.home(g) != dlq {
			group = g
		}
	}
	must(cl.CreateQueue(ctx, "work", chute.QueueConfig{Group: group, MaxDeliveries: 1, DeadLetterQueue: "dead"}))

	hold := func(id uint64, h ForwardHold) (int, bool) {
		t.Helper()
		body, _ := json.Marshal(h)
		resp, err := http.Post(c.peers[id]+ForwardHoldPath, "application/json", bytes.NewReader(body))
		must(err)
		defer resp.Body.Close()
		var ans struct{ Held bool }
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans.Held
	}
	for id := range c.members {
		if code, held := hold(id, ForwardHold{ID: "backup-1", Seconds: 60}); code != http.StatusOK || held {
			t.Fatalf("member %d: hold answered %d, held %v", id, code, held)
		}
		if code, _ := hold(id, ForwardHold{ID: "backup-2", Seconds: 60}); code != http.StatusConflict {
			t.Fatalf("member %d: a second backup's hold answered %d", id, code)
		}
	}

	const letters = 10
	for i := range letters {
		_, err := cl.Publish(ctx, "work", chute.Message{Body: []byte(fmt.Sprint(i))})
		must(err)
	}
	for got := 0; got < letters; {
		ds, err := cl.Receive(ctx, "work", chute.ReceiveOptions{Max: letters, Wait: 5 * time.Second})
		must(err)
		for _, d := range ds {
			must(cl.Nack(ctx, "work", chute.Nack{Receipt: d.Receipt}))
		}
		got += len(ds)
	}
	// Every nack applied: the letters are in the outbox. Two passes of
	// every forwarder later, none was carried.
	var from [4]int64
	for id, m := range c.members {
		from[id] = m.fwd.skipped.Load()
	}
	deadline := time.Now().Add(20 * time.Second)
	for id, m := range c.members {
		for m.fwd.skipped.Load() < from[id]+2 {
			if time.Now().After(deadline) {
				t.Fatalf("member %d's forwarder: no pass skipped", id)
			}
			time.Sleep(10 * time.Millisecond) // the forwarders' period
		}
	}
	if st, err := cl.QueueStats(ctx, "dead"); err != nil || st.Ready != 0 {
		t.Fatalf("dead while held: %+v %v", st, err)
	}
	heldUntil := func(id uint64) time.Time {
		t.Helper()
		in, err := c.members[id].nodes[1].Info(ctx)
		must(err)
		return in.ForwardHeldUntil
	}
	for id := range c.members {
		if heldUntil(id).IsZero() {
			t.Fatalf("member %d's status does not show the hold", id)
		}
	}
	for id := range c.members {
		if code, held := hold(id, ForwardHold{ID: "backup-1", Seconds: 60}); code != http.StatusOK || !held {
			t.Fatalf("member %d: renewal answered %d, held %v", id, code, held)
		}
	}

	for id := range c.members {
		req, _ := http.NewRequest(http.MethodDelete, c.peers[id]+ForwardHoldPath+"?id=backup-1", nil)
		resp, err := http.DefaultClient.Do(req)
		must(err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("member %d: release answered %s", id, resp.Status)
		}
		if u := heldUntil(id); !u.IsZero() {
			t.Fatalf("member %d's status shows a hold until %v after the release", id, u)
		}
	}
	awaitReady(t, ctx, cl, "dead", letters)
}
