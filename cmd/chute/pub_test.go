package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

func TestPubOneMessage(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	out := s.must("pub", "q", "hello", "--priority", "7", "--header", "a=b", "--header", "c=d=e",
		"--id", "m1", "--key", "k1", "--ttl", "1h")
	if out != "seq=1\n" {
		t.Fatalf("pub printed %q, want seq=1", out)
	}
	if out := s.must("pub", "q", "again", "--id", "m1"); out != "seq=1 duplicate\n" {
		t.Fatalf("pub of a seen ID printed %q", out)
	}
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := jsonLines[pubResultJSON](t, s.must("pub", "q", "--file", file, "--delay", "1h", "--json"))
	if len(res) != 1 || res[0].Seq != 2 || res[0].Duplicate {
		t.Fatalf("pub --file --json: %+v", res)
	}

	ds, err := s.b.Peek(context.Background(), "q", 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("peek: %v %+v", err, ds)
	}
	d := ds[0]
	if string(d.Body) != "hello" || d.Priority != 7 || d.ID != "m1" || d.Key != "k1" ||
		d.Headers["a"] != "b" || d.Headers["c"] != "d=e" || len(d.Headers) != 2 {
		t.Fatalf("published message: %+v", d)
	}
	if st := s.stats("q"); st.Delayed != 1 || st.DelayedBytes < int64(len("line 1\nline 2\n")) {
		t.Fatalf("the --file message (delayed 1h) is not held back whole: %+v", st)
	}
}

func TestPubStdinLines(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	var lines []string
	for i := 1; i <= 7; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	input := strings.Join(lines, "\n") + "\n"

	// No BODY and stdin not a terminal: one message per line, 3 per batch.
	out, errOut, err := s.runIn(strings.NewReader(input), "pub", "q", "--batch", "3", "--id", "run1", "--header", "src=stdin")
	if err != nil {
		t.Fatalf("pub from stdin: %v\n%s%s", err, out, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr is no terminal, yet pub wrote to it: %q", errOut)
	}
	var want strings.Builder
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&want, "seq=%d\n", i)
	}
	if out != want.String() {
		t.Fatalf("pub from stdin printed\n%s\nwant\n%s", out, want.String())
	}
	if st := s.stats("q"); st.Ready != 7 || st.Totals.Enqueued != 7 {
		t.Fatalf("after 7 lines: %+v", st)
	}

	// "-" reads stdin too; the same --id gives the same per-line IDs, so a
	// second run stores nothing again.
	out, _, err = s.runIn(strings.NewReader(input), "pub", "q", "-", "--id", "run1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	res := jsonLines[pubResultJSON](t, out)
	if len(res) != 7 {
		t.Fatalf("second run: %d results\n%s", len(res), out)
	}
	for i, r := range res {
		if !r.Duplicate || r.Seq != uint64(i+1) {
			t.Errorf("second run, line %d: %+v, want a duplicate of seq %d", i+1, r, i+1)
		}
	}

	ds, err := s.b.Receive(context.Background(), "q", chute.ReceiveOptions{Max: 10, Wait: -1})
	if err != nil || len(ds) != 7 {
		t.Fatalf("receive: %v, %d messages", err, len(ds))
	}
	for i, d := range ds {
		if string(d.Body) != lines[i] || d.ID != fmt.Sprintf("run1-%d", i+1) || d.Headers["src"] != "stdin" {
			t.Errorf("message %d: body %q id %q headers %v", i, d.Body, d.ID, d.Headers)
		}
	}
}

func TestPubStdinBatchFailure(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q", "--max-messages", "4")
	out, _, err := s.runIn(strings.NewReader("1\n2\n3\n4\n5\n6\n"), "pub", "q", "--batch", "3")
	if exitCode(err) != 5 || !strings.Contains(err.Error(), "lines 4-6") {
		t.Fatalf("publish past the limit: exit %d, %v", exitCode(err), err)
	}
	if out != "seq=1\nseq=2\nseq=3\n" {
		t.Fatalf("printed %q: want the first batch only", out)
	}
	if st := s.stats("q"); st.Ready != 3 {
		t.Fatalf("a failed batch stored part of itself: %d ready", st.Ready)
	}
	if !strings.Contains(err.Error(), "(3 line(s) before them published)") {
		t.Errorf("the error does not say how many lines were published: %v", err)
	}
	// The first batch fails: the error says that nothing was published.
	out, _, err = s.runIn(strings.NewReader("1\n2\n"), "pub", "nope")
	if exitCode(err) != 4 || out != "" || !strings.Contains(err.Error(), "publish lines 1-2 (0 line(s) before them published)") {
		t.Fatalf("lines to a missing queue: exit %d, %v\n%s", exitCode(err), err, out)
	}
}
