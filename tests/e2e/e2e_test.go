// Package e2e tests a real `chute serve` process from the outside: the
// chute.API conformance suite through the network client, bearer-token
// auth and the refusal to listen openly without one, graceful shutdown
// under load (nothing confirmed is lost, leases come back), the Connect
// JSON protocol with plain net/http, gRPC, and /healthz.
//
// The binary is built once per run from this module (with -race when the
// tests are), into a temporary directory. Every process listens at a free
// port on 127.0.0.1 (the --insecure check alone binds 0.0.0.0, and is
// reached through 127.0.0.1), and is killed if still running when its test
// ends; a data race reported by a server fails the test.
//
//	go test -race ./tests/e2e/
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/apitest"
	"github.com/chutemq/chute/internal/chutetest"
)

// binDir holds the chute binary built for this run.
var binDir string

// e2eVersion is stamped into the binary the way scripts/release.sh stamps
// a release.
const e2eVersion = "v0.0.0-e2e"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chute-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// binary builds cmd/chute once per run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: builds and runs the chute binary; skipped in -short mode")
	}
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build chute: %v", buildErr)
	}
	return buildPath
}

func build() (string, error) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	out, err := exec.Command(gocmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the chute module")
	}
	path := filepath.Join(binDir, "chute")
	args := []string{"build", "-o", path, "-ldflags", "-X github.com/chutemq/chute/internal/version.Version=" + e2eVersion}
	if raceEnabled() {
		args = append(args, "-race") // the server's races fail the test too
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gocmd, append(args, "./cmd/chute")...)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return path, nil
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// proc is one `chute serve` process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *output // stdout
	errOut *output // stderr
	addr   string  // 127.0.0.1:PORT, once listening
	exited chan struct{}
	err    error // cmd.Wait's result, once exited
}

// output collects a process's output and reports the listen line.
type output struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	listen chan string // receives the address once
	seen   bool
}

// listenLine is serve's log line (text format, on stderr) that says it is
// ready, and where.
var listenLine = regexp.MustCompile(`(?m)\bmsg="chute serving" addr=\w+://(\S+)`)

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if !o.seen && o.listen != nil {
		if m := listenLine.FindSubmatch(o.buf.Bytes()); m != nil {
			o.seen = true
			o.listen <- string(m[1])
		}
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// launch starts `chute serve args...` without waiting for it to listen.
// The process is killed when the test ends, if it is still running.
func launch(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, out: &output{}, errOut: &output{listen: make(chan string, 1)}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary(t), append([]string{"serve", "--log-level", "debug"}, args...)...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start chute: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if strings.Contains(p.errOut.String(), "DATA RACE") {
			t.Errorf("chute serve %s: data race:\n%s", strings.Join(args, " "), p.errOut)
		}
		if out := p.out.String(); out != "" {
			t.Errorf("chute serve %s printed on stdout (every line belongs in the log, on stderr):\n%s", strings.Join(args, " "), out)
		}
	})
	return p
}

// cleanEnv is this process's environment without CHUTE_ settings, which
// would reach the server's flags, and with a race-enabled binary's second
// of sleep at exit turned off.
func cleanEnv() []string {
	gorace := "atexit_sleep_ms=0"
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "CHUTE_"):
		case strings.HasPrefix(kv, "GORACE="):
			gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
		default:
			env = append(env, kv)
		}
	}
	return append(env, "GORACE="+gorace)
}

// start starts `chute serve` with args and waits until it listens.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := launch(t, args...)
	select {
	case addr := <-p.errOut.listen:
		p.listening(addr)
	case <-p.exited:
		t.Fatalf("chute serve %s exited before listening: %v\n%s", strings.Join(args, " "), p.err, p.errOut)
	case <-time.After(30 * time.Second):
		t.Fatalf("chute serve %s did not listen within 30s\n%s", strings.Join(args, " "), p.errOut)
	}
	return p
}

