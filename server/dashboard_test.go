package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/server"
)

// testAssets stand in for web.FS(), which another part of the tree fills.
var testAssets = fstest.MapFS{
	"index.html":                     {Data: []byte("<!doctype html><title>chute</title>")},
	"app.js":                         {Data: []byte("console.log('chute')")},
	"vendor/uplot/uPlot.iife.min.js": {Data: []byte("var uPlot")},
}

func dashOptions(o server.Options) server.Options {
	o.Dashboard = &server.DashboardOptions{Assets: testAssets, Hosts: []string{"dash.example"}, HistoryStep: time.Second}
	return o
}

// dashReq makes a request to the dashboard's server with the given
// headers ("Host" sets the request's Host).
func dashReq(t *testing.T, method, addr, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// connectCall makes a Connect JSON call as the page does.
func connectCall(t *testing.T, addr, proc, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
	for k, v := range hdr {
		h[k] = v
	}
	return dashReq(t, http.MethodPost, addr, proc, body, h)
}

// login logs in with token and returns the session cookie ("name=value").
func login(t *testing.T, addr, token string) string {
	t.Helper()
	resp, body := dashReq(t, http.MethodPost, addr, "/ui/login", `{"token":"`+token+`"}`,
		map[string]string{"Content-Type": "application/json", "Origin": "http://" + addr})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login: HTTP %d %s", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "chute_session" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login: no session cookie in %q", resp.Header.Values("Set-Cookie"))
	return ""
}

type sessionReply struct {
	Auth, LoggedIn, ReadOnly bool
	Name, Role, Version      string
}

func getSession(t *testing.T, addr string, hdr map[string]string) sessionReply {
	t.Helper()
	resp, body := dashReq(t, http.MethodGet, addr, "/ui/api/session", "", hdr)
	var s sessionReply
	if err := json.Unmarshal([]byte(body), &s); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("session: HTTP %d %s (%v)", resp.StatusCode, body, err)
	}
	return s
}

