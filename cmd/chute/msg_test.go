package main

import (
	"strings"
	"testing"

	"github.com/chutemq/chute/server"
)

func TestMsgGetRm(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	s.must("pub", "q", "a", "--id", "order-1", "--priority", "3")
	s.must("pub", "q", "b")
	s.must("pub", "q", "c", "--delay", "1h")
	s.must("pub", "q", "d", "--id", "42")

	out := s.must("msg", "get", "q", "1")
	for _, want := range []string{"seq:            1\n", "state:          ready\n", "priority:       3\n", "deliveries:     0\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("msg get q 1: no %q in\n%s", want, out)
		}
	}
	if out := s.must("msg", "get", "q", "order-1"); !strings.Contains(out, `id:             "order-1"`) || !strings.Contains(out, "seq:            1\n") {
		t.Fatalf("msg get by ID:\n%s", out)
	}
	if out := s.must("msg", "get", "q", "42", "--id"); !strings.Contains(out, "seq:            4\n") {
		t.Fatalf("msg get --id 42:\n%s", out)
	}
	m := parseJSON[messageJSON](t, s.must("msg", "get", "q", "3", "--json"))
	if m.State != "delayed" || m.DeliverAt == nil || m.Seq != 3 {
		t.Fatalf("msg get --json of a delayed message: %+v", m)
	}
	s.wantExit(4, "msg", "get", "q", "99")
	s.wantExit(4, "msg", "get", "q", "no-such-id")
	s.wantExit(4, "msg", "get", "nope", "1")
	s.wantExit(2, "msg", "get", "q")

	// a is received: in flight, so rm refuses it; b and c go; 99 is unknown.
	s.must("sub", "q", "--no-ack", "--count", "1")
	if out := s.must("msg", "get", "q", "1"); !strings.Contains(out, "state:          in-flight\n") || !strings.Contains(out, "lease deadline:") {
		t.Fatalf("msg get of an in-flight message:\n%s", out)
	}
	out, err := s.run("msg", "rm", "q", "order-1", "2", "3", "99")
	if code := exitCode(err); code != 5 {
		t.Fatalf("msg rm with an in-flight message: exit %d (%v)\n%s", code, err, out)
	}
	want := `not cancelled id "order-1" (seq 1): in flight (only ready and delayed messages can be cancelled)
cancelled seq 2
cancelled seq 3
not cancelled seq 99: not found
`
	if out != want {
		t.Fatalf("msg rm printed\n%s\nwant\n%s", out, want)
	}
	if st := s.stats("q"); st.Totals.Cancelled != 2 || st.Depth() != 2 {
		t.Fatalf("after rm: %+v", st)
	}
	if out := s.must("msg", "get", "q", "2"); !strings.Contains(out, "state:          cancelled\n") || !strings.Contains(out, "settled:") {
		t.Fatalf("msg get of a cancelled message:\n%s", out)
	}
	rs := parseJSON[[]cancelJSON](t, s.must("msg", "rm", "q", "4", "--json"))
	if len(rs) != 1 || !rs[0].Cancelled || rs[0].Seq != 4 {
		t.Fatalf("msg rm --json: %+v", rs)
	}
	out, err = s.run("msg", "rm", "q", "2")
	if exitCode(err) != 4 || out != "not cancelled seq 2: already cancelled\n" {
		t.Fatalf("msg rm of a cancelled message: %v\n%s", err, out)
	}

	// A queue that remembers nothing once a message has left.
	s.must("queue", "create", "forget", "--settled-window", "none", "--max-settled", "5")
	if st := s.stats("forget"); st.Config.SettledWindow != -1 || st.Config.MaxSettled != 5 {
		t.Fatalf("--settled-window none --max-settled 5: %+v", st.Config)
	}
	s.must("pub", "forget", "x") // seq 5: sequences are the broker's
	s.must("msg", "rm", "forget", "5")
	s.wantExit(4, "msg", "get", "forget", "5")
}
