package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

func body(s string) PubMsg { return PubMsg{Body: []byte(s)} }

func seqs(ds []Delivered) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Seq
	}
	return out
}

func (h *harness) bodies(ds []Delivered) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = h.body(d)
	}
	return out
}

func TestPriorityThenPublishOrder(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q",
		PubMsg{Body: []byte("a0"), Prio: 0}, PubMsg{Body: []byte("b5"), Prio: 5},
		PubMsg{Body: []byte("c9"), Prio: 9}, PubMsg{Body: []byte("d5"), Prio: 5},
		PubMsg{Body: []byte("e0"), Prio: 0}, PubMsg{Body: []byte("f9"), Prio: 9})
	got := h.bodies(h.receive("q", 10, 0))
	want := []string{"c9", "f9", "b5", "d5", "a0", "e0"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	h.check()
}

func TestReturnedMessagesKeepTheirPlace(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", body("1"), body("2"), body("3"))
	first := h.receive("q", 1, 0)
	h.mustPublish("q", body("4"))
	if err := h.nack("q", first[0], -1, ""); err != nil {
		t.Fatal(err)
	}
	// "1" went back: it leaves before 2, 3 and 4, which are newer.
	got := h.bodies(h.receive("q", 10, 0))
	if want := []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	h.check()
}

func TestDelayedDelivery(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", PubMsg{Body: []byte("later"), DeliverAt: h.now + int64(5*time.Second)}, body("now"))
	if s := h.stats("q"); s.Delayed != 1 || s.Ready != 1 {
		t.Fatalf("stats %+v", s)
	}
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"now"}) {
		t.Fatalf("got %v before the delay", got)
	}
	if next := h.e.NextEvent(); next != h.now+int64(5*time.Second) {
		t.Fatalf("next event %d, want the due time", next)
	}
	h.advance(5*time.Second - 1)
	if got := h.receive("q", 10, 0); len(got) != 0 {
		t.Fatalf("delivered %d messages 1ns early", len(got))
	}
	h.advance(1)
	var woken []string
	h.e.DrainWakeups(func(q string) { woken = append(woken, q) })
	if !slices.Contains(woken, "q") {
		t.Fatalf("no wake-up for q when the delay came due: %v", woken)
	}
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"later"}) {
		t.Fatalf("got %v at the due time", got)
	}
	h.check()
}

func TestLeaseExpiryRedeliversAndStaleReceipts(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{VisibilityTimeout: 10 * time.Second})
	h.mustPublish("q", body("x"))
	d1 := h.receive("q", 1, 0)[0]
	if d1.Deliv != 1 || d1.Deadline != h.now+int64(10*time.Second) {
		t.Fatalf("first delivery %+v", d1)
	}
	if got := h.receive("q", 1, 0); len(got) != 0 {
		t.Fatal("leased message delivered twice")
	}
	h.advance(10 * time.Second)
	if s := h.stats("q"); s.Ready != 1 || s.InFlight != 0 || s.Totals.LeaseExpired != 1 {
		t.Fatalf("after expiry: %+v", s)
	}
	// An ack of the expired lease must fail, before and after redelivery.
	if errs := h.ack("q", d1); !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("ack after expiry: %v", errs[0])
	}
	d2 := h.receive("q", 1, 5*time.Second)[0]
	if d2.Seq != d1.Seq || d2.Deliv != 2 || d2.Deadline != h.now+int64(5*time.Second) {
		t.Fatalf("redelivery %+v", d2)
	}
	if errs := h.ack("q", d1); !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("old receipt acked the new delivery: %v", errs[0])
	}
	if errs := h.ack("q", d2, d2); errs[0] != nil || !errors.Is(errs[1], ErrStaleReceipt) {
		t.Fatalf("ack, then the same ack again: %v", errs)
	}
	if s := h.stats("q"); s.Depth() != 0 || s.Totals.Acked != 1 {
		t.Fatalf("after ack: %+v", s)
	}
	h.check()
}

