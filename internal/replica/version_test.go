package replica

import (
	"errors"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
)

// TestShardVersion2: a command of version 2 is refused until the log has
// moved the cluster to version 2 (every replica alike); after that, the
// settings, message fields, nacks, cancels and redrives of version 2 take
// effect, a snapshot keeps the version, and a replica limited to version
// 1 stops at the version change, saying to upgrade it.
func TestShardVersion2(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	cfg := chute.QueueConfig{VisibilityTimeout: time.Second, MaxDeliveries: 1, MessageTTL: time.Hour, Attributes: map[string]string{"team": "a"}}
	log := entries(
		Command{Op: OpCreateQueue, Queue: "early", Time: t0, Config: &cfg}, // 1: before the version: refused
		Command{Op: OpClusterVersion, Time: t0, Max: 2},                    // 2
		Command{Op: OpCreateQueue, Queue: "q", Time: t0, Config: &cfg},     // 3
		Command{Op: OpPublish, Queue: "q", Time: t0 + 1, Msgs: []Msg{ // 4
			{ID: "a", Key: "k", Headers: map[string]string{"h": "v"}, TTL: time.Minute, Body: []byte("A")},
			{ID: "b", Body: []byte("B")},
			{ID: "c", Body: []byte("C"), Delay: time.Hour},
		}},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 2, Max: 2}, // 5: a and b
		Command{Op: OpNack, Queue: "q", Time: t0 + 3, Items: []engine.Item{{Seq: 1, Deliv: 1, Err: "boom"}, {Seq: 2, Deliv: 1}},
			Unstarted: []bool{false, true}}, // 6: a dead (max 1), b back uncounted
		Command{Op: OpCancel, Queue: "q", Time: t0 + 4, Refs: []chute.MessageRef{{ID: "c"}, {Seq: 99}}},    // 7
		Command{Op: OpRedriveMsgs, Queue: "q.dlq", Time: t0 + 5, Refs: []chute.MessageRef{{ID: "a"}}},      // 8
		Command{Op: OpUpdateQueue, Queue: "q", Time: t0 + 6, Config: &chute.QueueConfig{MaxDeliveries: 9}}, // 9
		Command{Op: OpReceive, Queue: "q", Time: t0 + 7, Max: 5},                                           // 10
	)
	s := NewShard()
	var res []Result
	for _, e := range log {
		r, err := s.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if !errors.Is(res[0].Err, chute.ErrNotReplicated) || s.Version() != 2 {
		t.Fatalf("a version 2 command before the version moved: %v; version %d", res[0].Err, s.Version())
	}
	if st, err := s.QueueStats("q"); err != nil || st.Config.MaxDeliveries != 9 || st.Config.MessageTTL == time.Hour {
		t.Fatalf("updated config: %+v %v", st.Config, err)
	}
	if d := res[4].Delivered; len(d) != 2 || d[0].Key != "k" || d[0].Headers["h"] != "v" {
		t.Fatalf("receive: %+v", d)
	}
	if f := res[5].Failed; len(f) != 2 || f[0] != nil || f[1] != nil {
		t.Fatalf("nack: %v", f)
	}
	if c := res[6].Cancelled; len(c) != 2 || !c[0].Cancelled || c[0].Seq != 3 || c[1].Cancelled || c[1].Err == nil {
		t.Fatalf("cancel: %+v", c)
	}
	if r := res[7].Redriven; len(r) != 1 || !r[0].Moved || r[0].Queue != "q" {
		t.Fatalf("redrive: %+v", r)
	}
	// b (handed back uncounted) and a (redriven, its key and error kept).
	d := res[9].Delivered
	if len(d) != 2 || d[0].ID != "b" || d[0].Counted != 1 || d[1].ID != "a" || d[1].Key != "k" {
		t.Fatalf("after the nack and redrive: %+v", d)
	}

	// The snapshot keeps the version and the state.
	back, err := RestoreShard(s.Snapshot())
	if err != nil || back.Version() != 2 || back.Hash() != s.Hash() {
		t.Fatalf("restored: version %d, same hash %v, %v", back.Version(), back.Hash() == s.Hash(), err)
	}
	if err := back.LimitVersion(1); err == nil {
		t.Fatal("a shard at version 2 limited to version 1")
	}

	// A replica of a version 1 binary applies the version 1 commands and
	// stops at the version change.
	old := NewShard()
	if err := old.LimitVersion(1); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Apply(log[0]); err == nil {
		t.Fatal("a version 1 binary read a version 2 command")
	}
	old = NewShard()
	old.LimitVersion(1)
	v1 := entries(Command{Op: OpCreateQueue, Queue: "q", Time: t0, Visibility: time.Second})
	if _, err := old.Apply(v1[0]); err != nil {
		t.Fatal(err)
	}
}