// TestDashboardStatic: the page at /, the assets under /ui/ with an ETag
// (and 304 for it), redirects from /ui and /dashboard, 404 for others.
func TestDashboardStatic(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	_, addr := startServer(t, b, dashOptions(server.Options{}))
	resp, body := dashReq(t, http.MethodGet, addr, "/", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Cache-Control") != "no-cache" || !strings.Contains(body, "<title>chute") {
		t.Fatalf("GET /: HTTP %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, body = dashReq(t, http.MethodGet, addr, "/ui/vendor/uplot/uPlot.iife.min.js", "", nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || body != "var uPlot" || etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET uPlot: HTTP %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := dashReq(t, http.MethodGet, addr, "/ui/vendor/uplot/uPlot.iife.min.js", "", map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: HTTP %d, want 304", resp.StatusCode)
	}
	for _, p := range []string{"/ui", "/dashboard"} {
		if resp, _ := dashReq(t, http.MethodGet, addr, p, "", nil); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "/" {
			t.Errorf("GET %s: HTTP %d to %q, want 308 to /", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := dashReq(t, http.MethodGet, addr, "/ui/nothing.js", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nothing.js: HTTP %d, want 404", resp.StatusCode)
	}

	// Without Options.Dashboard there is no page.
	_, plain := startServer(t, b, server.Options{})
	if resp, _ := dashReq(t, http.MethodGet, plain, "/", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / with the dashboard off: HTTP %d, want 404", resp.StatusCode)
	}
}

// TestDashboardSessionNoTokens: without tokens the page is logged in as
// anonymous admin, and login has nothing to do.
func TestDashboardSessionNoTokens(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	_, addr := startServer(t, b, dashOptions(server.Options{Info: server.Info{Version: "v9.9.9"}}))
	s := getSession(t, addr, nil)
	if s.Auth || !s.LoggedIn || s.Name != "anonymous" || s.Role != "admin" || s.ReadOnly || s.Version != "v9.9.9" {
		t.Fatalf("session: %+v", s)
	}
	if resp, body := dashReq(t, http.MethodPost, addr, "/ui/login", `{"token":"x"}`, nil); resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 0 {
		t.Fatalf("login without tokens: HTTP %d %s %v", resp.StatusCode, body, resp.Cookies())
	}
}

// TestDashboardLogin: the session endpoint never answers 401; a wrong
// token is 401 and counts as an authentication failure; the cookie is
// HttpOnly and SameSite=Strict and the token appears in no URL; a
// read-only token's session says so; logout ends the session.
func TestDashboardLogin(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, dashOptions(server.Options{Tokens: testTokens()}))
	if s := getSession(t, addr, nil); !s.Auth || s.LoggedIn {
		t.Fatalf("session before login: %+v", s)
	}
	before := srv.Stats().AuthFailures
	resp, body := dashReq(t, http.MethodPost, addr, "/ui/login", `{"token":"wrong"}`, map[string]string{"Origin": "http://" + addr})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"unknown token"`) || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong token: HTTP %d %s", resp.StatusCode, body)
	}
	if got := srv.Stats().AuthFailures; got != before+1 {
		t.Errorf("AuthFailures %d, want %d", got, before+1)
	}
	if resp, body := dashReq(t, http.MethodPost, addr, "/ui/login", `{"token":"read-secret"}`, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("cross-site login: HTTP %d %s, want 403", resp.StatusCode, body)
	}
	if resp, _ := dashReq(t, http.MethodPost, addr, "/ui/login", strings.Repeat("x", 5000), nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("oversized login body: HTTP %d, want 400", resp.StatusCode)
	}

	resp, body = dashReq(t, http.MethodPost, addr, "/ui/login", `{"token":"read-secret"}`, map[string]string{"Origin": "http://" + addr})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login: HTTP %d %s", resp.StatusCode, body)
	}
	set := resp.Header.Values("Set-Cookie")
	if len(set) != 1 || !strings.HasPrefix(set[0], "chute_session=") || !strings.Contains(set[0], "HttpOnly") ||
		!strings.Contains(set[0], "SameSite=Strict") || !strings.Contains(set[0], "Path=/") || strings.Contains(set[0], "Secure") {
		t.Fatalf("Set-Cookie %q", set)
	}
	if strings.Contains(set[0], "read-secret") || resp.Header.Get("Location") != "" {
		t.Fatalf("the token leaks: %v", resp.Header)
	}
	cookie := strings.SplitN(set[0], ";", 2)[0]
	s := getSession(t, addr, map[string]string{"Cookie": cookie})
	if !s.Auth || !s.LoggedIn || s.Name != "reader" || s.Role != "read" || !s.ReadOnly {
		t.Fatalf("session after login: %+v", s)
	}

	// Logout needs the page's Origin, then ends the session.
	if resp, _ := dashReq(t, http.MethodPost, addr, "/ui/logout", "", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without Origin: HTTP %d, want 403", resp.StatusCode)
	}
	resp, _ = dashReq(t, http.MethodPost, addr, "/ui/logout", "", map[string]string{"Cookie": cookie, "Origin": "http://" + addr})
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: HTTP %d %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if s := getSession(t, addr, map[string]string{"Cookie": cookie}); s.LoggedIn {
		t.Fatalf("session after logout: %+v", s)
	}
	resp, body = connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Cookie": cookie, "Origin": "http://" + addr})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "unauthenticated") {
		t.Errorf("API call after logout: HTTP %d %s, want 401", resp.StatusCode, body)
	}
}

// TestDashboardSessionExpiry: on the server's clock, a session ends after
// 12 hours unused, and 7 days after login however much it is used.
func TestDashboardSessionExpiry(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	clock := fakeclock.New()
	_, addr := startServer(t, b, dashOptions(server.Options{Tokens: testTokens(), Clock: clock}))
	loggedIn := func(cookie string) bool {
		return getSession(t, addr, map[string]string{"Cookie": cookie}).LoggedIn
	}
	idle := login(t, addr, "read-secret")
	clock.Advance(12*time.Hour - time.Second)
	if !loggedIn(idle) {
		t.Fatal("session ended before 12 hours")
	}
	clock.Advance(12 * time.Hour)
	if loggedIn(idle) {
		t.Fatal("session still valid after 12 hours unused")
	}
	used := login(t, addr, "read-secret")
	for range 15 { // 15 × 11 h = 6 d 21 h
		clock.Advance(11 * time.Hour)
		if !loggedIn(used) {
			t.Fatal("a session in use ended before 7 days")
		}
	}
	clock.Advance(3 * time.Hour)
	if loggedIn(used) {
		t.Fatal("session still valid after 7 days")
	}
}

// TestDashboardCookieAPI: a Connect call authenticated by the session
// cookie works from the page's own origin, and is refused from another or
// with none; a read-only session cannot purge.
func TestDashboardCookieAPI(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "orders", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, b, dashOptions(server.Options{Tokens: testTokens()}))
	admin, reader := login(t, addr, "admin-secret"), login(t, addr, "read-secret")
	self := "http://" + addr

	resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Cookie": admin, "Origin": self})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"orders"`) {
		t.Fatalf("ListQueues by cookie: HTTP %d %s", resp.StatusCode, body)
	}
	denied := srv.Stats().PermissionDenied
	for _, origin := range []string{"http://evil.example", "null", ""} {
		resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Cookie": admin, "Origin": origin})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "permission_denied") || !strings.Contains(body, "cross-origin") {
			t.Errorf("ListQueues by cookie with Origin %q: HTTP %d %s, want 403 permission_denied", origin, resp.StatusCode, body)
		}
	}
	if got := srv.Stats().PermissionDenied; got != denied+3 {
		t.Errorf("PermissionDenied %d, want %d", got, denied+3)
	}
	// A bearer token needs no Origin (the CLI and scripts).
	if resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Authorization": "Bearer read-secret"}); resp.StatusCode != http.StatusOK {
		t.Errorf("ListQueues by bearer token: HTTP %d %s", resp.StatusCode, body)
	}
	resp, body = connectCall(t, addr, "/chute.v1.AdminService/PurgeQueue", `{"name":"orders"}`, map[string]string{"Cookie": reader, "Origin": self})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "permission_denied") || !strings.Contains(body, "role read") {
		t.Errorf("PurgeQueue by a read-only session: HTTP %d %s, want 403", resp.StatusCode, body)
	}
	if resp, body := connectCall(t, addr, "/chute.v1.AdminService/PurgeQueue", `{"name":"orders"}`, map[string]string{"Cookie": admin, "Origin": self}); resp.StatusCode != http.StatusOK {
		t.Errorf("PurgeQueue by an admin session: HTTP %d %s", resp.StatusCode, body)
	}
	// The feed and history need a session or a token.
	if resp, _ := dashReq(t, http.MethodGet, addr, "/ui/api/history?queue=orders", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("history without a session: HTTP %d, want 401", resp.StatusCode)
	}
	if resp, _ := dashReq(t, http.MethodGet, addr, "/ui/api/feed", "", map[string]string{"Cookie": reader, "Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("feed from another origin: HTTP %d, want 403", resp.StatusCode)
	}
}

