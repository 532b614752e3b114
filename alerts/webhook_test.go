package alerts

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// receiver is an httptest server on 127.0.0.1 that records every POST
// body and answers with the status that respond returns (200 if nil).
type receiver struct {
	srv     *httptest.Server
	bodies  chan map[string]any // every request, decoded
	count   atomic.Int64
	respond func(n int64) int // n counts from 1
}

func newReceiver(t *testing.T, respond func(n int64) int) *receiver {
	t.Helper()
	r := &receiver{bodies: make(chan map[string]any, 100), respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.count.Add(1)
		var body map[string]any
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			t.Errorf("decode webhook body: %v", err)
		}
		r.bodies <- body
		status := http.StatusOK
		if r.respond != nil {
			status = r.respond(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-r.bodies:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook request within 10 s")
		return nil
	}
}

func newTestWebhook(t *testing.T, opts WebhookOptions) *Webhook {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	w, err := NewWebhook(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// fast is a config whose depth rule fires and resolves at once.
var fast = Config{Rules: map[string]Override{
	RuleQueueDepth: {For: new(Duration(0)), ResolveFor: new(Duration(0))}}}

var (
	deepQueue    = Snapshot{Queues: []QueueFigures{{Queue: "orders", Depth: 20000, ActiveConsumers: 1}}}
	shallowQueue = Snapshot{Queues: []QueueFigures{{Queue: "orders", Depth: 3, ActiveConsumers: 1}}}
)

func TestWebhookFireAndResolveOnce(t *testing.T) {
	checkLeaks(t)
	recv := newReceiver(t, nil)
	clock := newFakeClock()
	w := newTestWebhook(t, WebhookOptions{URL: recv.srv.URL, Clock: clock, ExternalURL: "http://chute.example:7890/"})
	e, err := New(fast, clock, w)
	if err != nil {
		t.Fatal(err)
	}
	fired := clock.Now()
	e.Evaluate(deepQueue)
	checkMessage(t, recv.next(t), "firing", fired, time.Time{})
	e.Evaluate(deepQueue) // still firing: nothing sent
	clock.Advance(5 * time.Second)
	e.Evaluate(shallowQueue)
	checkMessage(t, recv.next(t), "resolved", fired, fired.Add(5*time.Second))
	e.Evaluate(shallowQueue)

	waitFor(t, "two sent", func() bool { return w.Stats().Sent == 2 })
	_ = w.Close()
	recv.srv.Close()
	if n := recv.count.Load(); n != 2 {
		t.Fatalf("receiver got %d requests, want 2", n)
	}
	if s := w.Stats(); s != (WebhookStats{Sent: 2}) {
		t.Fatalf("stats %+v", s)
	}
}

// checkMessage checks the Alertmanager webhook shape, as a receiver that
// knows nothing of chute would read it.
func checkMessage(t *testing.T, m map[string]any, status string, starts, ends time.Time) {
	t.Helper()
	str := func(v any) string { s, _ := v.(string); return s }
	obj := func(v any) map[string]any { o, _ := v.(map[string]any); return o }
	if str(m["version"]) != "4" || str(m["status"]) != status || str(m["receiver"]) != "chute" ||
		str(m["externalURL"]) != "http://chute.example:7890/" ||
		str(m["groupKey"]) != `{}:{alertname="queue_depth", queue="orders"}` {
		t.Errorf("message header: %v", m)
	}
	for _, k := range []string{"groupLabels", "commonLabels", "commonAnnotations"} {
		if obj(m[k]) == nil {
			t.Errorf("message has no %s object", k)
		}
	}
	if obj(m["groupLabels"])["queue"] != "orders" {
		t.Errorf("groupLabels %v", m["groupLabels"])
	}
	list, _ := m["alerts"].([]any)
	if len(list) != 1 {
		t.Fatalf("alerts: %v", m["alerts"])
	}
	a := obj(list[0])
	labels, ann := obj(a["labels"]), obj(a["annotations"])
	if str(a["status"]) != status || str(labels["alertname"]) != RuleQueueDepth ||
		str(labels["queue"]) != "orders" || str(labels["severity"]) != "warning" {
		t.Errorf("alert %v", a)
	}
	if str(ann["summary"]) != "queue orders holds 20000 messages (threshold 10000)" || str(ann["value"]) != "20000" {
		t.Errorf("annotations %v", ann)
	}
	if got, err := time.Parse(time.RFC3339Nano, str(a["startsAt"])); err != nil || !got.Equal(starts) {
		t.Errorf("startsAt %v (%v), want %v", a["startsAt"], err, starts)
	}
	if got, err := time.Parse(time.RFC3339Nano, str(a["endsAt"])); err != nil || !got.Equal(ends) {
		t.Errorf("endsAt %v (%v), want %v", a["endsAt"], err, ends)
	}
	if str(a["generatorURL"]) != "http://chute.example:7890/" {
		t.Errorf("generatorURL %v", a["generatorURL"])
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(str(a["fingerprint"])) {
		t.Errorf("fingerprint %v", a["fingerprint"])
	}
}

// checkLeaks checks, after every cleanup of the test has run, that the
// test left no goroutine behind.
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // registered first: runs last
}

// hanging is a receiver whose handler blocks until the test ends.
func hanging(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv.URL, ch
}

func TestHangingWebhookStallsNothing(t *testing.T) {
	checkLeaks(t)
	url, arrived := hanging(t)
	good := newReceiver(t, nil)
	clock := newFakeClock()
	stuck := newTestWebhook(t, WebhookOptions{URL: url, Clock: clock, QueueSize: 2})
	healthy := newTestWebhook(t, WebhookOptions{URL: good.srv.URL, Clock: clock})
	var logs syncBuffer
	log := NewLogNotifier(slog.New(slog.NewTextHandler(&logs, nil)))
	e, err := New(fast, clock, stuck, log, healthy)
	if err != nil {
		t.Fatal(err)
	}
	evaluate := func(s Snapshot) {
		t.Helper()
		done := make(chan struct{})
		go func() { e.Evaluate(s); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Evaluate blocked on a hanging webhook")
		}
	}

	evaluate(deepQueue)
	<-arrived // the stuck webhook's goroutine is inside its request now
	evaluate(shallowQueue)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="alert firing"`) || !strings.Contains(lines[1], `msg="alert resolved"`) ||
		!strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "rule=queue_depth") {
		t.Fatalf("log lines: %q", lines)
	}
	// Three more notifications: the queue (2) holds the resolve and the
	// next fire; then the oldest two are pushed out.
	evaluate(deepQueue)
	evaluate(shallowQueue)
	evaluate(deepQueue)
	if s := stuck.Stats(); s.Dropped != 2 || s.Sent != 0 {
		t.Fatalf("stuck webhook stats %+v, want 2 dropped", s)
	}
	for i := range 5 {
		if got := good.next(t)["status"]; got != []string{"firing", "resolved"}[i%2] {
			t.Fatalf("healthy webhook message %d: status %v", i, got)
		}
	}
	// Close cuts the hanging request short and counts what was queued.
	if err := stuck.Close(); err != nil {
		t.Fatal(err)
	}
	if s := stuck.Stats(); s.Dropped != 4 || s.Failed != 0 {
		t.Fatalf("after Close: %+v, want 4 dropped", s)
	}
}

// webhookFor starts a webhook that reports each back-off wait on the
// returned channel.
func webhookFor(t *testing.T, opts WebhookOptions) (*Webhook, <-chan time.Duration) {
	t.Helper()
	ch := make(chan time.Duration, 100)
	opts.Logger = slog.New(slog.DiscardHandler)
	w, err := newWebhook(opts, func(d time.Duration) { ch <- d })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, ch
}

func nextBackoff(t *testing.T, ch <-chan time.Duration, want time.Duration) {
	t.Helper()
	select {
	case d := <-ch:
		if d != want {
			t.Fatalf("back-off %v, want %v", d, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no back-off of %v within 10 s", want)
	}
}

func TestWebhookRetriesWithBackoff(t *testing.T) {
	checkLeaks(t)
	recv := newReceiver(t, func(n int64) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	clock := newFakeClock()
	w, waits := webhookFor(t, WebhookOptions{URL: recv.srv.URL, Clock: clock})
	w.Notify(Alert{Rule: "r", Queue: "q", Status: StatusFiring, Figure: FigureDepth, Severity: SeverityWarning})
	nextBackoff(t, waits, time.Second)
	clock.Advance(time.Second)
	nextBackoff(t, waits, 2*time.Second)
	clock.Advance(2 * time.Second)
	waitFor(t, "sent", func() bool { return w.Stats().Sent == 1 })
	if n := recv.count.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	for range 3 {
		if got := recv.next(t)["status"]; got != "firing" {
			t.Fatalf("status %v", got)
		}
	}
}

func TestWebhookGivesUpAfterMaxAttempts(t *testing.T) {
	checkLeaks(t)
	recv := newReceiver(t, func(int64) int { return http.StatusServiceUnavailable })
	clock := newFakeClock()
	w, waits := webhookFor(t, WebhookOptions{URL: recv.srv.URL, Clock: clock,
		MaxAttempts: 4, MinBackoff: time.Second, MaxBackoff: 3 * time.Second})
	w.Notify(Alert{Rule: "r", Status: StatusFiring, Figure: FigureDepth})
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} { // capped at 3 s
		nextBackoff(t, waits, d)
		clock.Advance(d)
	}
	waitFor(t, "given up", func() bool { return w.Stats().Failed == 1 })
	if n := recv.count.Load(); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

func TestWebhookClientErrorIsNotRetried(t *testing.T) {
	checkLeaks(t)
	recv := newReceiver(t, func(int64) int { return http.StatusBadRequest })
	w, waits := webhookFor(t, WebhookOptions{URL: recv.srv.URL, Clock: newFakeClock()})
	w.Notify(Alert{Rule: "r", Status: StatusFiring, Figure: FigureDepth})
	waitFor(t, "given up", func() bool { return w.Stats().Failed == 1 })
	if n, d := recv.count.Load(), len(waits); n != 1 || d != 0 {
		t.Fatalf("%d requests and %d back-offs, want 1 and 0", n, d)
	}
}

func TestWebhookAttemptTimeoutOnClock(t *testing.T) {
	checkLeaks(t)
	url, arrived := hanging(t)
	clock := newFakeClock()
	w, waits := webhookFor(t, WebhookOptions{URL: url, Clock: clock, Timeout: 5 * time.Second})
	w.Notify(Alert{Rule: "r", Status: StatusFiring, Figure: FigureDepth})
	<-arrived
	clock.Advance(5 * time.Second) // the attempt's timeout
	nextBackoff(t, waits, time.Second)
	clock.Advance(time.Second)
	<-arrived // the second attempt
}

func TestNewWebhookRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/", "localhost:9093", "http://"} {
		if w, err := NewWebhook(WebhookOptions{URL: u}); err == nil {
			_ = w.Close()
			t.Errorf("NewWebhook(%q) accepted", u)
		}
	}
}

func TestWebhookCloseIsIdempotentAndDropsLateNotify(t *testing.T) {
	checkLeaks(t)
	recv := newReceiver(t, nil)
	w := newTestWebhook(t, WebhookOptions{URL: recv.srv.URL, Clock: newFakeClock()})
	_ = w.Close()
	_ = w.Close()
	w.Notify(Alert{Rule: "r"})
	if s := w.Stats(); s.Dropped != 1 || s.Sent != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLogNotifierLevels(t *testing.T) {
	var buf syncBuffer
	n := NewLogNotifier(slog.New(slog.NewJSONHandler(&buf, nil)))
	n.Notify(Alert{Rule: "a", Severity: SeverityCritical, Status: StatusFiring, Figure: FigureDepth})
	n.Notify(Alert{Rule: "a", Severity: SeverityCritical, Status: StatusResolved, Figure: FigureDepth})
	n.Notify(Alert{Rule: "b", Severity: SeverityInfo, Status: StatusFiring, Figure: FigureDepth})
	var levels []string
	dec := json.NewDecoder(strings.NewReader(buf.String()))
	for {
		var line struct{ Level, Msg string }
		if err := dec.Decode(&line); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		levels = append(levels, line.Level+" "+line.Msg)
	}
	want := []string{"ERROR alert firing", "INFO alert resolved", "INFO alert firing"}
	if strings.Join(levels, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", levels, want)
	}
}