func TestExtend(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{VisibilityTimeout: 10 * time.Second})
	h.mustPublish("q", body("x"))
	d := h.receive("q", 1, 0)[0]
	h.advance(8 * time.Second)
	if errs := h.items(RecExtend, "q", Item{Seq: d.Seq, Deliv: d.Deliv, Value: int64(20 * time.Second)}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	h.advance(19 * time.Second) // 27 s after delivery: past the old deadline
	if s := h.stats("q"); s.InFlight != 1 {
		t.Fatalf("extended lease ended early: %+v", s)
	}
	h.advance(time.Second)
	if s := h.stats("q"); s.Ready != 1 {
		t.Fatalf("extended lease did not end: %+v", s)
	}
	if errs := h.items(RecExtend, "q", Item{Seq: d.Seq, Deliv: d.Deliv}); !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("extend of an expired lease: %v", errs[0])
	}
	h.check()
}

func TestNackBackoffAndDeadLetter(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 3,
		Backoff: Backoff{Kind: BackoffExponential, Delay: time.Second, Max: time.Minute, Jitter: -1}})
	h.mustPublish("q", PubMsg{Body: []byte("job"), Prio: 4})
	for i, wait := range []time.Duration{time.Second, 2 * time.Second} {
		d := h.receive("q", 1, 0)[0]
		if err := h.nack("q", d, 0, fmt.Sprintf("boom %d", i)); err != nil {
			t.Fatal(err)
		}
		if s := h.stats("q"); s.Delayed != 1 {
			t.Fatalf("after nack %d: %+v", i, s)
		}
		h.advance(wait - 1)
		if got := h.receive("q", 1, 0); len(got) != 0 {
			t.Fatalf("retry %d came before its back-off of %v", i, wait)
		}
		h.advance(1)
	}
	d := h.receive("q", 1, 0)[0]
	if d.Deliv != 3 || d.LastErr != "boom 1" {
		t.Fatalf("third delivery %+v", d)
	}
	if err := h.nack("q", d, 0, "final"); err != nil {
		t.Fatal(err)
	}
	if s := h.stats("q"); s.Depth() != 0 || s.Totals.DeadLettered != 1 || s.Totals.Redelivered != 2 ||
		s.Totals.DeadByReason != (DeadReasons{MaxDeliveries: 1}) {
		t.Fatalf("source after the last nack: %+v", s)
	}
	dl := h.receive("q.dlq", 1, 0)
	if len(dl) != 1 || h.body(dl[0]) != "job" || dl[0].Prio != 4 {
		t.Fatalf("dead letter %+v", dl)
	}
	want := DeadInfo{Source: "q", Reason: ReasonMaxDeliveries, Deliveries: 3, LastError: "final", At: h.now, OrigSeq: d.Seq}
	if *dl[0].Dead != want {
		t.Fatalf("dead info %+v, want %+v", *dl[0].Dead, want)
	}
	h.check()
}

func TestLeaseExpiryCountsTowardsMaxDeliveries(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 2, VisibilityTimeout: time.Second})
	h.mustPublish("q", body("x"))
	h.receive("q", 1, 0)
	h.advance(time.Second)
	h.receive("q", 1, 0)
	h.advance(time.Second)
	if s := h.stats("q.dlq"); s.Ready != 1 {
		t.Fatalf("dead-letter queue %+v", s)
	}
	if dl := h.receive("q.dlq", 1, 0); dl[0].Dead.Reason != ReasonMaxDeliveries || dl[0].Dead.Deliveries != 2 {
		t.Fatalf("dead info %+v", *dl[0].Dead)
	}
	h.check()
}

func TestNoDeadLetterDiscards(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 1, NoDeadLetter: true})
	h.mustPublish("q", body("x"))
	if err := h.nack("q", h.receive("q", 1, 0)[0], -1, ""); err != nil {
		t.Fatal(err)
	}
	if s := h.stats("q"); s.Depth() != 0 || s.Totals.Discarded != 1 {
		t.Fatalf("%+v", s)
	}
	if _, err := h.e.QueueStats("q.dlq"); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("a dead-letter queue was created: %v", err)
	}
	if len(h.e.LiveUnits()) != 0 {
		t.Fatalf("storage still referenced: %v", h.e.LiveUnits())
	}
	h.check()
}