// TestDashboardHostCheck: without tokens, the page and browser API calls
// answer only to IP literals, localhost and the configured hosts (DNS
// rebinding); a CLI-style call without Origin is not affected.
func TestDashboardHostCheck(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	_, addr := startServer(t, b, dashOptions(server.Options{}))
	_, port, _ := net.SplitHostPort(addr)
	for host, ok := range map[string]bool{
		"evil.example:" + port: false, "evil.example": false, "127.0.0.1:" + port: true, "localhost:" + port: true,
		"app.localhost": true, "dash.example:" + port: true, "DASH.example": true, "[::1]:" + port: true,
	} {
		want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[ok]
		if resp, body := dashReq(t, http.MethodGet, addr, "/", "", map[string]string{"Host": host}); resp.StatusCode != want {
			t.Errorf("GET / Host %s: HTTP %d %s, want %d", host, resp.StatusCode, body, want)
		}
		resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Host": host, "Origin": "http://" + host})
		if resp.StatusCode != want {
			t.Errorf("browser ListQueues Host %s: HTTP %d %s, want %d", host, resp.StatusCode, body, want)
		}
	}
	if resp, body := dashReq(t, http.MethodGet, addr, "/", "", map[string]string{"Host": "evil.example"}); !strings.Contains(body, "--dashboard-hosts") {
		t.Errorf("the refusal does not say how to allow the host: HTTP %d %q", resp.StatusCode, body)
	}
	if resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Host": "evil.example"}); resp.StatusCode != http.StatusOK {
		t.Errorf("CLI-style ListQueues (no Origin) with Host evil.example: HTTP %d %s", resp.StatusCode, body)
	}
	// A page of another site calling the tokenless server by its IP.
	if resp, body := connectCall(t, addr, "/chute.v1.AdminService/ListQueues", "{}", map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin ListQueues without tokens: HTTP %d %s, want 403", resp.StatusCode, body)
	}
}

// sseEvent is one event of the feed.
type sseEvent struct {
	name string
	data []byte
}

// readFeed opens the feed and returns its events; the channel closes when
// the stream ends.
func readFeed(t testing.TB, addr string, hdr map[string]string) <-chan sseEvent {
	t.Helper()
	resp := openFeed(t, addr, hdr)
	return scanFeed(resp.Body, resp.Body)
}

