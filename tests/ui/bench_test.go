package ui

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// BenchmarkOverview5000 measures the overview of a broker with 5,000
// queues in the browser:
//
//   - ms/render: from navigation start (performance.now() is relative to
//     it) to the overview table showing rows after the page applied the
//     feed's first snapshot, which carries every queue, and the header
//     counting "5000 queues";
//   - ms/feed-update: the interval between consecutive feed events the
//     page applies, while one queue gets a publish every 100 ms (so that
//     every tick has something to send);
//   - rows: the overview rows in the DOM after the render (fewer than
//     5,000 when the table renders only what is visible).
//
// It asserts nothing about times; it skips without a browser.
func BenchmarkOverview5000(b *testing.B) {
	const queues = 5000
	e := newEnv(b, &broker.Options{Sync: broker.SyncNever}) // setup speed only
	createQueues(b, e, queues)
	br := newBrowser(b, e.base, 10*time.Minute)
	br.wait = 2 * time.Minute
	br.login(adminToken)

	// The poll runs on every animation frame, so the time it returns is
	// at most a frame late.
	rendered := `(() => {
		if (!window.__chute || window.__chute.events < 1) return 0;
		if (document.querySelector('tr[data-queue]') === null) return 0;
		if (!/\b5[,.\u202f\u00a0 ]?000 queues/.test(document.body.innerText)) return 0;
		return performance.now();
	})()`
	var total float64
	n := 0
	for b.Loop() {
		br.do("reload", chromedp.Navigate("about:blank"), chromedp.Navigate(e.base+"/"))
		total += waitFor[float64](br, "the overview of 5000 queues", rendered,
			`String(window.__chute?.events) + ' events; ' + document.body.innerText.slice(0, 200)`)
		n++
	}
	b.ReportMetric(total/float64(n), "ms/render")
	b.ReportMetric(float64(eval[int](br, `document.querySelectorAll('tr[data-queue]').length`)), "rows")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond) // load, not synchronisation
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := e.broker.Publish(e.ctx, "q-00000", chute.Message{Body: []byte("x")}); err != nil {
					b.Errorf("publish: %v", err)
					return
				}
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	// Collect the times of the next 6 events applied, then average the 5
	// intervals between them.
	times := evalAwait[[]float64](br, `new Promise(resolve => {
		const times = [];
		let last = window.__chute.events;
		const tick = () => {
			const now = window.__chute.events;
			if (now !== last) { times.push(performance.now()); last = now; }
			if (times.length >= 6) resolve(times); else requestAnimationFrame(tick);
		};
		requestAnimationFrame(tick);
		setTimeout(() => resolve(times), 30000);
	})`)
	if len(times) < 6 {
		b.Logf("only %d feed events in 30 s", len(times))
	}
	if len(times) >= 2 {
		b.ReportMetric((times[len(times)-1]-times[0])/float64(len(times)-1), "ms/feed-update")
	}
}

// createQueues creates queues q-00000… (without dead-letter queues, so
// that there are n in all) through the broker, from a few
// goroutines so that the journal's group commit batches them.
func createQueues(b *testing.B, e *env, n int) {
	b.Helper()
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := e.broker.CreateQueue(e.ctx, fmt.Sprintf("q-%05d", i), chute.QueueConfig{NoDeadLetter: true}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("create queues: %v", err)
	}
}