func TestTTL(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("keep", QueueConfig{DeadLetterExpired: true, VisibilityTimeout: 10 * time.Second})
	h.mustCreateQueue("drop", QueueConfig{MessageTTL: 5 * time.Second})
	sec := int64(time.Second)
	h.mustPublish("keep",
		PubMsg{Body: []byte("ready"), ExpireAt: h.now + 5*sec},
		PubMsg{Body: []byte("delayed-past-ttl"), ExpireAt: h.now + 5*sec, DeliverAt: h.now + 8*sec},
		PubMsg{Body: []byte("leased"), ExpireAt: h.now + 5*sec, Prio: 9},
		PubMsg{Body: []byte("forever")})
	h.mustPublish("drop", body("default-ttl"))
	leased := h.receive("keep", 1, 0)
	if h.body(leased[0]) != "leased" {
		t.Fatalf("got %q", h.body(leased[0]))
	}
	h.advance(5 * time.Second)
	s := h.stats("keep")
	if s.Ready != 1 || s.Delayed != 0 || s.InFlight != 1 || s.Totals.Expired != 2 {
		t.Fatalf("keep after 5s: %+v", s)
	}
	if s := h.stats("drop"); s.Depth() != 0 || s.Totals.Expired != 1 || s.Totals.DeadLettered != 0 {
		t.Fatalf("drop after 5s: %+v", s)
	}
	// The leased message outlived its TTL while leased; when its lease ends
	// it expires instead of returning.
	h.advance(5 * time.Second)
	if s := h.stats("keep"); s.Depth() != 1 || s.Totals.Expired != 3 {
		t.Fatalf("keep after the lease: %+v", s)
	}
	var reasons []string
	for _, d := range h.receive("keep.dlq", 10, 0) {
		reasons = append(reasons, h.body(d)+":"+d.Dead.Reason.String())
	}
	slices.Sort(reasons)
	want := []string{"delayed-past-ttl:expired", "leased:expired", "ready:expired"}
	if !slices.Equal(reasons, want) {
		t.Fatalf("dead letters %v, want %v", reasons, want)
	}
	h.check()
}

func TestDedup(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{DedupWindow: time.Minute})
	r1 := h.mustPublish("q", PubMsg{Body: []byte("a"), ID: "order-1"}, PubMsg{Body: []byte("a2"), ID: "order-1"}, body("plain"))
	if r1[0].Duplicate || !r1[1].Duplicate || r1[1].Seq != r1[0].Seq || r1[2].Duplicate {
		t.Fatalf("batch results %+v", r1)
	}
	h.advance(59 * time.Second)
	r2 := h.mustPublish("q", PubMsg{Body: []byte("b"), ID: "order-1"})
	if !r2[0].Duplicate || r2[0].Seq != r1[0].Seq {
		t.Fatalf("within the window: %+v", r2)
	}
	h.advance(time.Second)
	r3 := h.mustPublish("q", PubMsg{Body: []byte("c"), ID: "order-1"})
	if r3[0].Duplicate {
		t.Fatalf("after the window: %+v", r3)
	}
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"a", "plain", "c"}) {
		t.Fatalf("stored %v", got)
	}
	// Long IDs (kept as hashes) are told apart, and caught.
	long := strings.Repeat("x", 100)
	r4 := h.mustPublish("q", PubMsg{ID: long + "1"}, PubMsg{ID: long + "2"}, PubMsg{ID: long + "1"})
	if r4[0].Duplicate || r4[1].Duplicate || !r4[2].Duplicate || r4[2].Seq != r4[0].Seq {
		t.Fatalf("long IDs: %+v", r4)
	}
	h.check()
}

func TestDepthLimits(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxMessages: 3})
	h.mustPublish("q", body("1"), body("2"))
	if _, err := h.publish("q", body("3"), body("4")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the limit: %v", err)
	}
	if s := h.stats("q"); s.Depth() != 2 {
		t.Fatalf("a rejected batch stored something: %+v", s)
	}
	h.mustPublish("q", body("3"))
	h.receive("q", 1, 0) // in flight still counts towards depth
	if _, err := h.publish("q", body("4")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("with one in flight: %v", err)
	}

	h.mustCreateQueue("b", QueueConfig{MaxBytes: 30})
	h.mustPublish("b", PubMsg{Body: make([]byte, 20)})
	if _, err := h.publish("b", PubMsg{Body: make([]byte, 20)}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("over the byte limit: %v", err)
	}
	h.check()
}

