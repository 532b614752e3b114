package main

import (
	"strconv"
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
	// Before anything died: the dead-letter queues exist (created with
	// their queues) but dlq ls leaves them out, and says so when that
	// leaves nothing; peek says there is nothing.
	out, errOut, err := s.runIn(strings.NewReader(""), "dlq", "ls")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(errOut, "2 empty dead-letter queue(s) not shown") {
		t.Fatalf("dlq ls before any death: %v\n%s%s", err, out, errOut)
	}
	if dl := parseJSON[[]dlqJSON](t, s.must("dlq", "ls", "--all", "--json")); len(dl) != 2 || dl[0].OldestAge != nil {
		t.Fatalf("dlq ls --all --json: %+v", dl)
	}
	out, errOut, err = s.runIn(strings.NewReader(""), "dlq", "peek", "q.dlq")
	if err != nil || out != "" || errOut != "no dead letters in q.dlq\n" {
		t.Fatalf("dlq peek of an empty dead-letter queue: %v, stdout %q, stderr %q", err, out, errOut)
	}

	// Each message has one delivery; nacked, they die.
	out, errOut, err = s.runIn(strings.NewReader(s.must("sub", "q", "--no-ack", "--count", "3", "--json")),
		"nack", "q", "--now", "--error", "bad input")
	if err != nil || out != "nacked 3 message(s) on q\n" {
		t.Fatalf("nack of the receipts of sub --no-ack --json: %v\n%s%s", err, out, errOut)
	}
	if st := s.stats("q.dlq"); st.DeadLetters != 3 {
		t.Fatalf("q.dlq holds %d dead letters, want 3", st.DeadLetters)
	}

	out = s.must("dlq", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") { // q.dlq (other.dlq: nothing died)
		t.Fatalf("dlq ls:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "q.dlq" || f[1] != "3" || f[len(f)-1] != "q" {
		t.Fatalf("dlq ls row of q.dlq: %q", lines[1])
	}
	dl := parseJSON[[]dlqJSON](t, s.must("dlq", "ls", "--all", "--json"))
	if len(dl) != 2 || dl[1].Name != "q.dlq" || dl[1].DeadLetters != 3 || len(dl[1].Sources) != 1 || dl[1].Sources[0] != "q" ||
		dl[1].OldestAge == nil || dl[0].Name != "other.dlq" || dl[0].OldestAge != nil {
		t.Fatalf("dlq ls --all --json: %+v", dl)
	}
	if _, err := parseDuration(*dl[1].OldestAge); err != nil {
		t.Errorf("oldest_age %q: %v", *dl[1].OldestAge, err)
	}

	out = s.must("dlq", "peek", "q.dlq", "--count", "2")
	if strings.Count(out, "\n") != 2 || strings.Count(out, `source=q reason=max-deliveries deliveries=1 died=`) != 2 ||
		strings.Count(out, `error="bad input"`) != 2 || !strings.Contains(out, `body="a"`) {
		t.Fatalf("dlq peek:\n%s", out)
	}
	// (cobra warns on its output stream, which is stderr unless set, as
	// here.)
	if out, errOut, err := s.runIn(strings.NewReader(""), "dlq", "peek", "q.dlq", "--max", "1"); err != nil ||
		strings.Count(out, "seq=") != 1 || !strings.Contains(out+errOut, "use --count") {
		t.Fatalf("dlq peek --max (deprecated): %v\n%s%s", err, out, errOut)
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

	// A queue that is no dead-letter queue is refused (5), with the
	// broker's reason and no "moved before" noise.
	_, err = s.run("dlq", "redrive", "other")
	if exitCode(err) != 5 || !strings.Contains(err.Error(), "is not a dead-letter queue") || strings.Contains(err.Error(), "moved") {
		t.Fatalf("redrive of a plain queue: exit %d, %v", exitCode(err), err)
	}
}

// TestDLQRedriveChosen: dlq redrive DLQ SEQ|ID... moves just those dead
// letters and says, line by line, what happened to each.
func TestDLQRedriveChosen(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q", "--max-deliveries", "1", "--max-messages", "1")
	var dead []string
	for _, body := range []string{"a", "b", "c"} {
		seq := jsonLines[pubResultJSON](t, s.must("pub", "q", body, "--json"))[0].Seq
		if _, errOut, err := s.runIn(strings.NewReader(s.must("sub", "q", "--no-ack", "--count", "1", "--json")), "nack", "q", "--now"); err != nil {
			t.Fatalf("nack: %v\n%s", err, errOut)
		}
		m := parseJSON[messageJSON](t, s.must("msg", "get", "q", strconv.FormatUint(seq, 10), "--json"))
		if m.State != "dead-lettered" || m.MovedSeq == 0 {
			t.Fatalf("%s after its nack: %+v", body, m)
		}
		dead = append(dead, strconv.FormatUint(m.MovedSeq, 10))
	}
	da, db, dc := dead[0], dead[1], dead[2]
	s.must("sub", "q.dlq", "--no-ack", "--count", "1") // a's dead letter: in flight

	out, err := s.run("dlq", "redrive", "q.dlq", db, da, dc, "999")
	if code := exitCode(err); code != 5 {
		t.Fatalf("redrive with an in-flight dead letter: exit %d (%v)\n%s", code, err, out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"redriven seq " + db + " to q (seq ",
		"not redriven seq " + da + ": in flight (only ready and delayed dead letters can be redriven)",
		"not redriven seq " + dc + ": its source queue q is full",
		"not redriven seq 999: not found",
	}
	if len(lines) != len(want) {
		t.Fatalf("redrive printed\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("redrive line %d: %q, want %q…", i, lines[i], w)
		}
	}
	if st := s.stats("q"); st.Ready != 1 || st.Totals.Redriven != 1 {
		t.Fatalf("after redrive, q: %+v", st)
	}
	if out := s.must("msg", "get", "q.dlq", db); !strings.Contains(out, "state:          redriven\n") {
		t.Fatalf("msg get of the redriven dead letter:\n%s", out)
	}

	// --json: one element per ref; the full source decides the exit status.
	out, err = s.run("dlq", "redrive", "q.dlq", dc, "--json")
	if code := exitCode(err); code != 5 {
		t.Fatalf("redrive into a full queue: exit %d (%v)", code, err)
	}
	if rs := parseJSON[[]redriveJSON](t, out); len(rs) != 1 || rs[0].Redriven || rs[0].Queue != "q" ||
		rs[0].State != "ready" || !strings.Contains(rs[0].Error, "full") {
		t.Fatalf("redrive --json: %+v", rs)
	}
	s.must("sub", "q", "--count", "1") // room again
	if rs := parseJSON[[]redriveJSON](t, s.must("dlq", "redrive", "q.dlq", dc, "--json")); len(rs) != 1 || !rs[0].Redriven || rs[0].NewSeq == 0 {
		t.Fatalf("redrive --json: %+v", rs)
	}
	s.wantExit(2, "dlq", "redrive", "q.dlq", da, "--max", "1")
	s.wantExit(4, "dlq", "redrive", "nope", "1")
}
