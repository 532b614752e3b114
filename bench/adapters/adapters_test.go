package adapters_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/adapters"
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
// $CHUTE_BENCH_NATS_URL (e.g. nats://127.0.0.1:4222); see
// docs/benchmarks.md for starting one.
func TestNATS(t *testing.T) {
	url := os.Getenv("CHUTE_BENCH_NATS_URL")
	if url == "" {
		t.Skip("CHUTE_BENCH_NATS_URL is not set")
	}
	exercise(t, adapters.NewNATS(url))
}