func TestDropOldest(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxMessages: 3, Overflow: OverflowDropOldest})
	h.mustPublish("q", PubMsg{Body: []byte("1"), Prio: 9}, body("2"), body("3"))
	h.mustPublish("q", body("4"), body("5"))
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Fatalf("kept %v", got)
	}
	dl := h.receive("q.dlq", 10, 0)
	if got := h.bodies(dl); !slices.Equal(got, []string{"1", "2"}) || dl[0].Dead.Reason != ReasonOverflow {
		t.Fatalf("dropped %v (%+v)", got, dl)
	}
	// Everything is in flight: nothing can be dropped, so the publish fails.
	if _, err := h.publish("q", body("6")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("nothing to drop: %v", err)
	}
	h.check()
}

func TestRedrive(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 1, MaxMessages: 4})
	h.mustPublish("q", PubMsg{Body: []byte("k1"), Key: "k"}, body("a"), body("b"), body("c"))
	for _, d := range h.receive("q", 10, 0) {
		if err := h.nack("q", d, -1, "bad"); err != nil {
			t.Fatal(err)
		}
	}
	if s := h.stats("q.dlq"); s.Ready != 4 || s.DeadLetters != 4 {
		t.Fatalf("dead-letter queue %+v", s)
	}
	r, n, err := h.e.Redrive(h.now, "q.dlq", 1)
	h.commit(r)
	if err != nil || n != 1 {
		t.Fatalf("redrive 1: %d, %v", n, err)
	}
	h.mustPublish("q", body("d"), body("e"))
	r, n, err = h.e.Redrive(h.now, "q.dlq", 0)
	h.commit(r)
	if err != nil || n != 1 {
		t.Fatalf("redrive all into a queue with room for one: %d, %v", n, err)
	}
	if s := h.stats("q.dlq"); s.Ready != 2 {
		t.Fatalf("dead letters left %+v", s)
	}
	ds := h.receive("q", 10, 0)
	if got := h.bodies(ds); !slices.Equal(got, []string{"k1", "d", "e", "a"}) {
		t.Fatalf("source holds %v", got)
	}
	if ds[0].Deliv != 1 || ds[0].Dead != nil || ds[0].LastErr != "" {
		t.Fatalf("a redriven message is fresh: %+v", ds[0])
	}
	if s := h.stats("q"); s.OrderingKeys != 1 {
		t.Fatalf("the redriven message lost its ordering key: %+v", s)
	}
	h.check()
}

func TestTopicFanOut(t *testing.T) {
	h := newHarness(t)
	r, err := h.e.CreateTopic(h.now, "orders", TopicConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	for _, s := range []struct {
		name   string
		filter map[string]string
	}{{"all", nil}, {"eu", map[string]string{"region": "eu"}}, {"eu-big", map[string]string{"region": "eu", "size": "big"}}} {
		r, err := h.e.Subscribe(h.now, "orders", s.name, QueueConfig{}, s.filter)
		if err != nil {
			t.Fatal(err)
		}
		h.commit(r)
	}
	h.mustPublish("orders",
		PubMsg{Body: []byte("1"), Headers: map[string]string{"region": "eu", "size": "big"}},
		PubMsg{Body: []byte("2"), Headers: map[string]string{"region": "us"}},
		PubMsg{Body: []byte("3"), Headers: map[string]string{"region": "eu", "size": "small"}})
	got := map[string][]string{}
	refs := map[uint64]int{}
	for _, q := range []string{"all", "eu", "eu-big"} {
		for _, d := range h.receive(q, 10, 0) {
			got[q] = append(got[q], h.body(d))
			refs[d.Ref]++
		}
	}
	want := map[string][]string{"all": {"1", "2", "3"}, "eu": {"1", "3"}, "eu-big": {"1"}}
	for q := range want {
		if !slices.Equal(got[q], want[q]) {
			t.Fatalf("%s got %v, want %v", q, got[q], want[q])
		}
	}
	// Six deliveries of three messages, and one stored blob per message.
	if len(refs) != 3 {
		t.Fatalf("bodies stored at %d places for 3 messages: %v", len(refs), refs)
	}
	ts, _ := h.e.TopicStats("orders")
	if ts.Totals.Published != 3 || !slices.Equal(ts.Subscriptions, []string{"all", "eu", "eu-big"}) {
		t.Fatalf("topic stats %+v", ts)
	}
	// Deleting the topic leaves its subscriptions' queues as plain queues.
	r, err = h.e.DeleteTopic(h.now, "orders")
	h.commit(r)
	if err != nil {
		t.Fatal(err)
	}
	if s := h.stats("eu"); s.Topic != "" || s.InFlight != 2 {
		t.Fatalf("queue after topic delete: %+v", s)
	}
	h.check()
}

func TestOrderingKeys(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q",
		PubMsg{Body: []byte("a1"), Key: "a"}, PubMsg{Body: []byte("a2"), Key: "a"},
		PubMsg{Body: []byte("b1"), Key: "b"}, PubMsg{Body: []byte("a3"), Key: "a"},
		body("free"), PubMsg{Body: []byte("b2"), Key: "b"})
	first := h.receive("q", 10, 0)
	if got := h.bodies(first); !slices.Equal(got, []string{"a1", "b1", "free"}) {
		t.Fatalf("first round %v: at most one per key", got)
	}
	// A nacked key holder keeps its key: a2 must not overtake a1.
	if err := h.nack("q", first[0], time.Second, ""); err != nil {
		t.Fatal(err)
	}
	if got := h.receive("q", 10, 0); len(got) != 0 {
		t.Fatalf("delivered %v while a1 waits out its back-off", h.bodies(got))
	}
	h.advance(time.Second)
	a1 := h.receive("q", 10, 0)
	if got := h.bodies(a1); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("after back-off %v", got)
	}
	h.ack("q", a1[0], first[1])
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"a2", "b2"}) {
		t.Fatalf("after acks %v", got)
	}
	if s := h.stats("q"); s.Ready != 1 || s.InFlight != 3 || s.OrderingKeys != 2 {
		t.Fatalf("stats %+v", s)
	}
	h.check()
}