// listening records the address the server said it listens on (as
// 127.0.0.1:port, also for 0.0.0.0 or [::]).
func (p *proc) listening(addr string) {
	p.t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.t.Fatalf("chute listens on %q: %v", addr, err)
	}
	p.addr = net.JoinHostPort("127.0.0.1", port)
}

// startData starts a server on 127.0.0.1 with its journal in dir.
func startData(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return start(t, append([]string{"--listen", "127.0.0.1:0", "--data", dir}, args...)...)
}

// wait waits for the process to exit and returns its exit status.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("chute did not exit within %v\n%s", timeout, p.errOut)
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		p.t.Fatalf("wait for chute: %v", p.err)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop shuts the server down with SIGTERM and checks that it exits 0.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		p.t.Fatalf("chute exited %d after SIGTERM, want 0\n%s", code, p.errOut)
	}
}

// dial returns a client of the server, closed when the test ends.
func (p *proc) dial(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(p.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSuite runs the chute.API conformance suite through the client
// against one server process with its journal on disk (sync always); each
// check uses names of its own.
func TestSuite(t *testing.T) {
	p := startData(t, t.TempDir())
	apitest.Suite{
		Prefix: "e2e.",
		NewAPI: func(t *testing.T) chute.API { return p.dial(t) },
	}.Run(t)
	if !t.Failed() {
		p.stop()
	}
}

// TestAuth: with --token the server refuses calls without it; without a
// token it refuses to listen beyond loopback unless told --insecure.
func TestAuth(t *testing.T) {
	ctx := chutetest.Ctx(t)
	p := startData(t, t.TempDir(), "--token", "s3cret")
	refused := map[string]*client.Client{
		"no token":        p.dial(t),
		"a wrong token":   p.dial(t, client.WithToken("guess")),
		"gRPC, no token":  p.dial(t, client.WithProtocol(client.ProtocolGRPC)),
		"JSON, bad token": p.dial(t, client.WithJSON(), client.WithToken("s3cret ")),
	}
	for name, c := range refused {
		if _, err := c.Queues(ctx); !client.IsUnauthenticated(err) {
			t.Errorf("%s: queues: %v, want unauthenticated", name, err)
		}
		if _, err := c.Publish(ctx, "q", chute.Message{}); !client.IsUnauthenticated(err) {
			t.Errorf("%s: publish: %v, want unauthenticated", name, err)
		}
	}
	c := p.dial(t, client.WithToken("s3cret"))
	clients := append(slices.Collect(maps.Values(refused)), c)
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("hi")}); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if ds, err := c.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); err != nil || len(ds) != 1 {
		t.Fatalf("with the token: receive %d, %v", len(ds), err)
	}
	wantHealthy(t, p.addr) // /healthz needs no token
	closeAll(clients...)
	p.stop()

	// Not on every interface without a token: a usage error, exit 2.
	open := launch(t, "--listen", "0.0.0.0:0", "--data", t.TempDir())
	select {
	case addr := <-open.errOut.listen:
		t.Fatalf("listening on %s without a token", addr)
	case <-open.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("chute serve --listen 0.0.0.0:0 neither listened nor exited")
	}
	if code := open.wait(time.Second); code != 2 || !strings.Contains(open.errOut.String(), "token") {
		t.Fatalf("--listen 0.0.0.0:0 without a token: exit %d, want 2 and a word about the token; stderr:\n%s", code, open.errOut)
	}

	// With --insecure it does.
	insecure := start(t, "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--insecure")
	ic := insecure.dial(t)
	if _, err := ic.Queues(ctx); err != nil {
		t.Fatalf("--insecure: %v", err)
	}
	closeAll(ic)
	insecure.stop()
}