// openFeed opens the feed, reading nothing yet.
func openFeed(t testing.TB, addr string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/ui/api/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Accel-Buffering") != "no" {
		resp.Body.Close()
		t.Fatalf("feed: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return resp
}

// scanFeed reads the events of an open feed; the channel closes when the
// stream ends.
func scanFeed(r io.Reader, c io.Closer) <-chan sseEvent {
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer c.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case len(line) == 0:
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case bytes.HasPrefix(line, []byte("event: ")):
				ev.name = string(line[len("event: "):])
			case bytes.HasPrefix(line, []byte("data: ")):
				ev.data = append([]byte(nil), line[len("data: "):]...)
			}
		}
	}()
	return out
}

type feedRow struct {
	N          string
	R, D, F    int64
	PR, DR, AR float64
	DL         bool
	DLQ        string
	Pub, Ack   int64
	Pause      bool
	Brk        string
	C, P       int64
	Dead       int64
	Bytes      int64 `json:"b"`
}

type feedEventJSON struct {
	T       int64
	Queues  []feedRow
	Removed []string
	Topics  []struct {
		N    string
		Subs []struct{ N string }
	}
	Totals struct{ Queues, Topics int }
}

// nextEvent waits for the next event (the bound is a failure bound, not
// synchronisation).
func nextEvent(t *testing.T, events <-chan sseEvent) (string, feedEventJSON) {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the feed ended")
		}
		var e feedEventJSON
		if err := json.Unmarshal(ev.data, &e); err != nil {
			t.Fatalf("event %s: %v: %s", ev.name, err, ev.data)
		}
		return ev.name, e
	case <-time.After(20 * time.Second):
		t.Fatal("no feed event within 20s")
	}
	return "", feedEventJSON{}
}

func rowOf(e feedEventJSON, name string) (feedRow, bool) {
	for _, q := range e.Queues {
		if q.N == name {
			return q, true
		}
	}
	return feedRow{}, false
}

