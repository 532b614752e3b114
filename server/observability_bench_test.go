package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

// BenchmarkObservability measures what watching the broker costs (issue
// 9): 1,000 queues, publish + receive + ack through a real server on
// 127.0.0.1, with metrics served and scraped every second, alert rules
// evaluated every second and every queue's circuit breaker on ("on"),
// against the same load with all of them off ("off"). The sub-benchmarks
// run interleaved under -count, so that the machine's noise falls on both:
//
//	go test ./server/ -run '^$' -bench Observability -count 10 -benchtime 20000x | tee /tmp/obs.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /mode /tmp/obs.txt
//
// One op is one message published, delivered and acked; four workers
// each cycle through their share of the queues: publish a batch of 50,
// receive it, ack it.
//
// The modes metrics, alerts and breaker turn one of the three on, to see
// which costs what.
func BenchmarkObservability(b *testing.B) {
	for _, m := range []struct {
		name                     string
		metrics, alerts, breaker bool
	}{
		{"off", false, false, false},
		{"metrics", true, false, false},
		{"alerts", false, true, false},
		{"breaker", false, false, true},
		{"on", true, true, true},
	} {
		b.Run("mode="+m.name, func(b *testing.B) { benchObservability(b, m.metrics, m.alerts, m.breaker) })
	}
}

// obsServer serves a new broker on the real disk with obsQueues queues
// of cfg (q0000, q0001, …) on 127.0.0.1, with the options opts makes for
// it; the server, the broker and the directory go when the benchmark ends.
func obsServer(b *testing.B, cfg chute.QueueConfig, opts func(*broker.Broker) server.Options) (addr string) {
	br, err := broker.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	ctx := context.Background()
	for i := range obsQueues {
		if err := br.CreateQueue(ctx, fmt.Sprintf("q%04d", i), cfg); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(br, opts(br))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.Cleanup(func() { // before the broker closes: cleanups run last first
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // ends streams and feeds too
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.Error(err)
		}
	})
	return ln.Addr().String()
}

const (
	obsQueues  = 1000
	obsWorkers = 4
	obsBatch   = 50
)

func benchObservability(b *testing.B, withMetrics, withAlerts, withBreaker bool) {
	ctx := context.Background()
	cfg := chute.QueueConfig{NoDeadLetter: true}
	if withBreaker {
		cfg.Breaker = chute.Breaker{Enabled: true}
	}
	addr := obsServer(b, cfg, func(br *broker.Broker) (opts server.Options) {
		if withMetrics {
			opts.Metrics = metrics.Handler(br, metrics.Options{})
		}
		if withAlerts {
			opts.Alerts = &server.AlertOptions{}
		}
		return opts
	})

	stopScrape := make(chan struct{})
	var scrapes sync.WaitGroup
	if withMetrics {
		scrapes.Add(1)
		go func() { // Prometheus, scraping every second
			defer scrapes.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopScrape:
					return
				case <-t.C:
					if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}
		}()
	}
	defer func() { close(stopScrape); scrapes.Wait() }()

	clients := make([]*client.Client, obsWorkers)
	for w := range clients {
		var err error
		if clients[w], err = client.Dial(addr); err != nil {
			b.Fatal(err)
		}
		defer clients[w].Close()
	}
	body := make([]byte, 256)
	batch := make([]chute.Message, obsBatch)
	for i := range batch {
		batch[i].Body = body
	}
	rounds := (b.N + obsBatch - 1) / obsBatch
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, obsWorkers)
	for w := range obsWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w]
			for r := w; r < rounds; r += obsWorkers {
				q := fmt.Sprintf("q%04d", r%obsQueues) // r ≡ w (mod 4): no two workers share a queue
				if err := cycle(ctx, c, q, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// cycle publishes batch to q, receives it and acks it.
func cycle(ctx context.Context, c *client.Client, q string, batch []chute.Message) error {
	if _, err := c.Publish(ctx, q, batch...); err != nil {
		return err
	}
	for got := 0; got < len(batch); {
		ds, err := c.Receive(ctx, q, chute.ReceiveOptions{Max: len(batch) - got, Wait: time.Second})
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return fmt.Errorf("%s: nothing received", q)
		}
		receipts := make([]string, len(ds))
		for i, d := range ds {
			receipts[i] = d.Receipt
		}
		if err := c.Ack(ctx, q, receipts...); err != nil {
			return err
		}
		got += len(ds)
	}
	return nil
}
