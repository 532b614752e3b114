package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/chutemq/chute"
)

// WebhookOptions configures a Webhook. Only URL is required.
type WebhookOptions struct {
	// URL receives a POST of an Alertmanager webhook payload for every
	// alert that fires or resolves (http or https).
	URL string
	// Clock times attempts and back-off (nil: the system clock).
	Clock chute.Clock
	// Client sends the requests (nil: a client of the webhook's own,
	// whose idle connections Close closes). Its own Timeout, if any,
	// applies on top of Timeout.
	Client *http.Client
	// Timeout bounds one attempt, connection included. Default 10 s.
	Timeout time.Duration
	// MaxAttempts is the attempts per notification before it is given up
	// (counted in WebhookStats.Failed). Default 5.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff up to MaxBackoff. Defaults 1 s and 1 min:
	// with 5 attempts a notification is given up after about 15 s of
	// waiting (plus the attempts), while the queue holds the next ones.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the notifications waiting to be sent. When it is
	// full the oldest is dropped (counted in WebhookStats.Dropped): newer
	// news is worth more. Default 256.
	QueueSize int
	// ExternalURL is the payload's externalURL and every alert's
	// generatorURL: where a person reading the alert finds the broker
	// (its dashboard). Optional.
	ExternalURL string
	// Receiver is the payload's receiver name. Default "chute".
	Receiver string
	// Logger logs failed attempts and drops (nil: slog.Default()).
	Logger *slog.Logger
}

func (o *WebhookOptions) withDefaults() {
	if o.Clock == nil {
		o.Clock = chute.SystemClock()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.Receiver == "" {
		o.Receiver = "chute"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// WebhookStats counts what a Webhook did with its notifications.
type WebhookStats struct {
	// Sent counts notifications the receiver accepted (2xx).
	Sent uint64
	// Failed counts notifications given up: MaxAttempts failed, or the
	// receiver refused one with a 4xx status other than 408 and 429 (a
	// retry would be refused too).
	Failed uint64
	// Dropped counts notifications pushed out of a full queue, or still
	// queued when the webhook closed.
	Dropped uint64
}

// Webhook is a Notifier that POSTs each notification to a URL, from a
// goroutine of its own through a bounded queue: Notify never waits for the
// network, so a slow or dead receiver delays nothing but its own
// notifications. Each webhook has its own goroutine and queue, so one
// receiver's trouble does not touch another's. The owner calls Close.
type Webhook struct {
	opts   WebhookOptions
	client *http.Client
	own    bool // client is ours: Close closes its idle connections

	ctx    context.Context // cancelled by Close: ends the goroutine and any request
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: there is something in queue
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	queue  []Alert      // guarded by mu; at most opts.QueueSize, oldest first
	stats  WebhookStats // guarded by mu
	closed bool         // guarded by mu

	// onBackoff, set by tests only, is called with each back-off wait
	// once its timer is armed. Immutable after newWebhook.
	onBackoff func(time.Duration)
}

// NewWebhook starts a webhook notifier. It fails if the URL is not an
// absolute http or https URL.
func NewWebhook(opts WebhookOptions) (*Webhook, error) { return newWebhook(opts, nil) }

// newWebhook is NewWebhook with a hook for tests (see onBackoff).
func newWebhook(opts WebhookOptions, onBackoff func(time.Duration)) (*Webhook, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alerts: webhook URL %q: want an http or https URL", opts.URL)
	}
	opts.withDefaults()
	w := &Webhook{opts: opts, client: opts.Client, wake: make(chan struct{}, 1), onBackoff: onBackoff}
	if w.client == nil {
		w.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		w.own = true
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.wg.Go(w.run)
	return w, nil
}

// Notify queues a for sending and returns at once. If the queue is full
// the oldest notification in it is dropped.
func (w *Webhook) Notify(a Alert) {
	w.mu.Lock()
	if w.closed {
		w.stats.Dropped++
		w.mu.Unlock()
		return
	}
	var dropped *Alert
	if len(w.queue) >= w.opts.QueueSize {
		dropped = &w.queue[0]
		w.queue = slices.Delete(w.queue, 0, 1)
		w.stats.Dropped++
	}
	w.queue = append(w.queue, a)
	w.mu.Unlock()
	if dropped != nil {
		w.opts.Logger.Warn("alert webhook queue full: dropped the oldest notification",
			"url", w.opts.URL, "rule", dropped.Rule, "queue", dropped.Queue, "status", string(dropped.Status))
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stats returns the webhook's counts so far.
func (w *Webhook) Stats() WebhookStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Close stops the webhook: it cancels a request in progress, drops what is
// still queued, and waits for the goroutine to end. It is idempotent.
func (w *Webhook) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.cancel()
		w.wg.Wait()
		w.mu.Lock()
		w.stats.Dropped += uint64(len(w.queue))
		w.queue = nil
		w.mu.Unlock()
		if w.own {
			w.client.CloseIdleConnections()
		}
	})
	return nil
}

// run is the webhook's goroutine: it sends queued notifications one at a
// time, in order, until Close.
func (w *Webhook) run() {
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		}
		for w.ctx.Err() == nil {
			a, ok := w.pop()
			if !ok {
				break
			}
			w.deliver(a)
		}
	}
}

