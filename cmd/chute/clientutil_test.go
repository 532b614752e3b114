package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/chutemq/chute/broker"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/chutemq/chute"
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
// point the CLI elsewhere: CHUTE_SERVER and CHUTE_TOKEN are cleared.
func startCLIServer(t *testing.T, opts server.Options) *testServer {
	t.Helper()
	t.Setenv("CHUTE_SERVER", "")
	t.Setenv("CHUTE_TOKEN", "")
	b := chutetest.MustOpen(t, "", nil)
	return &testServer{t: t, b: b, addr: chutetest.StartServer(t, b, opts)}
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
	root := newRootCmd()
	root.SetIn(in)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--server", s.addr))
	err = root.ExecuteContext(chutetest.Ctx(s.t))
	return out.String(), errOut.String(), err
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
	bad := &testServer{t: t, addr: "no-port"}
	bad.wantExit(2, "queue", "ls")
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
