package main

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

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
	// --no-ack shows each message once, though the first is back in the
	// queue only when sub ends.
	out := s.must("sub", "q", "--no-ack", "--count", "2", "--max", "1")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, `body="a"`) || !strings.Contains(out, `body="b"`) {
		t.Fatalf("sub --no-ack printed\n%s", out)
	}
	st := s.stats("q")
	if st.Ready != 2 || st.InFlight != 0 || st.Totals.Acked != 0 || st.Totals.Nacked != 2 {
		t.Fatalf("after sub --no-ack: %+v", st)
	}
	// They come back at once, with their second delivery.
	out = s.must("sub", "q", "--count", "2")
	if strings.Count(out, "deliveries=2") != 2 {
		t.Fatalf("second sub printed\n%s", out)
	}
}
