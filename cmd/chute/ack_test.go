package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// leased publishes n messages to a new queue and returns their receipts,
// leased for an hour.
func leased(t *testing.T, s *testServer, queue string, n int) []string {
	t.Helper()
	s.must("queue", "create", queue)
	for i := range n {
		s.must("pub", queue, fmt.Sprint("m", i))
	}
	ds, err := s.b.Receive(context.Background(), queue, chute.ReceiveOptions{Max: n, Lease: time.Hour, Wait: -1})
	if err != nil || len(ds) != n {
		t.Fatalf("receive: %v, %d of %d", err, len(ds), n)
	}
	rs := make([]string, n)
	for i, d := range ds {
		rs[i] = d.Receipt
	}
	return rs
}

func TestAck(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	rs := leased(t, s, "q", 4)
	if out := s.must("ack", "q", rs[0], rs[1]); out != "acked 2 message(s) on q\n" {
		t.Fatalf("ack printed %q", out)
	}
	// From stdin, one per line, blank lines skipped; a spent receipt fails
	// alone (the others are acked), and the status says refused.
	out, _, err := s.runIn(strings.NewReader(rs[2]+"\n\n"+rs[0]+"\n"+rs[3]+"\n"), "ack", "q")
	if exitCode(err) != 5 || out != "acked 2 of 3 message(s) on q\n" || !strings.Contains(err.Error(), "#1 "+rs[0]) {
		t.Fatalf("ack with a stale receipt: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if st := s.stats("q"); st.Depth() != 0 || st.Totals.Acked != 4 {
		t.Fatalf("after ack: %+v", st)
	}
	// --json: one result object, failures listed.
	out, _, err = s.runIn(strings.NewReader(""), "ack", "q", rs[1], "--json")
	res := parseJSON[settleJSON](t, out)
	if exitCode(err) != 5 || res.Queue != "q" || res.Op != "ack" || res.OK != 0 || len(res.Failed) != 1 ||
		res.Failed[0].Receipt != rs[1] || !strings.Contains(res.Failed[0].Error, "stale") {
		t.Fatalf("ack --json: exit %d, %+v", exitCode(err), res)
	}
	// Nothing on stdin: nothing to do.
	if out := s.must("ack", "q"); out != "acked 0 message(s) on q\n" {
		t.Fatalf("ack of empty stdin printed %q", out)
	}
	s.wantExit(4, "ack", "nope", rs[0])
	s.wantExit(2, "ack")
	// A terminal on stdin: say how to give receipts instead of waiting.
	in := strings.NewReader("")
	pretendTerminal(t, in)
	_, _, err = s.runIn(in, "ack", "q")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "no receipts") {
		t.Fatalf("ack with a terminal on stdin: exit %d, %v", exitCode(err), err)
	}
}

func TestAckJSONLines(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	s.must("queue", "create", "other")
	s.must("pub", "q", "a")
	s.must("pub", "q", "b")
	lines := s.must("sub", "q", "--no-ack", "--count", "2", "--json")
	out, _, err := s.runIn(strings.NewReader(lines), "ack", "q")
	if err != nil || out != "acked 2 message(s) on q\n" {
		t.Fatalf("ack of sub --json lines: %v\n%s", err, out)
	}
	// Lines of another queue, or JSON without a receipt: usage.
	s.must("pub", "q", "c")
	lines = s.must("sub", "q", "--no-ack", "--count", "1", "--json")
	for _, in := range []string{lines, `{"seq":1}` + "\n"} {
		if _, _, err := s.runIn(strings.NewReader(in), "ack", "other"); exitCode(err) != 2 {
			t.Errorf("ack other < %q: exit %d, %v", in, exitCode(err), err)
		}
	}
}

func TestNack(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	rs := leased(t, s, "q", 3)
	// --delay holds the message back, --now returns it at once, and by
	// default the queue's back-off applies (a delay too).
	if out := s.must("nack", "q", rs[0], "--delay", "1h", "--error", "later"); out != "nacked 1 message(s) on q\n" {
		t.Fatalf("nack printed %q", out)
	}
	s.must("nack", "q", rs[1], "--now")
	s.must("nack", "q", rs[2])
	st := s.stats("q")
	if st.Ready != 1 || st.Delayed != 2 || st.InFlight != 0 || st.Totals.Nacked != 3 {
		t.Fatalf("after nacks: %+v", st)
	}
	ds := jsonLines[deliveryJSON](t, s.must("sub", "q", "--count", "1", "--json"))
	if len(ds) != 1 || *ds[0].Body != "m1" || ds[0].Deliveries != 2 {
		t.Fatalf("the message nacked --now: %+v", ds)
	}
	s.wantExit(2, "nack", "q", rs[0], "--now", "--delay", "1s")
	s.wantExit(2, "nack", "q", rs[0], "--delay", "soon")
	s.wantExit(5, "nack", "q", rs[0], "--now") // spent
}

func TestExtend(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q", "--visibility", "1m")
	s.must("pub", "q", "a")
	d := jsonLines[deliveryJSON](t, s.must("sub", "q", "--no-ack", "--count", "1", "--json"))[0]
	if until := time.Until(*d.LeaseDeadline); until > time.Minute {
		t.Fatalf("lease ends in %v, want the 1m visibility", until)
	}
	if out := s.must("extend", "q", d.Receipt, "--lease", "2h"); out != "extended 1 lease(s) on q\n" {
		t.Fatalf("extend printed %q", out)
	}
	s.must("ack", "q", d.Receipt) // the receipt stays good
	s.wantExit(5, "extend", "q", d.Receipt)
	s.wantExit(2, "extend", "q", d.Receipt, "--lease", "-1s")

	// The lease moves: held for an hour, then extended to 1ms, the message
	// is soon ready again.
	s.must("pub", "q", "b")
	d = jsonLines[deliveryJSON](t, s.must("sub", "q", "--no-ack", "--count", "1", "--lease", "1h", "--json"))[0]
	s.must("extend", "q", d.Receipt, "--lease", "1ms")
	chutetest.Eventually(t, "the message whose lease was cut to 1ms is ready", func() bool { return s.stats("q").Ready == 1 })
}
