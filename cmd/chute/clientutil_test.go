package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// testServer is an in-memory broker behind a server on 127.0.0.1, with the
// CLI pointed at it.
type testServer struct {
	t    *testing.T
	b    *broker.Broker
	addr string
}

// startCLIServer serves a fresh in-memory broker. The environment cannot
// point the CLI elsewhere: CHUTE_SERVER, CHUTE_TOKEN and CHUTE_TLS_CA are
// cleared.
func startCLIServer(t *testing.T, opts server.Options) *testServer {
	t.Helper()
	clearClientEnv(t)
	b := chutetest.MustOpen(t, "", nil)
	return &testServer{t: t, b: b, addr: chutetest.StartServer(t, b, opts)}
}

func clearClientEnv(t *testing.T) {
	for _, v := range []string{"CHUTE_SERVER", "CHUTE_TOKEN", "CHUTE_TLS_CA"} {
		t.Setenv(v, "")
	}
}

// startTLSServer serves a fresh in-memory broker over TLS with a
// self-signed certificate for 127.0.0.1, and returns the server (addr is
// host:port) and the certificate's PEM file.
func startTLSServer(t *testing.T) (*testServer, string) {
	t.Helper()
	clearClientEnv(t)
	certFile, keyFile, _ := chutetest.SelfSignedCert(t)
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, server.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, certFile, keyFile) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve TLS: %v", err)
		}
	})
	return &testServer{t: t, b: b, addr: ln.Addr().String()}, certFile
}

// pretendTerminal makes isTerminal true for w alone until the test ends.
func pretendTerminal(t *testing.T, w any) {
	old := isTerminal
	isTerminal = func(v any) bool { return v == w }
	t.Cleanup(func() { isTerminal = old })
}

// run runs the CLI with args against the server; stdin is empty.
func (s *testServer) run(args ...string) (string, error) {
	s.t.Helper()
	out, _, err := s.runIn(strings.NewReader(""), args...)
	return out, err
}

// runIn runs the CLI with stdin in and returns stdout and stderr apart.
func (s *testServer) runIn(in io.Reader, args ...string) (stdout, stderr string, err error) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	err = s.runWith(in, &out, &errOut, append(args, "--server", s.addr)...)
	return out.String(), errOut.String(), err
}

// runWith runs the CLI with args as they are (no --server added) on the
// given streams.
func (s *testServer) runWith(in io.Reader, out, errOut io.Writer, args ...string) error {
	s.t.Helper()
	root := newRootCmd()
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(args)
	return root.ExecuteContext(chutetest.Ctx(s.t))
}

// must runs the CLI and fails the test if the command fails.
func (s *testServer) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("chute %s: %v (exit %d)\n%s", strings.Join(args, " "), err, exitCode(err), out)
	}
	return out
}

// wantExit runs the CLI and checks its exit status.
func (s *testServer) wantExit(code int, args ...string) {
	s.t.Helper()
	out, err := s.run(args...)
	if got := exitCode(err); got != code {
		s.t.Errorf("chute %s: exit %d, want %d (err: %v)\n%s", strings.Join(args, " "), got, code, err, out)
	}
}

// stats returns a queue's stats straight from the broker.
func (s *testServer) stats(queue string) chute.QueueStats {
	s.t.Helper()
	st, err := s.b.QueueStats(context.Background(), queue)
	if err != nil {
		s.t.Fatalf("stats of %s: %v", queue, err)
	}
	return st
}

// jsonLines parses output of one JSON object per line.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// parseJSON parses a whole output as one JSON value.
func parseJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out)
	}
	return v
}