func TestPurgeAndDelete(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", body("1"), PubMsg{Body: []byte("2"), DeliverAt: h.now + 1e9}, PubMsg{Body: []byte("3"), Key: "k"},
		PubMsg{Body: []byte("4"), Key: "k"}, PubMsg{Body: []byte("5"), ExpireAt: h.now + 1e12})
	d := h.receive("q", 1, 0)
	r, n, err := h.e.PurgeQueue(h.now, "q")
	h.commit(r)
	if err != nil || n != 5 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	if errs := h.ack("q", d...); !errors.Is(errs[0], ErrStaleReceipt) {
		t.Fatalf("ack after purge: %v", errs[0])
	}
	if len(h.e.LiveUnits()) != 0 || h.e.NextEvent() != 0 {
		t.Fatalf("purge left references %v or timers %d", h.e.LiveUnits(), h.e.NextEvent())
	}
	h.mustPublish("q", body("6"))
	r, err = h.e.DeleteQueue(h.now, "q")
	h.commit(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.publish("q", body("7")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publish to a deleted queue: %v", err)
	}
	if len(h.e.LiveUnits()) != 0 {
		t.Fatalf("delete left references %v", h.e.LiveUnits())
	}
	h.check()
}

func TestReleaseLeases(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{MaxDeliveries: 2})
	h.mustPublish("q", body("1"), body("2"))
	h.receive("q", 1, 0)
	h.commit(h.e.ReleaseLeases(h.now))
	h.receive("q", 2, 0)
	h.commit(h.e.ReleaseLeases(h.now))
	s := h.stats("q")
	if s.Ready != 1 || s.InFlight != 0 || h.stats("q.dlq").Ready != 1 {
		t.Fatalf("after two releases: %+v", s)
	}
	h.check()
}

