// Package ui holds the dashboard's browser tests: an in-process broker and
// server with the dashboard on, driven from Go through a headless
// Chromium with chromedp (docs/dashboard.md is the contract they check).
//
// Without a browser the tests skip, unless CHUTE_UI_REQUIRED=1 (CI), when
// they fail instead. CHUTE_CHROMIUM names the browser binary;
// CHUTE_UI_ARTIFACTS the directory for screenshots (default
// <repo>/artifacts/ui).
package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// The tokens of every test server: an admin one and a read-only one.
const (
	adminToken = "admin-token"
	readToken  = "read-token-0123"
)

// testTimeout bounds each test's browser: every action of a test runs on
// a context that ends after it.
const testTimeout = 60 * time.Second

// pollTimeout bounds one wait for a condition in the page.
const pollTimeout = 20 * time.Second

// browserPath finds Chromium: $CHUTE_CHROMIUM, then chromium,
// chromium-browser and google-chrome on PATH. Without one the test skips,
// or fails when CHUTE_UI_REQUIRED=1.
func browserPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHUTE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CHUTE_UI_REQUIRED") == "1" {
		t.Fatal("no Chromium found (CHUTE_UI_REQUIRED=1): install chromium or set CHUTE_CHROMIUM")
	}
	t.Skip("no Chromium found: set CHUTE_CHROMIUM or install chromium to run the dashboard's browser tests")
	return ""
}

// env is one test's broker and server, with an admin client.
type env struct {
	broker *broker.Broker
	srv    *server.Server
	base   string // http://127.0.0.1:PORT
	admin  *client.Client
	ctx    context.Context
}

// newEnv opens a broker in a temporary directory and serves it with the
// dashboard on, an admin token, a read-only token ("viewer") and alert
// evaluation every second.
func newEnv(t testing.TB, bopts *broker.Options) *env {
	t.Helper()
	b := chutetest.MustOpen(t, t.TempDir(), bopts)
	srv, addr := chutetest.Serve(t, b, server.Options{
		Token:     adminToken,
		Tokens:    []server.Token{{Name: "viewer", Secret: readToken, Role: server.RoleRead}},
		Dashboard: &server.DashboardOptions{},
		Alerts:    &server.AlertOptions{},
		// Short, so that a feed the server wrongly takes for an
		// unauthenticated connection is cut while a test runs.
		AuthTimeout: 2 * time.Second,
	})
	c, err := client.Dial(addr, client.WithToken(adminToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return &env{broker: b, srv: srv, base: "http://" + addr, admin: c, ctx: ctx}
}

// createQueue creates a queue through the Go client.
func (e *env) createQueue(t testing.TB, name string, cfg chute.QueueConfig) {
	t.Helper()
	if err := e.admin.CreateQueue(e.ctx, name, cfg); err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
}

// publish publishes n messages with the body to a queue or topic through
// the Go client.
func (e *env) publish(t testing.TB, target string, n int, body string) {
	t.Helper()
	msgs := make([]chute.Message, n)
	for i := range msgs {
		msgs[i] = chute.Message{Body: []byte(body)}
	}
	if _, err := e.admin.Publish(e.ctx, target, msgs...); err != nil {
		t.Fatalf("publish %d to %s: %v", n, target, err)
	}
}

// stats reads a queue's statistics through the Go client.
func (e *env) stats(t testing.TB, name string) chute.QueueStats {
	t.Helper()
	st, err := e.admin.QueueStats(e.ctx, name)
	if err != nil {
		t.Fatalf("stats of %s: %v", name, err)
	}
	return st
}

// browser is one headless Chromium tab on a test's server. It records
// what the page logs and requests; at the end of the test every error
// the page logged (console.error, an uncaught exception, a browser log
// entry at level error) fails the test, unless allowed.
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string
	// wait bounds one waitFor; default pollTimeout.
	wait time.Duration

	mu       sync.Mutex
	errs     []string // guarded by mu: errors the page logged
	allowed  []string // guarded by mu: substrings of errors a test expects
	requests []string // guarded by mu: every URL the page requested
}

// newBrowser starts Chromium (headless, no sandbox, 1400×900) with a
// context bounded by timeout, and stops it when the test ends.
func newBrowser(t testing.TB, base string, timeout time.Duration) *browser {
	t.Helper()
	path := browserPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}),
		chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelBrowser)
	// The first Run starts the browser for the life of bctx; the test's
	// actions run on a context derived from it, bounded by timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	ctx, cancel := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancel)
	br := &browser{t: t, ctx: ctx, base: base, wait: pollTimeout}
	if err := chromedp.Listen(bctx, br.event); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(br.check) // runs before the cancels above (LIFO)
	return br
}

