package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// bkRunChute runs the chute binary with args and returns its combined
// output and exit status.
func bkRunChute(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("chute %s: %v", strings.Join(args, " "), err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// TestBackupRestore: `chute backup --server` of a running `chute serve`
// (while a producer keeps publishing to another queue), `chute restore`,
// and `chute serve` on the restored directory shows the same queues with
// the same stats; every publish confirmed before the backup began is
// there. A damaged backup is refused with exit status 3.
func TestBackupRestore(t *testing.T) {
	ctx := chutetest.Ctx(t)
	p := startData(t, t.TempDir())
	c := p.dial(t)
	if err := c.CreateQueue(ctx, "orders", chute.QueueConfig{MaxDeliveries: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(ctx, "events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "events", "audit", chute.SubscriptionConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		msg := chute.Message{Body: []byte(fmt.Sprintf("order %d", i)), Priority: i % 3, Key: fmt.Sprintf("k%d", i%4)}
		if i%10 == 0 {
			msg.Delay = time.Hour
		}
		if _, err := c.Publish(ctx, "orders", msg); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Publish(ctx, "events", chute.Message{Body: []byte("event")}); err != nil {
			t.Fatal(err)
		}
	}
	// Acks and nacks; no lease held at the backup, and no message whose
	// delay could end between the backup and the restore (a nack waits an
	// hour, not the queue's back-off of a second), so that the stats match
	// exactly however long the backup takes.
	for round := range 2 {
		ds, err := c.Receive(ctx, "orders", chute.ReceiveOptions{Max: 6, Wait: -1})
		if err != nil || len(ds) == 0 {
			t.Fatalf("receive: %d, %v", len(ds), err)
		}
		if err := c.Ack(ctx, "orders", ds[0].Receipt, ds[1].Receipt); err != nil {
			t.Fatal(err)
		}
		for _, d := range ds[2:] {
			if err := c.Nack(ctx, "orders", chute.Nack{Receipt: d.Receipt, Delay: time.Hour}); err != nil {
				t.Fatalf("round %d: nack: %v", round, err)
			}
		}
	}
	if err := c.CreateQueue(ctx, "busy", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		confirmed = map[string][2]time.Time{} // guarded by mu: publish called, confirmed
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	pc := p.dial(t)
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("b%d", n)
			called := time.Now()
			if _, err := pc.Publish(ctx, "busy", chute.Message{ID: id, Body: []byte(id)}); err != nil {
				t.Errorf("publish %s: %v", id, err)
				return
			}
			mu.Lock()
			confirmed[id] = [2]time.Time{called, time.Now()}
			mu.Unlock()
		}
	})
	chutetest.Eventually(t, "publishes to busy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(confirmed) >= 20
	})
	want := bkQueueStats(t, c, "orders", "audit", "orders.dlq")

	backup := filepath.Join(t.TempDir(), "backup")
	start := time.Now()
	out, code := bkRunChute(t, "backup", "--server", p.addr, backup)
	end := time.Now()
	if code != 0 || !strings.Contains(out, "publishes paused") {
		t.Fatalf("chute backup: exit %d\n%s", code, out)
	}
	t.Logf("%s", strings.TrimSpace(out))
	close(stop)
	wg.Wait()
	closeAll(c, pc)
	p.stop()

	dir := filepath.Join(t.TempDir(), "restored")
	out, code = bkRunChute(t, "restore", backup, dir)
	if code != 0 {
		t.Fatalf("chute restore: exit %d\n%s", code, out)
	}
	p2 := startData(t, dir)
	c2 := p2.dial(t)
	got := bkQueueStats(t, c2, "orders", "audit", "orders.dlq")
	for q := range want {
		// Latency histograms and the clients seen are statistics of the
		// running process, not state: a restored broker starts them afresh.
		for _, st := range []map[string]chute.QueueStats{got, want} {
			s := st[q]
			s.Latency, s.Consumers, s.Producers = chute.QueueLatency{}, 0, 0
			st[q] = s
		}
		if !reflect.DeepEqual(got[q], want[q]) {
			t.Errorf("%s after restore:\n got %+v\nwant %+v", q, got[q], want[q])
		}
	}
	if ts, err := c2.Topics(ctx); err != nil || len(ts) != 1 || ts[0].Name != "events" {
		t.Errorf("topics after restore: %+v, %v", ts, err)
	}
	busy := map[string]bool{}
	for {
		ds, err := c2.Receive(ctx, "busy", chute.ReceiveOptions{Max: 1000, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			busy[d.ID] = true
		}
	}
	var before, during time.Duration // the longest publish latencies, seen by the client
	for id, at := range confirmed {
		if at[1].Before(start) && !busy[id] {
			t.Errorf("busy: %s confirmed before the backup began, missing from it", id)
		}
		if lat := at[1].Sub(at[0]); at[1].Before(start) {
			before = max(before, lat)
		} else if at[0].Before(end) {
			during = max(during, lat)
		}
	}
	t.Logf("busy: %d publishes confirmed in all, %d in the backup; longest publish before the backup %v, during it (process start to exit) %v",
		len(confirmed), len(busy), before, during)
	closeAll(c2)
	p2.stop()

	// A damaged file: refused, exit 3, nothing written.
	seg := filepath.Join(backup, "00000001.seg")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "again")
	if out, code := bkRunChute(t, "restore", backup, target); code != 3 || !strings.Contains(out, "00000001.seg") {
		t.Errorf("restore of a damaged backup: exit %d, want 3 naming the file\n%s", code, out)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore made %s", target)
	}
}

// bkQueueStats returns the stats of queues by name, without the one figure
// that moves with the clock (OldestAge).
func bkQueueStats(t *testing.T, api chute.API, names ...string) map[string]chute.QueueStats {
	t.Helper()
	out := map[string]chute.QueueStats{}
	for _, q := range names {
		st, err := api.QueueStats(context.Background(), q)
		if err != nil {
			t.Fatalf("stats of %s: %v", q, err)
		}
		st.OldestAge = 0
		out[q] = st
	}
	return out
}
