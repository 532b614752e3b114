package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

func TestPubSubRoundTrip(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	s.must("pub", "q", "first, low")
	s.must("pub", "q", "second, urgent", "--priority", "9", "--header", "kind=urgent", "--header", "a=1")
	s.must("pub", "q", `third "quoted"`, "--id", "x3", "--key", "k")

	out := s.must("sub", "q", "--count", "3", "--max", "2")
	want := []string{
		`seq=2 prio=9 deliveries=1 body="second, urgent" headers=a=1,kind=urgent`,
		`seq=1 prio=0 deliveries=1 body="first, low"`,
		`seq=3 prio=0 deliveries=1 id="x3" key="k" body="third \"quoted\""`,
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sub printed\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
	st := s.stats("q")
	if st.Depth() != 0 || st.Totals.Acked != 3 {
		t.Fatalf("after sub: %d messages left, %d acked; want all 3 acked", st.Depth(), st.Totals.Acked)
	}
	// Nothing left: --wait gives up without output or error.
	if out := s.must("sub", "q", "--wait", "20ms"); out != "" {
		t.Fatalf("sub of an empty queue printed %q", out)
	}
}

func TestSubJSON(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	binary := []byte{0xff, 0x00, 0xfe}
	_, err := s.b.Publish(context.Background(), "q",
		chute.Message{Body: []byte("héllo"), Headers: map[string]string{"h": "v"}, Priority: 3, ID: "i", Key: "k"},
		chute.Message{Body: binary})
	if err != nil {
		t.Fatal(err)
	}
	ds := jsonLines[deliveryJSON](t, s.must("sub", "q", "--count", "2", "--json"))
	if len(ds) != 2 {
		t.Fatalf("%d JSON lines, want 2", len(ds))
	}
	d := ds[0]
	if d.Queue != "q" || d.Seq != 1 || d.Body == nil || *d.Body != "héllo" || d.BodyBase64 != "" ||
		d.Headers["h"] != "v" || d.Priority != 3 || d.ID != "i" || d.Key != "k" || d.Deliveries != 1 || d.Published.IsZero() {
		t.Errorf("text message as JSON: %+v", d)
	}
	d = ds[1]
	if raw, err := base64.StdEncoding.DecodeString(d.BodyBase64); err != nil || string(raw) != string(binary) || d.Body != nil {
		t.Errorf("binary message as JSON: body %v, body_base64 %q (%v)", d.Body, d.BodyBase64, err)
	}
	if st := s.stats("q"); st.Totals.Acked != 2 {
		t.Errorf("sub --json acked %d, want 2", st.Totals.Acked)
	}
}

func TestSubNoAck(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	s.must("pub", "q", "a")
	s.must("pub", "q", "b")
	// --no-ack prints each receipt and leaves the lease held, to be
	// settled later.
	out := s.must("sub", "q", "--no-ack", "--count", "1")
	if !strings.Contains(out, `body="a"`) || !strings.Contains(out, " receipt=") {
		t.Fatalf("sub --no-ack printed %q", out)
	}
	receipt := strings.Fields(out[strings.Index(out, "receipt="):])[0][len("receipt="):]
	ds := jsonLines[deliveryJSON](t, s.must("sub", "q", "--no-ack", "--count", "1", "--json", "--lease", "1h"))
	if len(ds) != 1 || ds[0].Receipt == "" || ds[0].LeaseDeadline == nil || ds[0].Body == nil || *ds[0].Body != "b" {
		t.Fatalf("sub --no-ack --json: %+v", ds)
	}
	if until := time.Until(*ds[0].LeaseDeadline); until < 50*time.Minute {
		t.Errorf("--lease 1h: the lease ends in %v", until)
	}
	st := s.stats("q")
	if st.InFlight != 2 || st.Totals.Acked != 0 || st.Totals.Nacked != 0 {
		t.Fatalf("after sub --no-ack: %+v", st)
	}
	// The printed receipts settle the messages.
	s.must("ack", "q", receipt, ds[0].Receipt)
	if st := s.stats("q"); st.Depth() != 0 || st.Totals.Acked != 2 {
		t.Fatalf("after ack of the printed receipts: %+v", st)
	}
	// An acking sub prints no receipt: it is spent.
	s.must("pub", "q", "c")
	if out := s.must("sub", "q", "--count", "1"); strings.Contains(out, "receipt") {
		t.Fatalf("sub (acking) printed a receipt: %q", out)
	}
	s.must("pub", "q", "d")
	if d := jsonLines[deliveryJSON](t, s.must("sub", "q", "--count", "1", "--json")); d[0].Receipt != "" || d[0].LeaseDeadline != nil {
		t.Fatalf("sub --json (acking) printed a lease: %+v", d[0])
	}
}

func TestSubWaitDefaults(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	// With --count and no --wait, sub gives up after countWait (10s; made
	// short here) and exits 9.
	old := countWait
	countWait = 30 * time.Millisecond
	t.Cleanup(func() { countWait = old })
	_, err := s.run("sub", "q", "--count", "1")
	if exitCode(err) != 9 || !strings.Contains(err.Error(), "received 0 of 1 message(s) from q") {
		t.Fatalf("sub --count 1 of an empty queue: exit %d, %v", exitCode(err), err)
	}
	if old != 10*time.Second {
		t.Errorf("the default --wait with --count is %v, want the documented 10s", old)
	}

	// Without a bound on the wait, a terminal is told how to stop; a pipe
	// is not.
	var out, errOut bytes.Buffer
	s.must("pub", "q", "x")
	if err := s.runWith(strings.NewReader(""), &out, &errOut, "sub", "q", "--count", "1", "--wait", "0", "--server", s.addr); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() != 0 {
		t.Fatalf("stdout is no terminal, yet sub wrote %q", errOut.String())
	}
	pretendTerminal(t, &out)
	s.must("pub", "q", "y")
	out.Reset()
	if err := s.runWith(strings.NewReader(""), &out, &errOut, "sub", "q", "--count", "1", "--wait", "0", "--server", s.addr); err != nil {
		t.Fatal(err)
	}
	if errOut.String() != "waiting for messages on q (Ctrl-C to stop)\n" || !strings.Contains(out.String(), `body="y"`) {
		t.Fatalf("sub on a terminal: stderr %q, stdout %q", errOut.String(), out.String())
	}
	// A bounded wait needs no note.
	errOut.Reset()
	if err := s.runWith(strings.NewReader(""), &out, &errOut, "sub", "q", "--wait", "10ms", "--server", s.addr); err != nil || errOut.Len() != 0 {
		t.Fatalf("sub --wait 10ms on a terminal: %v, stderr %q", err, errOut.String())
	}
}