func (w *Webhook) pop() (Alert, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return Alert{}, false
	}
	a := w.queue[0]
	w.queue = slices.Delete(w.queue, 0, 1)
	return a, true
}

// deliver sends one notification, retrying with exponential back-off.
func (w *Webhook) deliver(a Alert) {
	body, err := json.Marshal(newAlertmanagerMessage(a, w.opts.Receiver, w.opts.ExternalURL))
	if err != nil { // cannot happen: the message is strings and times
		w.count(&w.stats.Failed)
		w.opts.Logger.Error("alert webhook: encode", "err", err)
		return
	}
	backoff := w.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		retry, err := w.attempt(body)
		switch {
		case err == nil:
			w.count(&w.stats.Sent)
			return
		case w.ctx.Err() != nil: // closing: Close counts nothing for a request cut short
			return
		case !retry || attempt >= w.opts.MaxAttempts:
			w.count(&w.stats.Failed)
			w.opts.Logger.Error("alert webhook: giving up", "url", w.opts.URL,
				"rule", a.Rule, "queue", a.Queue, "status", string(a.Status), "attempts", attempt, "err", err)
			return
		}
		w.opts.Logger.Warn("alert webhook: attempt failed", "url", w.opts.URL,
			"attempt", attempt, "retry_in", backoff, "err", err)
		if !w.wait(backoff) {
			return
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

func (w *Webhook) count(c *uint64) {
	w.mu.Lock()
	*c++
	w.mu.Unlock()
}

// wait waits d on the clock; false if the webhook closed meanwhile.
func (w *Webhook) wait(d time.Duration) bool {
	t := w.opts.Clock.NewTimer(d)
	defer t.Stop()
	if w.onBackoff != nil {
		w.onBackoff(d)
	}
	select {
	case <-t.C():
		return true
	case <-w.ctx.Done():
		return false
	}
}

// attempt POSTs body once, within Timeout on the clock. retry says
// whether a failure is worth another attempt.
func (w *Webhook) attempt(body []byte) (retry bool, err error) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	// The per-attempt timeout runs on the clock, not on context's real
	// timer, so that tests drive it like the back-off. The watcher ends
	// before attempt returns.
	timer := w.opts.Clock.NewTimer(w.opts.Timeout)
	timedOut := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-timer.C():
			close(timedOut)
			cancel()
		case <-stop:
		}
	}()
	defer func() {
		timer.Stop()
		close(stop)
		<-done
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chute-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		select {
		case <-timedOut:
			return true, fmt.Errorf("timed out after %v", w.opts.Timeout)
		default:
		}
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500, c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
		return true, errors.New(resp.Status)
	default:
		return false, errors.New(resp.Status)
	}
}