func TestClientExitCodes(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	// Not found: 4.
	s.wantExit(4, "queue", "stat", "nope")
	s.wantExit(4, "pub", "nope", "x")
	s.wantExit(4, "sub", "nope", "--count", "1")
	s.wantExit(4, "dlq", "peek", "nope")

	// Refused: 5 (a full queue, a name in use).
	s.must("queue", "create", "small", "--max-messages", "1")
	s.must("pub", "small", "one")
	s.wantExit(5, "pub", "small", "two")
	s.wantExit(5, "queue", "create", "small")
	if st := s.stats("small"); st.Ready != 1 {
		t.Errorf("full queue holds %d messages, want 1", st.Ready)
	}

	// Bad command lines: 2.
	for _, args := range [][]string{
		{"pub", "small", "x", "--header", "novalue"},
		{"pub", "small", "x", "--delay", "5"},
		{"pub", "small", "x", "--priority", "10"},
		{"pub", "small", "x", "--file", "f"},
		{"sub"},
		{"sub", "small", "--wait", "soon"},
		{"queue"},
		{"queue", "frob"},
		{"queue", "create", "q2", "--backoff", "linear"},
		{"queue", "create", "q2", "--overflow", "spill"},
		{"queue", "create", "q2", "--visibility", "abc"},
		{"queue", "create", "q2", "--jitter", "2"},
		{"queue", "create", "q2", "--dlq", "x", "--no-dlq"},
		{"queue", "update", "small"},
		{"subscription", "create", "t", "s", "--filter", "=v"},
		{"topic", "create", "t", "--dedup-window", "-1s"},
		{"dlq", "redrive", "small.dlq", "--max", "-1"},
	} {
		s.wantExit(2, args...)
	}
	if _, err := s.b.QueueStats(context.Background(), "q2"); err == nil {
		t.Error("a bad command line created queue q2")
	}

	// Unauthorised: 7.
	locked := startCLIServer(t, server.Options{Token: "s3cret"})
	locked.wantExit(7, "queue", "ls")
	locked.wantExit(7, "queue", "ls", "--token", "wrong")
	locked.wantExit(0, "queue", "ls", "--token", "s3cret")
	t.Setenv("CHUTE_TOKEN", "s3cret")
	locked.wantExit(0, "queue", "ls")

	// Unreachable: 6 (a port on 127.0.0.1 that nothing listens on).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	gone := &testServer{t: t, addr: closed}
	gone.wantExit(6, "queue", "ls")
	gone.wantExit(6, "pub", "q", "x")
	for _, addr := range []string{"no-port", "ftp://127.0.0.1:1", "https://", "http://127.0.0.1:1/some/path"} {
		bad := &testServer{t: t, addr: addr}
		bad.wantExit(2, "queue", "ls")
	}

	// Refused receipts: 5, for stale and malformed ones alike.
	s.must("queue", "create", "r")
	s.must("pub", "r", "m")
	d := jsonLines[deliveryJSON](t, s.must("sub", "r", "--no-ack", "--count", "1", "--json"))[0]
	s.must("ack", "r", d.Receipt)
	s.wantExit(5, "ack", "r", d.Receipt)
	s.wantExit(5, "ack", "r", "not-a-receipt")
	s.wantExit(5, "extend", "r", "not-a-receipt")

	// Fewer messages than --count before --wait: 9; without --count, or
	// with all of them, 0.
	s.wantExit(9, "sub", "r", "--count", "1", "--wait", "10ms")
	s.wantExit(0, "sub", "r", "--wait", "10ms")
	s.must("pub", "r", "m2")
	s.wantExit(9, "sub", "r", "--count", "2", "--wait", "10ms")
}

