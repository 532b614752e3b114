package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// restartable serves b on one address, and can stop and restart the
// server there (the broker stays), as a restarted `chute serve` would.
type restartable struct {
	t    *testing.T
	b    *broker.Broker
	addr string
	srv  *server.Server
	done chan error
}

func (r *restartable) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port may linger for a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = server.New(r.b, server.Options{})
	r.done = make(chan error, 1)
	go func() { r.done <- r.srv.Serve(ln) }()
}

func (r *restartable) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx)
	if err := <-r.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.t.Errorf("serve: %v", err)
	}
}

func newRestartable(t *testing.T) *restartable {
	r := &restartable{t: t, b: chutetest.MustOpen(t, "", nil), addr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// TestRunnerAndProducerSurviveServerRestart: a runner and a producer keep
// going across a server restart (reconnecting with back-off); every
// message is handled, none is stored twice.
func TestRunnerAndProducerSurviveServerRestart(t *testing.T) {
	rs := newRestartable(t)
	c, err := client.Dial(rs.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := chutetest.Ctx(t)
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 100)
	r := client.NewRunner(c, "q", func(_ context.Context, d chute.Delivery) error {
		handled <- string(d.Body)
		return nil
	}, client.RunnerOptions{RetryDelay: 5 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond})
	runBackground(t, r)
	p := client.NewProducer(c, "q", client.ProducerOptions{RetryDelay: 5 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond})
	defer p.Close(ctx)

	publish := func(from, to int) {
		for i := from; i < to; i++ {
			f, err := p.Publish(ctx, chute.Message{Body: []byte(fmt.Sprint(i))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Wait(ctx); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	}
	seen := map[string]int{}
	// take waits until messages 0..n-1 have all been handled (some may be
	// handled twice: a restart may lose an ack; delivery is at least once).
	take := func(n int) {
		for len(seen) < n {
			select {
			case b := <-handled:
				seen[b]++
			case <-ctx.Done():
				t.Fatalf("handled %d distinct messages of %d: %v", len(seen), n, seen)
			}
		}
	}
	publish(0, 10)
	take(10)
	rs.stop()
	rs.start() // same address
	publish(10, 20)
	take(20)
	for i := range 20 {
		if seen[fmt.Sprint(i)] < 1 {
			t.Fatalf("message %d never handled", i)
		}
	}
	chutetest.Eventually(t, "every message acked", func() bool {
		s, _ := rs.b.QueueStats(context.Background(), "q")
		return s.Totals.Acked >= 20 && s.Depth() == 0
	})
	if s, _ := rs.b.QueueStats(context.Background(), "q"); s.Totals.Enqueued != 20 {
		t.Fatalf("%d messages stored for 20 published", s.Totals.Enqueued)
	}
}
