package broker_test

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// Format compatibility (issue 8, item 12): testdata/format-v1 is a data
// directory written by the first released format (journal segment version
// 1, record version 1, checkpoint version 1): a checkpoint, records after
// it, a lease held at the moment of the copy (as after a crash). Every
// later format must open it, upgrade it and keep exactly its state.
// Regenerate it only when the previous format's fixture is kept beside it:
//
//	go test ./broker -run TestFormatV1 -generate-format-v1
var generateV1 = flag.Bool("generate-format-v1", false, "rewrite testdata/format-v1 with the current format")

// formatT0 is the fake time at which the fixture was written.
var formatT0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func TestFormatV1(t *testing.T) {
	const fixture = "testdata/format-v1"
	if *generateV1 {
		generateFormatFixture(t, fixture)
	}
	dir := filepath.Join(t.TempDir(), "data")
	copyDir(t, fixture, dir)

	clock := chutetest.NewFakeClock()
	clock.Advance(formatT0.Add(2 * time.Hour).Sub(clock.Now()))
	b, err := broker.Open(dir, &broker.Options{Clock: clock})
	if err != nil {
		t.Fatalf("open the v1 fixture: %v", err)
	}
	ctx := chutetest.Ctx(t)
	checkFormatState(t, b)

	// The de-dup window survived: dup-1 is still known.
	res, err := b.Publish(ctx, "jobs", chute.Message{Body: []byte("again"), ID: "dup-1"})
	if err != nil || !res[0].Duplicate {
		t.Fatalf("republish of dup-1: %+v, %v; want a duplicate", res, err)
	}
	// Upgraded: reopened, it is the same broker.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = broker.Open(dir, &broker.Options{Clock: clock})
	if err != nil {
		t.Fatalf("reopen after the upgrade: %v", err)
	}
	defer b.Close()
	checkFormatState(t, b)
}

// checkFormatState checks the fixture's state two hours after it was
// written (see generateFormatFixture for the workload).
func checkFormatState(t *testing.T, b *broker.Broker) {
	t.Helper()
	ctx := chutetest.Ctx(t)
	stats := map[string]chute.QueueStats{}
	qs, err := b.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		stats[q.Name] = q
	}
	want := map[string]struct{ ready, delayed, inflight, dead int64 }{
		"jobs": {2, 0, 0, 0}, "jobs.dlq": {1, 0, 0, 1}, "keyed": {2, 0, 0, 0}, "keyed.dlq": {},
		"billing": {1, 0, 0, 0}, "billing.dlq": {}, "audit": {2, 0, 0, 0}, "audit.dlq": {},
	}
	for name, w := range want {
		s, ok := stats[name]
		if !ok {
			t.Errorf("queue %s missing", name)
			continue
		}
		if s.Ready != w.ready || s.Delayed != w.delayed || s.InFlight != w.inflight || s.DeadLetters != w.dead {
			t.Errorf("%s: ready %d delayed %d in flight %d dead %d; want %+v", name, s.Ready, s.Delayed, s.InFlight, s.DeadLetters, w)
		}
	}
	if len(stats) != len(want) {
		t.Errorf("%d queues, want %d", len(stats), len(want))
	}
	jobs := stats["jobs"]
	if c := jobs.Config; c.MaxDeliveries != 2 || c.DedupWindow != 24*time.Hour || c.Backoff.Kind != chute.BackoffNone {
		t.Errorf("jobs config %+v", c)
	}
	if tt := jobs.Totals; tt.Acked != 1 || tt.Nacked != 2 || tt.DeadLettered != 1 || tt.Expired != 1 || tt.Delivered != 3 {
		t.Errorf("jobs totals %+v", tt)
	}
	if got := bodiesOf(peek(t, b, "jobs")); !slices.Equal(got, []string{"c", "d"}) {
		t.Errorf("jobs holds %q, want c, d", got)
	}
	dl := peek(t, b, "jobs.dlq")
	if len(dl) != 1 || string(dl[0].Body) != "a" || dl[0].DeadLetter == nil || dl[0].DeadLetter.Reason != "max-deliveries" {
		t.Errorf("jobs.dlq: %+v", dl)
	}
	// y1's lease ended with the crash: ready again, its delivery counted.
	keyed := peek(t, b, "keyed")
	if got := bodiesOf(keyed); !slices.Equal(got, []string{"x2", "y1"}) && !slices.Equal(got, []string{"y1", "x2"}) {
		t.Errorf("keyed holds %q, want x2 and y1", got)
	}
	if got := bodiesOf(peek(t, b, "audit")); !slices.Equal(got, []string{"inv-1", "ref-1"}) {
		t.Errorf("audit holds %q", got)
	}
	ts, err := b.Topics(ctx)
	if err != nil || len(ts) != 1 || ts[0].Published != 2 || ts[0].Unrouted != 0 || !slices.Equal(ts[0].Subscriptions, []string{"billing", "audit"}) {
		t.Errorf("topics %+v, %v", ts, err)
	}
}

