package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/adapters"
	"github.com/chutemq/chute/bench/peers/peerstest"
	"github.com/chutemq/chute/bench/workload"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/server"
)

// exercise runs the comparison's loads briefly against sys: they must work
// and count what they stored, whatever the figures (performance is never
// asserted in a test).
func exercise(t *testing.T, sys adapters.System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: 4})
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	r, err := workload.Publish(ctx, sys.Name(), q, 4, 64, 100*time.Millisecond)
	if err != nil || r.Messages == 0 {
		t.Fatalf("publish: %v (%v)", err, r)
	}
	t.Log(r)
	before, err := q.Len(ctx)
	if err != nil || before < r.Messages {
		t.Fatalf("after publishing %d: len %d, %v", r.Messages, before, err)
	}
	if err := q.Fill(ctx, 300, 64); err != nil {
		t.Fatalf("fill: %v", err)
	}
	if after, err := q.Len(ctx); err != nil || after != before+300 {
		t.Fatalf("fill 300 onto %d: len %d, %v", before, after, err)
	}
	if err := q.Delete(ctx); err != nil {
		t.Fatalf("delete: %v", err)
	}

	q, err = sys.NewQueue(ctx, adapters.QueueOptions{InFlight: 16})
	if err != nil {
		t.Fatalf("new queue: %v", err)
	}
	defer q.Delete(context.Background())
	if _, ok := q.(adapters.AsyncPublisher); !ok {
		return
	}
	r, err = workload.Window(ctx, sys.Name(), q, 16, 64, 100*time.Millisecond)
	if err != nil || r.Messages == 0 {
		t.Fatalf("window: %v (%v)", err, r)
	}
	t.Log(r)
}

func TestChuteEmbedded(t *testing.T) {
	dir := t.TempDir()
	sys := adapters.NewChuteEmbedded(dir, &broker.Options{Sync: broker.SyncAlways})
	exercise(t, sys)
	// Each queue's broker and journal are gone with the queue.
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("journals left behind: %v", left)
	}
}

