package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/vfs"
)

// TestBackupRestore: a backup taken from a cluster's leader while it
// serves starts a new three-node cluster in the same state: the same
// state hash, the queues, topics and schedules, the messages still to
// deliver (leased ones stay leased until their lease ends), and the
// exactly-once memory of producer sessions. A follower refuses to take
// one; a log that holds anything refuses to be seeded.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	a := newTestCluster(t, 3)
	api := NewAPI(a.leader().node)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(api.CreateQueue(ctx, "q", chute.QueueConfig{VisibilityTimeout: time.Hour, MaxDeliveries: 4}))
	must(api.CreateTopic(ctx, "t", chute.TopicConfig{}))
	must(api.Subscribe(ctx, "t", "t.s", chute.SubscriptionConfig{Filter: map[string]string{"k": "v"}}))
	must(api.CreateSchedule(ctx, "nightly", chute.ScheduleConfig{Target: "q", Cron: "0 3 * * *", Message: chute.Message{Body: []byte("n")}}))
	for i := range 50 {
		_, err := api.Publish(ctx, "q", chute.Message{Body: []byte(fmt.Sprint(i)), Headers: map[string]string{"i": fmt.Sprint(i)},
			Session: "p", SessionSeq: uint64(i + 1)})
		must(err)
	}
	_, err := api.Publish(ctx, "t", chute.Message{Body: []byte("fan"), Headers: map[string]string{"k": "v"}})
	must(err)
	leased, err := api.Receive(ctx, "q", chute.ReceiveOptions{Max: 5, Wait: -1})
	if err != nil || len(leased) != 5 {
		t.Fatalf("receive: %v %d", err, len(leased))
	}
	for id, m := range a.members {
		if id == a.leader().id {
			continue
		}
		if _, _, _, err := m.node.Backup(ctx); err == nil {
			t.Fatal("a follower took a backup")
		}
		break
	}
	data, applied, version, err := a.leader().node.Backup(ctx)
	if err != nil || applied == 0 || version != replica.MaxVersion() {
		t.Fatalf("backup: applied %d, version %d, %v", applied, version, err)
	}
	want, err := replica.RestoreShard(data)
	must(err)

	b := newTestClusterWith(t, 3, &testCluster{compact: 10, seed: data})
	b.converge(nil)
	_, hash := b.leader().node.inspect()
	if hash != want.Hash() {
		t.Fatal("the restored cluster's state differs from the backup's")
	}
	bapi := NewAPI(b.leader().node)
	st, err := bapi.QueueStats(ctx, "q")
	if err != nil || st.Ready != 45 || st.InFlight != 5 || st.Config.MaxDeliveries != 4 {
		t.Fatalf("restored queue: %+v %v", st, err)
	}
	if ds, err := bapi.Receive(ctx, "t.s", chute.ReceiveOptions{Max: 10, Wait: -1}); err != nil || len(ds) != 1 || string(ds[0].Body) != "fan" {
		t.Fatalf("restored subscription: %+v %v", ds, err)
	}
	if infos, err := bapi.Schedules(ctx); err != nil || len(infos) != 1 || infos[0].Name != "nightly" {
		t.Fatalf("restored schedules: %+v %v", infos, err)
	}
	// The producer session is remembered: a retry of its last batch is a
	// duplicate.
	res, err := bapi.Publish(ctx, "q", chute.Message{Body: []byte("49"), Session: "p", SessionSeq: 50})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("a retried publish after the restore: %+v %v", res, err)
	}
	// The receipts of the leases taken before the backup still settle.
	must(bapi.Ack(ctx, "q", leased[0].Receipt))
	// A log that holds anything is not seeded again.
	for _, m := range b.members {
		b.stop(m.id)
		if err := replica.SeedLog(vfs.OS, m.dir, replica.LogOptions{}, data, []uint64{1, 2, 3}); err == nil {
			t.Fatal("a log seeded twice")
		}
		break
	}
}