// TestVersion: the release stamped with -ldflags -X is what chute
// --version, chute version and the server (GetServerInfo) report.
func TestVersion(t *testing.T) {
	p := startData(t, t.TempDir())
	chute := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(binary(t), args...)
		cmd.Env = cleanEnv()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chute %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := chute("--version"); !strings.HasPrefix(string(out), "chute "+e2eVersion+" (") {
		t.Errorf("chute --version: %q", out)
	}
	var v struct {
		Client struct{ Version string }
		Server struct {
			Reachable bool
			Version   string
		}
	}
	out := chute("version", "--json", "--server", p.addr)
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("chute version --json: %v\n%s", err, out)
	}
	if v.Client.Version != e2eVersion || !v.Server.Reachable || v.Server.Version != e2eVersion {
		t.Errorf("chute version --json: %s", out)
	}
	p.stop()
}

// closeAll closes clients before their server stops, so that their idle
// connections do not hold its graceful shutdown up (HTTP/2 waits a second
// for a client to go after telling it to).
func closeAll(cs ...*client.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// TestIdleShutdown: a server that has served nothing stops cleanly on
// SIGTERM.
func TestIdleShutdown(t *testing.T) {
	p := startData(t, t.TempDir())
	p.stop()
}

// TestGracefulShutdown: SIGTERM while producers publish loses nothing that
// was confirmed; leases held at shutdown are ready again after a restart,
// their deliveries not counted;
// acked messages stay gone; the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	const publishers = 4
	ctx := chutetest.Ctx(t)
	dir := t.TempDir()
	p := startData(t, dir)
	c := p.dial(t)
	if err := c.CreateQueue(ctx, "g", chute.QueueConfig{VisibilityTimeout: time.Hour, MaxDeliveries: -1}); err != nil {
		t.Fatal(err)
	}
	var first []chute.Message
	for _, id := range []string{"held-0", "held-1", "held-2", "acked"} {
		first = append(first, chute.Message{ID: id, Body: []byte(id)})
	}
	if _, err := c.Publish(ctx, "g", first...); err != nil {
		t.Fatal(err)
	}
	held, err := c.Receive(ctx, "g", chute.ReceiveOptions{Max: 4, Wait: -1})
	if err != nil || len(held) != 4 || held[3].ID != "acked" {
		t.Fatalf("receive: %d, %v", len(held), err)
	}
	if err := c.Ack(ctx, "g", held[3].Receipt); err != nil {
		t.Fatal(err)
	}

	// Publishers, each on a connection of its own, publish with IDs until
	// the server goes away.
	var (
		mu        sync.Mutex
		attempted = map[string]bool{} // guarded by mu
		confirmed = map[string]bool{} // guarded by mu
		counts    [publishers]atomic.Int64
		lastErr   [publishers]error
		wg        sync.WaitGroup
	)
	for i := range publishers {
		pc := p.dial(t)
		wg.Go(func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("p%d-%d", i, n)
				mu.Lock()
				attempted[id] = true
				mu.Unlock()
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				res, err := pc.Publish(cctx, "g", chute.Message{ID: id, Body: []byte(id)})
				cancel()
				if err != nil {
					lastErr[i] = err
					return
				}
				if len(res) != 1 || res[0].Duplicate {
					t.Errorf("publish %s: %+v", id, res)
					return
				}
				mu.Lock()
				confirmed[id] = true
				mu.Unlock()
				counts[i].Add(1)
			}
		})
	}
	chutetest.Eventually(t, "every publisher confirmed 20 messages", func() bool {
		for i := range counts {
			if counts[i].Load() < 20 {
				return false
			}
		}
		return true
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan struct{})
	go func() { wg.Wait(); close(pubDone) }()
	select {
	case <-pubDone:
	case <-time.After(30 * time.Second):
		t.Fatal("publishers still running 30s after SIGTERM")
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\n%s", code, p.errOut)
	}
	for i, err := range lastErr {
		t.Logf("publisher %d: %d confirmed, then: %v", i, counts[i].Load(), err)
	}

	// Restart on the same journal: everything confirmed is there, once.
	p2 := startData(t, dir)
	c2 := p2.dial(t)
	s, err := c2.QueueStats(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 0 || s.Delayed != 0 {
		t.Fatalf("after restart: %d in flight, %d delayed; want every message ready", s.InFlight, s.Delayed)
	}
	got := map[string]chute.Delivery{}
	for {
		ds, err := c2.Receive(ctx, "g", chute.ReceiveOptions{Max: 1000, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if _, dup := got[d.ID]; dup {
				t.Errorf("%s stored twice", d.ID)
			}
			got[d.ID] = d
		}
	}
	if int64(len(got)) != s.Ready {
		t.Errorf("received %d messages, stats said %d ready", len(got), s.Ready)
	}
	for id := range confirmed {
		if _, ok := got[id]; !ok {
			t.Errorf("confirmed publish %s lost", id)
		}
	}
	for id, d := range got {
		switch {
		case strings.HasPrefix(id, "held-"):
			// A graceful shutdown hands leases back uncounted (issue 8
			// item 6): this is again the first delivery that counts.
			if d.Deliveries != 1 {
				t.Errorf("%s: leased at shutdown, now delivered with count %d, want 1", id, d.Deliveries)
			}
		case id == "acked":
			t.Errorf("acked message came back")
		case !attempted[id]:
			t.Errorf("message %q was never published", id)
		}
	}
	for _, d := range held[:3] {
		if _, ok := got[d.ID]; !ok {
			t.Errorf("%s, leased at shutdown, lost", d.ID)
		}
	}
	t.Logf("%d publishes confirmed, %d attempted, %d stored", len(confirmed), len(attempted), len(got)-3)
	p2.stop()
}

// TestProtocols: Connect JSON with plain net/http, gRPC and gRPC-Web
// through the client, and /healthz.
func TestProtocols(t *testing.T) {
	p := startData(t, t.TempDir())
	wantHealthy(t, p.addr)

	t.Run("connect-json", func(t *testing.T) {
		var empty map[string]any
		post(t, p.addr, "AdminService/CreateQueue",
			`{"name":"json-q","config":{"visibilityTimeout":"30s","maxDeliveries":3}}`, http.StatusOK, &empty)
		if len(empty) != 0 {
			t.Fatalf("create queue answered %v", empty)
		}

		body := base64.StdEncoding.EncodeToString([]byte("hello, json"))
		var pub struct {
			Results []struct {
				Seq       string `json:"seq"` // uint64: a string in protobuf JSON
				Duplicate bool   `json:"duplicate"`
			} `json:"results"`
		}
		msg := `{"target":"json-q","messages":[{"body":"` + body + `","headers":{"k":"v"},"priority":4,"id":"j-1"}]}`
		post(t, p.addr, "MessageService/Publish", msg, http.StatusOK, &pub)
		if len(pub.Results) != 1 || pub.Results[0].Duplicate {
			t.Fatalf("publish answered %+v", pub)
		}
		seq, err := strconv.ParseUint(pub.Results[0].Seq, 10, 64)
		if err != nil || seq == 0 {
			t.Fatalf("publish: seq %q", pub.Results[0].Seq)
		}
		post(t, p.addr, "MessageService/Publish", msg, http.StatusOK, &pub)
		if len(pub.Results) != 1 || !pub.Results[0].Duplicate || pub.Results[0].Seq != strconv.FormatUint(seq, 10) {
			t.Fatalf("publish again answered %+v, want a duplicate of %d", pub, seq)
		}

		var recv struct {
			Deliveries []struct {
				Queue         string            `json:"queue"`
				Seq           string            `json:"seq"`
				Receipt       string            `json:"receipt"`
				Body          []byte            `json:"body"` // base64, as encoding/json reads []byte
				Headers       map[string]string `json:"headers"`
				Priority      int               `json:"priority"`
				ID            string            `json:"id"`
				Published     time.Time         `json:"published"`
				Deliveries    int               `json:"deliveries"`
				LeaseDeadline time.Time         `json:"leaseDeadline"`
			} `json:"deliveries"`
		}
		before := time.Now()
		post(t, p.addr, "MessageService/Receive", `{"queue":"json-q","max":10}`, http.StatusOK, &recv)
		if len(recv.Deliveries) != 1 {
			t.Fatalf("receive answered %+v", recv)
		}
		d := recv.Deliveries[0]
		if d.Queue != "json-q" || d.Seq != pub.Results[0].Seq || d.Receipt == "" || string(d.Body) != "hello, json" ||
			d.Headers["k"] != "v" || d.Priority != 4 || d.ID != "j-1" || d.Deliveries != 1 ||
			d.Published.After(time.Now()) || d.LeaseDeadline.Before(before.Add(29*time.Second)) {
			t.Fatalf("delivery %+v", d)
		}

		var ack struct {
			Failed []any `json:"failed"`
		}
		post(t, p.addr, "MessageService/Ack", `{"queue":"json-q","receipts":["`+d.Receipt+`"]}`, http.StatusOK, &ack)
		if len(ack.Failed) != 0 {
			t.Fatalf("ack answered %+v", ack)
		}
		post(t, p.addr, "MessageService/Ack", `{"queue":"json-q","receipts":["`+d.Receipt+`"]}`, http.StatusOK, &ack)
		if len(ack.Failed) != 1 {
			t.Fatalf("second ack answered %+v, want one failure", ack)
		}

		var cerr struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		post(t, p.addr, "MessageService/Publish", `{"target":"missing","messages":[{}]}`, http.StatusNotFound, &cerr)
		if cerr.Code != "not_found" || cerr.Message == "" {
			t.Fatalf("publish to a missing queue answered %+v", cerr)
		}
		post(t, p.addr, "AdminService/CreateQueue", `{"name":"bad name"}`, http.StatusBadRequest, &cerr)
		if cerr.Code != "invalid_argument" {
			t.Fatalf("create queue with a bad name answered %+v", cerr)
		}
	})

	for name, proto := range map[string]client.Protocol{"grpc": client.ProtocolGRPC, "grpc-web": client.ProtocolGRPCWeb} {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			c := p.dial(t, client.WithProtocol(proto))
			q := name + "-q"
			if err := c.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			res, err := c.Publish(ctx, q, chute.Message{Body: []byte("hi"), Headers: map[string]string{"a": "b"}, Priority: 2})
			if err != nil || len(res) != 1 || res[0].Seq == 0 {
				t.Fatalf("publish: %+v, %v", res, err)
			}
			ds, err := c.Receive(ctx, q, chute.ReceiveOptions{Max: 5, Wait: time.Second})
			if err != nil || len(ds) != 1 || string(ds[0].Body) != "hi" || ds[0].Headers["a"] != "b" || ds[0].Priority != 2 {
				t.Fatalf("receive: %+v, %v", ds, err)
			}
			if err := c.Ack(ctx, q, ds[0].Receipt); err != nil {
				t.Fatal(err)
			}
			if err := c.Ack(ctx, q, ds[0].Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
				t.Fatalf("second ack: %v, want a stale receipt", err)
			}
			if _, err := c.Publish(ctx, "missing", chute.Message{}); !errors.Is(err, chute.ErrNotFound) {
				t.Fatalf("publish to a missing queue: %v", err)
			}
		})
	}
	p.stop()
}

// post sends a Connect unary call with a JSON body, checks the HTTP
// status and decodes the answer into out.
func post(t *testing.T, addr, method, body string, status int, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/chute.v1."+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read answer: %v", method, err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s: HTTP %d, want %d: %s", method, resp.StatusCode, status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: content type %q", method, ct)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: answer %s: %v", method, raw, err)
	}
}

// wantHealthy checks that GET /healthz answers 200 with status ok and the
// version the binary was built with.
func wantHealthy(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: HTTP %d: %s", resp.StatusCode, raw)
	}
	var h struct{ Status, Version string }
	if err := json.Unmarshal(raw, &h); err != nil || h.Status != "ok" || h.Version != e2eVersion {
		t.Fatalf("healthz: %s (%v), want status ok and version %s", raw, err, e2eVersion)
	}
}