func TestChuteSyncs(t *testing.T) {
	sys := adapters.NewChuteEmbedded(t.TempDir(), nil)
	q, err := sys.NewQueue(context.Background(), adapters.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Delete(context.Background())
	r, err := workload.Publish(context.Background(), sys.Name(), q, 2, 16, 50*time.Millisecond)
	if err != nil || r.Syncs == 0 || r.RecordsPerSync < 1 {
		t.Fatalf("embedded publish reports no syncs: %v (%v)", err, r)
	}
}

func TestChuteNetwork(t *testing.T) {
	b, err := broker.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(b, server.Options{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	c, err := client.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exercise(t, adapters.NewChuteAPI("chute network", c))
	if qs, err := b.Queues(context.Background()); err != nil || len(qs) != 0 {
		t.Errorf("queues left behind: %v, %v", qs, err)
	}
}

// TestNATS runs against a NATS server with JetStream at
// $CHUTE_BENCH_NATS_URL (e.g. nats://127.0.0.1:4222), or else one started
// by bench/peers (skipped when nats-server is not installed; see
// peerstest.Start).
func TestNATS(t *testing.T) {
	if url := os.Getenv("CHUTE_BENCH_NATS_URL"); url != "" {
		exercise(t, adapters.NewNATS(url))
		return
	}
	sys, err := adapters.ForPeer(peerstest.Start(t, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, sys)
}

// TestChuteStreams drives chute embedded through the comparison's shapes
// (the same as TestPeers), and its delays and priorities.
func TestChuteStreams(t *testing.T) {
	sys := adapters.NewChuteEmbedded(t.TempDir(), nil)
	t.Run("queue", func(t *testing.T) { testQueue(t, sys) })
	t.Run("fanout", func(t *testing.T) { testFanout(t, sys) })
	t.Run("delays", func(t *testing.T) { testDelays(t, sys) })
}

// TestChuteServer starts a chute serve process and drives it the same
// way; it must leave no queue behind and stop by its PID.
func TestChuteServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := adapters.NewChuteServer(ctx, chuteBin(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	pid := s.PID()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("server pid %d: %v", pid, err)
	}
	t.Run("queue", func(t *testing.T) { testQueue(t, s) })
	t.Run("fanout", func(t *testing.T) { testFanout(t, s) })
	t.Run("delays", func(t *testing.T) { testDelays(t, s) })
	t.Run("exercise", func(t *testing.T) { exercise(t, s) })
	// The journal's first segment is made by the first write.
	var srv adapters.Server = s
	if srv.Durability() != "fsync before confirm (--sync always)" || s.Segments() < 1 {
		t.Errorf("durability %q, %d segments in %s", srv.Durability(), s.Segments(), srv.DataDir())
	}

	c, err := client.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if qs, err := c.Queues(ctx); err != nil || len(qs) != 0 {
		t.Errorf("queues left behind: %v, %v", qs, err)
	}
	if ts, err := c.Topics(ctx); err != nil || len(ts) != 0 {
		t.Errorf("topics left behind: %v, %v", ts, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server pid %d after Stop: %v", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// testDelays: ten messages of priorities 0–9 published in one batch are
// received highest first with prefetch 1; a delayed message is not
// delivered before its delay (only that side is asserted: the upper bound
// depends on the machine's load).
func testDelays(t *testing.T, sys adapters.System) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := newStreams(t, ctx, sys, adapters.QueueOptions{})
	dp, ok := s.(adapters.DelayPublisher)
	if !ok {
		t.Fatalf("%s queue is not a DelayPublisher", sys.Name())
	}
	var msgs []adapters.DelayedMessage
	for _, p := range []int{3, 9, 0, 5, 7, 1, 8, 2, 6, 4} {
		msgs = append(msgs, adapters.DelayedMessage{Body: []byte{byte(p)}, Priority: p})
	}
	if err := dp.PublishMany(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	c, err := s.NewConsumer(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for want := 9; want >= 0; want-- {
		ms, err := c.Receive(ctx, 10*time.Second)
		if err != nil || len(ms) != 1 || int(ms[0].Body[0]) != want {
			t.Fatalf("want priority %d alone: %v, %v", want, ms, err)
		}
		if err := c.Ack(ctx, ms); err != nil {
			t.Fatal(err)
		}
	}

	const delay = 200 * time.Millisecond
	start := time.Now()
	if err := dp.PublishMany(ctx, []adapters.DelayedMessage{{Body: []byte("later"), Delay: delay}}); err != nil {
		t.Fatal(err)
	}
	ms, err := c.Receive(ctx, 10*time.Second)
	if err != nil || len(ms) != 1 || string(ms[0].Body) != "later" {
		t.Fatalf("delayed message: %v, %v", ms, err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("a message delayed %v came after %v", delay, took)
	}
	if err := c.Ack(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close consumer (acks): %v", err)
	}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// chuteBin builds the chute binary of this repository once per test
// binary, in a directory removed when the package's tests end (TestMain).
func chuteBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chute-bench-adapters-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		builtBin = filepath.Join(dir, "chute")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/chute")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build chute: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// binDir holds the built chute binary; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// TestChuteFillReportsFailures: a fill whose publishes fail says so, not
// "filled" (it only waited for them: a cluster's W6 reported 200,000
// filled while 2,048 had failed in an election).
func TestChuteFillReportsFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sys := adapters.NewChuteEmbedded(t.TempDir(), &broker.Options{Sync: broker.SyncAlways, MaxMessageSize: 1024})
	q, err := sys.NewQueue(ctx, adapters.QueueOptions{InFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Delete(context.Background())
	if err := q.Fill(ctx, 10, 2048); err == nil {
		t.Fatal("a fill of 10 messages over the broker's limit returned no error")
	}
	if err := q.Fill(ctx, 10, 512); err != nil {
		t.Fatalf("a fill within the limit: %v", err)
	}
}
