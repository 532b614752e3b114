package main

import (
	"strings"
	"testing"

	"github.com/chutemq/chute/server"
)

func TestDLQPeekRedrive(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q", "--max-deliveries", "1")
	s.must("queue", "create", "other")
	for _, body := range []string{"a", "b", "c"} {
		s.must("pub", "q", body)
	}
	// Each message has one delivery; sub --no-ack nacks them, so they die.
	s.must("sub", "q", "--no-ack", "--count", "3")
	if st := s.stats("q.dlq"); st.DeadLetters != 3 {
		t.Fatalf("q.dlq holds %d dead letters, want 3", st.DeadLetters)
	}

	out := s.must("dlq", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") { // q.dlq and other.dlq
		t.Fatalf("dlq ls:\n%s", out)
	}
	if f := strings.Fields(lines[2]); f[0] != "q.dlq" || f[1] != "3" || f[len(f)-1] != "q" {
		t.Fatalf("dlq ls row of q.dlq: %q", lines[2])
	}
	dl := parseJSON[[]dlqJSON](t, s.must("dlq", "ls", "--json"))
	if len(dl) != 2 || dl[1].Name != "q.dlq" || dl[1].DeadLetters != 3 || len(dl[1].Sources) != 1 || dl[1].Sources[0] != "q" {
		t.Fatalf("dlq ls --json: %+v", dl)
	}

	out = s.must("dlq", "peek", "q.dlq", "--max", "2")
	if strings.Count(out, "\n") != 2 || strings.Count(out, "source=q reason=max-deliveries deliveries=1") != 2 ||
		!strings.Contains(out, `body="a"`) {
		t.Fatalf("dlq peek:\n%s", out)
	}
	ds := jsonLines[deliveryJSON](t, s.must("dlq", "peek", "q.dlq", "--json"))
	if len(ds) != 3 || ds[0].DeadLetter == nil || ds[0].DeadLetter.Source != "q" ||
		ds[0].DeadLetter.Reason != "max-deliveries" || ds[0].DeadLetter.Died.IsZero() {
		t.Fatalf("dlq peek --json: %+v", ds)
	}
	if st := s.stats("q.dlq"); st.InFlight != 0 || st.DeadLetters != 3 {
		t.Fatalf("peek took dead letters: %+v", st)
	}

	if out := s.must("dlq", "redrive", "q.dlq", "--max", "1"); out != "redrove 1 dead letter(s) from q.dlq; 2 remain\n" {
		t.Fatalf("redrive --max 1 printed %q", out)
	}
	m := parseJSON[map[string]any](t, s.must("dlq", "redrive", "q.dlq", "--json"))
	if m["redriven"] != 2.0 || m["remaining"] != 0.0 {
		t.Fatalf("redrive --json: %v", m)
	}
	if st := s.stats("q"); st.Ready != 3 || st.Totals.Redriven != 3 {
		t.Fatalf("after redrive, q: %+v", st)
	}
	if out := s.must("sub", "q", "--count", "3"); strings.Count(out, "\n") != 3 {
		t.Fatalf("redriven messages not received:\n%s", out)
	}
	if out := s.must("dlq", "redrive", "q.dlq"); !strings.HasPrefix(out, "redrove 0 ") {
		t.Fatalf("redrive of an empty dlq printed %q", out)
	}
	s.wantExit(4, "dlq", "redrive", "nope")
}