func TestExitCodeList(t *testing.T) {
	// Every status the comment on clientExitCode and README promise comes
	// from one kind of error; a wrapped error keeps its status.
	for want, err := range map[int]error{
		1: errors.New("something else"),
		2: usageError{errors.New("bad flag")},
		3: errCorrupt,
		4: chute.ErrQueueNotFound,
		5: chute.ErrInvalidReceipt,
		8: context.DeadlineExceeded,
		9: &shortReceiveError{queue: "q", want: 1, wait: time.Second},
	} {
		if got := exitCode(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestTLS(t *testing.T) {
	s, ca := startTLSServer(t)
	hostport := s.addr

	// host:port against a TLS server: a usage error that says what to do,
	// instead of "unexpected EOF".
	_, err := s.run("queue", "ls")
	if exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "the server speaks TLS: use https://"+hostport+" or --tls-ca") {
		t.Fatalf("plain client, TLS server: exit %d, %v", exitCode(err), err)
	}
	// https:// with the system's CAs does not trust a self-signed
	// certificate: say how to give it.
	s.addr = "https://" + hostport
	_, err = s.run("queue", "ls")
	if exitCode(err) != 6 || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("untrusted certificate: exit %d, %v", exitCode(err), err)
	}

	// Trusted through --tls-ca, with https:// or without a scheme (the CA
	// implies TLS), or through $CHUTE_TLS_CA.
	s.must("queue", "create", "q", "--tls-ca", ca)
	s.addr = hostport
	s.must("pub", "q", "over TLS", "--tls-ca", ca)
	t.Setenv("CHUTE_TLS_CA", ca)
	if out := s.must("sub", "q", "--count", "1"); !strings.Contains(out, `body="over TLS"`) {
		t.Fatalf("sub over TLS printed %q", out)
	}
	// An explicit http:// means plain HTTP whatever $CHUTE_TLS_CA says
	// (here: the server speaks TLS, say so), and contradicts --tls-ca.
	s.addr = "http://" + hostport
	_, err = s.run("queue", "ls")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "the server speaks TLS: use https://"+hostport+" (") {
		t.Fatalf("http:// to a TLS server: exit %d, %v", exitCode(err), err)
	}
	s.wantExit(2, "queue", "ls", "--tls-ca", ca)
	t.Setenv("CHUTE_TLS_CA", "")

	// --tls-insecure-skip-verify: TLS without checking, said once on stderr.
	s.addr = hostport
	out, errOut, err := s.runIn(strings.NewReader(""), "queue", "ls", "--tls-insecure-skip-verify")
	if err != nil || !strings.Contains(out, "q") {
		t.Fatalf("--tls-insecure-skip-verify: %v\n%s", err, out)
	}
	if n := strings.Count(errOut, "--tls-insecure-skip-verify"); n != 1 {
		t.Fatalf("the warning shows %d times on stderr:\n%s", n, errOut)
	}

	// A CA file that is missing or holds no certificate: usage.
	s.wantExit(2, "queue", "ls", "--tls-ca", filepath.Join(t.TempDir(), "missing.pem"))
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.wantExit(2, "queue", "ls", "--tls-ca", notPEM)

	// TLS asked of a plain server: a usage error that says so.
	plain := startCLIServer(t, server.Options{})
	plain.addr = "https://" + plain.addr
	_, err = plain.run("queue", "ls", "--tls-ca", ca)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("TLS client, plain server: exit %d, %v", exitCode(err), err)
	}
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true, 10, "testing", "msgs", false)
	if p != nil {
		t.Fatal("a progress bar on a buffer, which is no terminal")
	}
	p.add(5) // a nil progress does nothing
	p.clear()
	p.done()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q", buf.String())
	}
}

// TestServerList: --server names several nodes; the client starts with
// the first and moves on when it cannot connect (a port nobody listens
// on), and a bad address anywhere in the list is a usage error.
func TestServerList(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // refuses connections from now on
	out, err := runCLI(t, "queue", "create", "q", "--server", dead+", "+s.addr)
	if err != nil {
		t.Fatalf("queue create through %s then %s: %v\n%s", dead, s.addr, err, out)
	}
	if _, err := s.b.QueueStats(context.Background(), "q"); err != nil {
		t.Fatalf("the queue did not reach the second endpoint: %v", err)
	}
	if out, err := runCLI(t, "queue", "list", "--server", s.addr+",nonsense"); exitCode(err) != 2 {
		t.Fatalf("a bad address in the list: exit %d, %v\n%s", exitCode(err), err, out)
	}
}

// TestExplainCanceledReset: a plain call to a TLS listener that connect
// reports as Canceled with the listener's reset inside (seen once in CI)
// is explained as the TLS mismatch it is; a Canceled without a reset (an
// interrupt) is left alone.
func TestExplainCanceledReset(t *testing.T) {
	s, _ := startTLSServer(t)
	f := &clientFlags{target: serverAddr{hostport: s.addr, scheme: "http"}}
	reset := connect.NewError(connect.CodeCanceled, fmt.Errorf("context canceled: Post %q: read: %w", "http://"+s.addr, syscall.ECONNRESET))
	if err := f.explain(reset); !strings.Contains(fmt.Sprint(err), "the server speaks TLS: use https://"+s.addr+" (") {
		t.Fatalf("Canceled with a reset from a TLS listener: %v", err)
	}
	interrupted := connect.NewError(connect.CodeCanceled, context.Canceled)
	if err := f.explain(interrupted); err != interrupted {
		t.Fatalf("an interrupt explained: %v", err)
	}
}