// TestPlacement: the directory of a sharded cluster (version 3). OpPlace
// is refused before the cluster moved to version 3; after, a name is
// placed once (again in the same shard: no change; in another: a
// *PlacedError that matches ErrExists), and placed anew once unplaced.
// A snapshot keeps the directory (and the hash covers it); a shard at
// version 2 writes a version 2 snapshot, without one.
func TestPlacement(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	log := entries(
		Command{Op: OpClusterVersion, Time: t0, Max: 2},
		Command{Op: OpPlace, Queue: "early", Max: 1, Time: t0}, // 2: refused
		Command{Op: OpClusterVersion, Time: t0, Max: 3},
		Command{Op: OpPlace, Queue: "orders", Max: 1, Time: t0},
		Command{Op: OpPlace, Queue: "orders", Max: 1, Time: t0}, // 5: the same: done
		Command{Op: OpPlace, Queue: "orders", Max: 2, Time: t0}, // 6: another shard: refused
		Command{Op: OpPlace, Queue: "events", Max: 2, Time: t0},
		Command{Op: OpPlace, Queue: "gone", Max: 3, Time: t0},
		Command{Op: OpUnplace, Queue: "gone", Time: t0},
		Command{Op: OpPlace, Queue: "gone", Max: 0, Time: t0}, // 10: placed anew
		Command{Op: OpPlace, Queue: "bad", Max: -1, Time: t0},
	)
	s := NewShard()
	var res []Result
	for i, e := range log {
		if i == 2 {
			// A shard at version 2: a version 2 snapshot, no directory.
			snap := s.Snapshot()
			if snap[0] != 2 {
				t.Fatalf("a version 2 shard wrote snapshot version %d", snap[0])
			}
			if back, err := RestoreShard(snap); err != nil || back.Hash() != s.Hash() {
				t.Fatalf("version 2 snapshot: %v", err)
			}
		}
		r, err := s.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if !errors.Is(res[1].Err, chute.ErrNotReplicated) {
		t.Fatalf("a place before version 3: %v", res[1].Err)
	}
	if _, ok := s.Placement("early"); ok {
		t.Fatal("the refused place took effect")
	}
	var pe *PlacedError
	if res[4].Err != nil || !errors.As(res[5].Err, &pe) || pe.Shard != 1 || !errors.Is(res[5].Err, chute.ErrExists) {
		t.Fatalf("placed again: %v; in another shard: %v", res[4].Err, res[5].Err)
	}
	if !errors.Is(res[10].Err, engine.ErrInvalidConfig) {
		t.Fatalf("shard -1: %v", res[10].Err)
	}
	want := map[string]uint32{"orders": 1, "events": 2, "gone": 0}
	check := func(s *Shard) {
		t.Helper()
		for name, sh := range want {
			if got, ok := s.Placement(name); !ok || got != sh {
				t.Fatalf("%s in shard %d (%v), want %d", name, got, ok, sh)
			}
		}
		if len(s.places) != len(want) {
			t.Fatalf("directory %v, want %v", s.places, want)
		}
	}
	check(s)
	snap := s.Snapshot()
	back, err := RestoreShard(snap)
	if err != nil || snap[0] != 3 || back.Hash() != s.Hash() {
		t.Fatalf("restored: snapshot version %d, same hash %v, %v", snap[0], back.Hash() == s.Hash(), err)
	}
	check(back)
	// The hash covers the directory.
	h := back.Hash()
	back.places["orders"] = 2
	if back.Hash() == h {
		t.Fatal("the hash did not change with the directory")
	}
}

// TestUnplaceMinAge: from version 4 an unplace may name a minimum age:
// a name placed (or placed again) within it stays placed, an older one
// is freed; places made at version 3 have no time (old). The times are
// in the version 4 snapshot and the hash, alike on a replica restored
// from a version 3 snapshot and one that applied the log.
func TestUnplaceMinAge(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	const minute = int64(time.Minute)
	log := entries(
		Command{Op: OpClusterVersion, Time: t0, Max: 3},
		Command{Op: OpPlace, Queue: "v3", Max: 1, Time: t0},
		Command{Op: OpClusterVersion, Time: t0, Max: 4},
		Command{Op: OpPlace, Queue: "young", Max: 1, Time: t0 + 10*minute},
		Command{Op: OpPlace, Queue: "old", Max: 2, Time: t0},
		Command{Op: OpPlace, Queue: "renewed", Max: 2, Time: t0},
		Command{Op: OpPlace, Queue: "renewed", Max: 2, Time: t0 + 10*minute}, // placed again: young
		Command{Op: OpUnplace, Queue: "young", Time: t0 + 10*minute + 1, Lease: time.Minute},
		Command{Op: OpUnplace, Queue: "old", Time: t0 + 10*minute + 1, Lease: time.Minute},
		Command{Op: OpUnplace, Queue: "renewed", Time: t0 + 10*minute + 1, Lease: time.Minute},
		Command{Op: OpUnplace, Queue: "v3", Time: t0 + 10*minute + 1, Lease: time.Minute},
	)
	a, b := NewShard(), (*Shard)(nil)
	for i, e := range log {
		if i == 2 { // b starts from a's version 3 snapshot
			snap := a.Snapshot()
			var err error
			if b, err = RestoreShard(snap); err != nil || snap[0] != 3 {
				t.Fatalf("version 3 snapshot %d: %v", snap[0], err)
			}
		}
		if _, err := a.Apply(e); err != nil {
			t.Fatal(err)
		}
		if b != nil {
			if _, err := b.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range []*Shard{a, b} {
		for name, want := range map[string]bool{"young": true, "old": false, "renewed": true, "v3": false} {
			if _, ok := s.Placement(name); ok != want {
				t.Fatalf("%s placed: %v, want %v", name, ok, want)
			}
		}
	}
	if a.Hash() != b.Hash() {
		t.Fatal("a replica restored from a version 3 snapshot differs from one that applied the log")
	}
	snap := a.Snapshot()
	back, err := RestoreShard(snap)
	if err != nil || snap[0] != 4 || back.Hash() != a.Hash() || back.placedAt["young"] != t0+10*minute {
		t.Fatalf("version 4 snapshot %d: %v, times %v", snap[0], err, back.placedAt)
	}
	h := back.Hash()
	back.placedAt["young"]++
	if back.Hash() == h {
		t.Fatal("the hash did not change with a placement's time")
	}
}