// event records one event of the page (on chromedp's reading goroutine:
// it must return fast).
func (br *browser) event(ev any) {
	br.mu.Lock()
	defer br.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			br.errs = append(br.errs, "console."+string(ev.Type)+": "+consoleArgs(ev.Args))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		br.errs = append(br.errs, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			br.errs = append(br.errs, fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		br.requests = append(br.requests, ev.Request.URL)
	}
}

// consoleArgs renders the arguments of a console call.
func consoleArgs(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// allow makes errors the page logs that contain sub expected (a refused
// call the test makes on purpose, for example).
func (br *browser) allow(sub string) {
	br.mu.Lock()
	defer br.mu.Unlock()
	br.allowed = append(br.allowed, sub)
}

// check fails the test for each error the page logged that no allow
// covers.
func (br *browser) check() {
	br.mu.Lock()
	defer br.mu.Unlock()
next:
	for _, e := range br.errs {
		for _, a := range br.allowed {
			if strings.Contains(e, a) {
				br.t.Logf("page logged (expected): %s", e)
				continue next
			}
		}
		br.t.Errorf("page logged an error: %s", e)
	}
}

// requested returns the URLs the page has requested so far.
func (br *browser) requested() []string {
	br.mu.Lock()
	defer br.mu.Unlock()
	return append([]string(nil), br.requests...)
}

// do runs actions, failing the test with what on error.
func (br *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	br.t.Helper()
	if err := chromedp.Do(br.ctx, actions...); err != nil {
		br.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into a T.
func eval[T any](br *browser, expr string) T {
	br.t.Helper()
	v, err := chromedp.Run(br.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		br.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// evalAwait evaluates a JavaScript expression that gives a promise, and
// decodes what the promise resolves to into a T.
func evalAwait[T any](br *browser, expr string) T {
	br.t.Helper()
	v, err := chromedp.Run(br.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		br.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression in the page (on every animation
// frame) until it is truthy, and returns its value; after br.wait it
// fails the test, with what and the value of explain, if given.
func waitFor[T any](br *browser, what, expr, explain string) T {
	br.t.Helper()
	v, err := chromedp.Run(br.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(br.wait)))
	if err != nil {
		msg := fmt.Sprintf("waiting for %s (%s): %v", what, expr, err)
		if explain != "" {
			if got, err := chromedp.Run(br.ctx, chromedp.Evaluate[string](explain)); err == nil {
				msg += "; now: " + got
			}
		}
		br.t.Fatal(msg)
	}
	return v
}

// open navigates to the dashboard at a hash route ("#/queue/orders").
func (br *browser) open(route string) {
	br.t.Helper()
	br.do("open "+route, chromedp.Navigate(br.base+"/"+route))
}

// route changes the hash route without reloading the page.
func (br *browser) route(route string) {
	br.t.Helper()
	eval[chromedp.Void](br, fmt.Sprintf("location.hash = %q", route))
}

// login opens the dashboard, types the token into the login form and
// waits until the feed is live.
func (br *browser) login(token string) {
	br.t.Helper()
	br.open("")
	br.do("log in",
		chromedp.WaitVisible(chromedp.CSS("form#login")),
		chromedp.SendKeys(chromedp.CSS("input#token"), token+kb.Enter),
	)
	waitFor[bool](br, "the feed to be live after login", `document.querySelector('#live[data-state=live]') !== null`,
		`(document.querySelector('#live')||{}).outerHTML + ' login-error: ' + (document.querySelector('#login-error')||{}).textContent`)
}

// clear empties an input as a user would: the value goes, and the page
// gets an input event. (chromedp.Clear only resets the value attribute.)
func (br *browser) clear(sel string) {
	br.t.Helper()
	eval[chromedp.Void](br, fmt.Sprintf(`(() => { const el = document.querySelector(%s); el.value = '';
		el.dispatchEvent(new Event('input', {bubbles: true})) })()`, js(sel)))
}

// feedEvents is the count of feed events the page has applied.
func (br *browser) feedEvents() int {
	br.t.Helper()
	return eval[int](br, `window.__chute.events`)
}

// noJunk fails the test when the page's text shows "null", "undefined"
// or "NaN", even inside a word ("orders.dlqnull"): a value rendered
// that should not have been.
func (br *browser) noJunk(page string) {
	br.t.Helper()
	junk := eval[[]string](br, `(document.body.innerText.match(/.{0,30}(null|undefined|NaN).{0,10}/g) || [])`)
	for _, j := range junk {
		br.t.Errorf("the %s page shows %q", page, j)
	}
}

// screenshot saves a full-page PNG as name.png in the artefacts
// directory ($CHUTE_UI_ARTIFACTS, default <repo>/artifacts/ui).
func (br *browser) screenshot(name string) {
	br.t.Helper()
	dir := os.Getenv("CHUTE_UI_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "ui")
	}
	// At the top, so that a sticky header is drawn where it belongs.
	eval[chromedp.Void](br, `window.scrollTo(0, 0)`)
	png, err := chromedp.Run(br.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		br.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		br.t.Fatal(err)
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		br.t.Fatal(err)
	}
	br.t.Logf("screenshot: %s", file)
}

// cookies returns the browser's cookies for the server.
func (br *browser) cookies() []*network.Cookie {
	br.t.Helper()
	res, err := chromedp.Call(br.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{br.base + "/"}})
	if err != nil {
		br.t.Fatalf("get cookies: %v", err)
	}
	return res.Cookies
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// tokenInURL reports whether any requested URL carries the secret, plain
// or escaped.
func tokenInURL(urls []string, secret string) (string, bool) {
	for _, u := range urls {
		if strings.Contains(u, secret) || strings.Contains(u, url.QueryEscape(secret)) {
			return u, true
		}
	}
	return "", false
}