func TestAdminErrors(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"empty name", second(h.e.CreateQueue(h.now, "", QueueConfig{})), ErrInvalidName},
		{"bad char", second(h.e.CreateQueue(h.now, "a b", QueueConfig{})), ErrInvalidName},
		{"leading dot", second(h.e.CreateQueue(h.now, ".a", QueueConfig{})), ErrInvalidName},
		{"exists", second(h.e.CreateQueue(h.now, "q", QueueConfig{})), ErrExists},
		{"topic over queue", second(h.e.CreateTopic(h.now, "q", TopicConfig{})), ErrExists},
		{"ttl too long", second(h.e.CreateQueue(h.now, "x", QueueConfig{MessageTTL: MaxTTL + 1})), ErrInvalidConfig},
		{"NaN jitter", second(h.e.CreateQueue(h.now, "x", QueueConfig{Backoff: Backoff{Jitter: math.NaN()}})), ErrInvalidConfig},
		{"self dlq", second(h.e.CreateQueue(h.now, "x", QueueConfig{DeadLetterQueue: "x"})), ErrInvalidConfig},
		{"update missing", second(h.e.UpdateQueue(h.now, "nope", QueueConfig{})), ErrQueueNotFound},
		{"subscribe missing topic", second(h.e.Subscribe(h.now, "nope", "s", QueueConfig{}, nil)), ErrTopicNotFound},
		{"unsubscribe plain queue", second(h.e.DeleteTopic(h.now, "nope")), ErrTopicNotFound},
		{"priority 10", third(h.e.PreparePublish(h.now, "q", Session{}, []PubMsg{{Prio: 10}})), ErrInvalidMessage},
		{"publish nowhere", third(h.e.PreparePublish(h.now, "nope", Session{}, []PubMsg{{}})), ErrNotFound},
		{"receive missing", third(h.e.Receive(h.now, "nope", 1, 0)), ErrQueueNotFound},
		{"ack missing", third(h.e.Ack(h.now, "nope", nil)), ErrQueueNotFound},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	h.check()
}

func second[A any](_ A, err error) error        { return err }
func third[A, B any](_ A, _ B, err error) error { return err }

func TestUpdateQueue(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	r, err := h.e.UpdateQueue(h.now, "q", QueueConfig{MaxMessages: 1, DeadLetterQueue: "other"})
	h.commit(r)
	if err != nil {
		t.Fatal(err)
	}
	s := h.stats("q")
	if s.Config.MaxMessages != 1 || s.Config.DeadLetterQueue != "other" || s.Config.VisibilityTimeout != chute.DefaultVisibilityTimeout {
		t.Fatalf("config %+v", s.Config)
	}
	if _, err := h.e.QueueStats("other"); err != nil {
		t.Fatalf("new dead-letter queue not created: %v", err)
	}
	h.mustPublish("q", body("1"))
	if _, err := h.publish("q", body("2")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("the new limit does not apply: %v", err)
	}
	h.check()
}

func TestPeekDoesNotLease(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	h.mustPublish("q", body("1"), PubMsg{Body: []byte("2"), Prio: 3}, body("3"))
	d := h.receive("q", 1, 0)
	h.mustPublish("q", body("4"))
	if err := h.nack("q", d[0], -1, ""); err != nil {
		t.Fatal(err)
	}
	p, err := h.e.Peek("q", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.bodies(p); !slices.Equal(got, []string{"2", "1", "3", "4"}) {
		t.Fatalf("peek %v", got)
	}
	if got := h.bodies(h.receive("q", 10, 0)); !slices.Equal(got, []string{"2", "1", "3", "4"}) {
		t.Fatalf("receive after peek %v", got)
	}
	h.check()
}

func TestBackoffDelay(t *testing.T) {
	exp := Backoff{Kind: BackoffExponential, Delay: time.Second, Max: 10 * time.Second, Jitter: -1}
	for deliv, want := range map[uint16]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 500: 10 * time.Second} {
		if got := time.Duration(backoffDelay(exp, 7, deliv)); got != want {
			t.Errorf("exponential delivery %d: %v, want %v", deliv, got, want)
		}
	}
	fixed := Backoff{Kind: BackoffFixed, Delay: 3 * time.Second, Jitter: -1}
	if got := time.Duration(backoffDelay(fixed, 1, 9)); got != 3*time.Second {
		t.Errorf("fixed: %v", got)
	}
	if got := backoffDelay(Backoff{Kind: BackoffNone}, 1, 1); got != 0 {
		t.Errorf("none: %v", got)
	}
	jit := Backoff{Kind: BackoffFixed, Delay: 10 * time.Second, Jitter: 0.5}
	seen := map[int64]bool{}
	for s := uint64(1); s <= 100; s++ {
		d := backoffDelay(jit, s, 1)
		if d < int64(5*time.Second) || d > int64(15*time.Second) {
			t.Fatalf("jittered delay %v outside ±50%%", time.Duration(d))
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Fatalf("jitter does not spread: %d distinct delays of 100", len(seen))
	}
}