func peek(t *testing.T, b *broker.Broker, q string) []chute.Delivery {
	t.Helper()
	ds, err := b.Peek(context.Background(), q, 100)
	if err != nil {
		t.Fatalf("peek %s: %v", q, err)
	}
	return ds
}

func bodiesOf(ds []chute.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}

// generateFormatFixture runs a fixed workload at formatT0 on a fake clock
// and copies the synced data directory while the broker still runs (a
// crash image: a checkpoint, then records, then a held lease).
func generateFormatFixture(t *testing.T, fixture string) {
	clock := chutetest.NewFakeClock()
	clock.Advance(formatT0.Sub(clock.Now()))
	dir := filepath.Join(t.TempDir(), "data")
	b, err := broker.Open(dir, &broker.Options{Clock: clock, CheckpointBytes: -1, SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := chutetest.Ctx(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pub := func(target string, msgs ...chute.Message) {
		t.Helper()
		_, err := b.Publish(ctx, target, msgs...)
		must(err)
	}
	recv := func(q string, n int) []chute.Delivery {
		t.Helper()
		ds, err := b.Receive(ctx, q, chute.ReceiveOptions{Max: n, Wait: -1})
		must(err)
		if len(ds) != n {
			t.Fatalf("receive %s: %d, want %d", q, len(ds), n)
		}
		return ds
	}
	m := func(body string) chute.Message { return chute.Message{Body: []byte(body)} }

	must(b.CreateQueue(ctx, "jobs", chute.QueueConfig{MaxDeliveries: 2, DedupWindow: 24 * time.Hour,
		Backoff: chute.Backoff{Kind: chute.BackoffNone}}))
	must(b.CreateQueue(ctx, "keyed", chute.QueueConfig{}))
	must(b.CreateTopic(ctx, "orders", chute.TopicConfig{}))
	must(b.Subscribe(ctx, "orders", "billing", chute.SubscriptionConfig{Filter: map[string]string{"type": "invoice"}}))
	must(b.Subscribe(ctx, "orders", "audit", chute.SubscriptionConfig{}))
	pub("jobs", m("a"), chute.Message{Body: []byte("b"), Priority: 5}, chute.Message{Body: []byte("c"), ID: "dup-1"},
		chute.Message{Body: []byte("d"), Delay: time.Hour}, chute.Message{Body: []byte("e"), TTL: 30 * time.Minute})
	pub("keyed", chute.Message{Body: []byte("x1"), Key: "k1"}, chute.Message{Body: []byte("x2"), Key: "k1"},
		chute.Message{Body: []byte("y1"), Key: "k2"})
	pub("orders", chute.Message{Body: []byte("inv-1"), Headers: map[string]string{"type": "invoice"}},
		chute.Message{Body: []byte("ref-1"), Headers: map[string]string{"type": "refund"}})
	must(b.Ack(ctx, "jobs", recv("jobs", 1)[0].Receipt)) // b, the highest priority
	must(b.Checkpoint(ctx))
	a := recv("jobs", 1)[0]
	must(b.Nack(ctx, "jobs", chute.Nack{Receipt: a.Receipt, Delay: -1, Error: "first"}))
	a = recv("jobs", 1)[0]
	must(b.Nack(ctx, "jobs", chute.Nack{Receipt: a.Receipt, Error: "second"})) // its last delivery: dead
	ks := recv("keyed", 2)                                                     // x1 and y1, one per key
	for _, d := range ks {
		if string(d.Body) == "x1" {
			must(b.Ack(ctx, "keyed", d.Receipt))
		}
	}
	must(b.SyncJournal(ctx))
	must(os.RemoveAll(fixture))
	copyDir(t, dir, fixture)
	t.Logf("wrote %s", fixture)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