// TestDashboardFeed drives the hub with a fake clock: the first event is a
// snapshot holding a queue the test made; after a publish, a second on
// the clock yields a delta with the new depth and a publish rate; a
// deleted queue is "removed"; the history has samples; Shutdown ends the
// feed, and no goroutine is left.
func TestDashboardFeed(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	for _, q := range []string{"orders", "gone"} {
		if err := b.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CreateTopic(ctx, "events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, "events", "events.billing", chute.SubscriptionConfig{}); err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	clock := fakeclock.New()
	srv := server.New(b, dashOptions(server.Options{Clock: clock}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()

	events := readFeed(t, addr, nil)
	name, snap := nextEvent(t, events)
	orders, ok := rowOf(snap, "orders")
	if name != "snapshot" || !ok || orders.R != 0 || orders.DLQ != "orders.dlq" || orders.Brk != "closed" {
		t.Fatalf("first event %s: %+v", name, snap)
	}
	if dlq, ok := rowOf(snap, "orders.dlq"); !ok || !dlq.DL {
		t.Errorf("orders.dlq is not marked a dead-letter queue: %+v", dlq)
	}
	if snap.Totals.Queues != len(snap.Queues) || len(snap.Topics) != 1 || len(snap.Topics[0].Subs) != 1 || snap.Topics[0].Subs[0].N != "events.billing" {
		t.Errorf("snapshot totals and topics: %+v %+v", snap.Totals, snap.Topics)
	}
	if snap.T != clock.Now().UnixMilli() {
		t.Errorf("t %d, want the server clock's %d", snap.T, clock.Now().UnixMilli())
	}

	// tick advances the fake clock by a second once the hub waits for it
	// (its timer and the feed's ping timer are armed), and returns the
	// event that follows.
	tick := func() feedEventJSON {
		t.Helper()
		chutetest.Eventually(t, "the hub to wait", func() bool { return clock.Pending() >= 2 })
		clock.Advance(time.Second)
		name, e := nextEvent(t, events)
		if name != "delta" {
			t.Fatalf("event %s after a tick, want delta", name)
		}
		return e
	}
	if _, err := b.Publish(ctx, "orders", chute.Message{Body: []byte("a")}, chute.Message{Body: []byte("b")}, chute.Message{Body: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	d := tick()
	orders, ok = rowOf(d, "orders")
	if !ok || orders.R != 3 || orders.PR != 3 || orders.Pub != 3 {
		t.Fatalf("delta after 3 publishes: %+v", d)
	}
	if _, ok := rowOf(d, "gone"); ok {
		t.Errorf("an unchanged queue is in the delta: %+v", d.Queues)
	}
	d = tick() // no publish: the rate falls to 0
	if orders, ok := rowOf(d, "orders"); !ok || orders.PR != 0 || orders.R != 3 {
		t.Errorf("delta a second later: %+v", d.Queues)
	}

	if err := b.DeleteQueue(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	d = tick()
	if len(d.Removed) != 1 || d.Removed[0] != "gone" {
		t.Errorf("removed %q, want [gone]", d.Removed)
	}

	resp, body := dashReq(t, http.MethodGet, addr, "/ui/api/history?queue=orders", "", nil)
	var h struct {
		Step int64
		T    []int64
		R    []float64
		PR   []float64
		W99  []float64
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || resp.StatusCode != 200 || h.Step != 1000 || len(h.T) < 3 || len(h.R) != len(h.T) ||
		len(h.W99) != len(h.T) || h.R[len(h.R)-1] != 3 {
		t.Fatalf("history: HTTP %d %s %v", resp.StatusCode, body, err)
	}
	for i := 1; i < len(h.T); i++ {
		if h.T[i] <= h.T[i-1] {
			t.Fatalf("history times not increasing: %v", h.T)
		}
	}
	if resp, _ := dashReq(t, http.MethodGet, addr, "/ui/api/history?queue=gone", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("history of a deleted queue: HTTP %d, want 404", resp.StatusCode)
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	for range events { // Shutdown ends the feed: the channel closes
	}
}

// TestDashboardFeedLag: a page that stops reading while the hub ticks on
// falls behind; once more than feedBacklog events wait for it, its
// backlog is replaced by a snapshot, so it gets fewer events than there
// were ticks, a snapshot after the first, and the latest state at the end.
func TestDashboardFeedLag(t *testing.T) {
	const n = 500 // every row changes every tick: about 500 KB per event
	f := &fixedQueues{API: chutetest.MustOpen(t, "", nil), qs: make([]chute.QueueStats, n)}
	long := strings.Repeat("x", 800)
	for i := range f.qs {
		f.qs[i] = chute.QueueStats{Name: fmt.Sprintf("queue-%05d-%s", i, long)}
	}
	clock := &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, addr := startServer(t, f, dashOptions(server.Options{Clock: clock}))
	resp := openFeed(t, addr, nil)
	br := bufio.NewReader(resp.Body)
	for { // the first snapshot: the hub's tick for the new feed is over
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			break
		}
	}
	const ticks = 40 // 20 MB: more than the connection's buffers hold
	for range ticks {
		clock.advance(time.Second)
		for i := range f.qs {
			f.qs[i].Ready++
		}
		srv.TickDashboard()
	}
	last := clock.Now().UnixMilli()
	events := scanFeed(br, resp.Body)
	var got, snapshots int
	for {
		name, e := nextEvent(t, events)
		got++
		if name == "snapshot" {
			snapshots++
		}
		if got > ticks {
			t.Fatalf("%d events for %d ticks", got, ticks)
		}
		if e.T == last {
			if q, _ := rowOf(e, "queue-00000-"+long); name == "delta" && q.R != ticks {
				t.Errorf("last event: queue-00000 has r %d, want %d", q.R, ticks)
			}
			break
		}
	}
	t.Logf("%d ticks, %d events, %d snapshots", ticks, got, snapshots)
	if got >= ticks || snapshots < 1 {
		t.Errorf("%d ticks gave %d events, %d snapshots: want fewer events and a snapshot after the lag", ticks, got, snapshots)
	}
}

// TestDashboardFeedClientGone: a feed ends when its client goes: its ping
// timer stops, leaving only the hub's timer on the (fake) clock.
func TestDashboardFeedClientGone(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	clock := fakeclock.New()
	_, addr := startServer(t, b, dashOptions(server.Options{Clock: clock}))
	resp := openFeed(t, addr, nil)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "event: snapshot\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	chutetest.Eventually(t, "the hub and the feed to wait", func() bool { return clock.Pending() == 2 })
	resp.Body.Close()
	chutetest.Eventually(t, "the feed to end", func() bool { return clock.Pending() == 1 })
}

// TestDashboardFeedNeedsServe: a server used as a handler only (no Serve)
// has no hub; its feed says so instead of hanging.
func TestDashboardFeedNeedsServe(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, dashOptions(server.Options{}))
	defer srv.Shutdown(context.Background())
	req, _ := http.NewRequest(http.MethodGet, "/ui/api/feed", nil)
	req.Host = "127.0.0.1"
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("feed without Serve: HTTP %d", rec.Code)
	}
}
