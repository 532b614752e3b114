package apitest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// Suite is the conformance suite and its settings.
type Suite struct {
	// NewAPI returns the API one check runs against, and registers its own
	// cleanup with t.Cleanup. It may return the same broker each time
	// (through a new client, say) if Prefix keeps runs apart.
	NewAPI func(t *testing.T) chute.API
	// Prefix goes before every queue and topic name the suite makes, so
	// that several runs can share one broker. Each check also uses names
	// of its own, so the checks of one run never meet.
	Prefix string
	// Skip maps a check's name to the reason for skipping it (a known bug
	// of one implementation, say); the check reports the reason.
	Skip map[string]string
}

// Run runs every check of the suite as a subtest of t, each against an API
// from newAPI.
func Run(t *testing.T, newAPI func(t *testing.T) chute.API) {
	Suite{NewAPI: newAPI}.Run(t)
}

// check is one subtest.
type check struct {
	name string
	run  func(e *env)
}

// checks are the suite's subtests, in the order they run.
var checks = []check{
	{"competing-consumers", testCompetingConsumers},
	{"fan-out", testFanOut},
	{"priority", testPriority},
	{"delayed", testDelayed},
	{"receive-wait", testReceiveWait},
	{"nack-backoff", testNackBackoff},
	{"exponential-backoff", testExponentialBackoff},
	{"dead-letter-redrive", testDeadLetterRedrive},
	{"dead-letter-lease-expiry", testDeadLetterLeaseExpiry},
	{"dead-letter-ttl", testDeadLetterTTL},
	{"dedup", testDedup},
	{"dedup-topic", testDedupTopic},
	{"sessions", testSessions},
	{"unstarted-returns", testUnstartedReturns},
	{"ordering-keys", testOrderingKeys},
	{"ordering-keys-concurrent", testOrderingKeysConcurrent},
	{"extend", testExtend},
	{"lease-expiry", testLeaseExpiry},
	{"peek", testPeek},
	{"purge", testPurge},
	{"message-lookup", testMessageLookup},
	{"cancel-messages", testCancelMessages},
	{"redrive-messages", testRedriveMessages},
	{"limits", testLimits},
	{"queue-admin", testQueueAdmin},
	{"compression", testCompression},
	{"pause-resume", testPauseResume},
	{"schedule-admin", testScheduleAdmin},
	{"schedule-fires", testScheduleFires},
	{"errors-not-found", testErrorsNotFound},
	{"errors-names", testErrorsNames},
	{"errors-receipts", testErrorsReceipts},
	{"errors-invalid", testErrorsInvalid},
	{"tx-ack-publish", testTxAckPublish},
	{"tx-stale", testTxStale},
	{"tx-cross-group", testTxCrossGroup},
	{"tx-retry", testTxRetry},
	{"tx-nack", testTxNack},
}

// Checks lists the names of the suite's checks (for Suite.Skip).
func Checks() []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.name
	}
	return names
}

// Run runs every check of the suite as a subtest of t.
func (s Suite) Run(t *testing.T) {
	if s.NewAPI == nil {
		t.Fatal("apitest: Suite.NewAPI is nil")
	}
	for name := range s.Skip {
		if !slices.Contains(Checks(), name) {
			t.Fatalf("apitest: Skip names no check %q", name)
		}
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if why, ok := s.Skip[c.name]; ok {
				t.Skip(why)
			}
			c.runWith(t, s.NewAPI(t), s.Prefix)
		})
	}
}

// runWith runs the check against api, with t (any testing.TB, so that the
// suite's own tests can watch a check fail).
func (c check) runWith(t testing.TB, api chute.API, prefix string) {
	c.run(&env{t: t, api: api, ctx: chutetest.Ctx(t), prefix: prefix + c.name + "."})
}

// env is one check's API, context and names.
type env struct {
	t      testing.TB
	api    chute.API
	ctx    context.Context
	prefix string
}

// longWait bounds every wait for something that must happen.
const longWait = 5 * time.Second

// name is the check's own name for a queue or topic.
func (e *env) name(s string) string { return e.prefix + s }

// queue creates a queue of the check and returns its name.
func (e *env) queue(s string, cfg chute.QueueConfig) string {
	e.t.Helper()
	q := e.name(s)
	if err := e.api.CreateQueue(e.ctx, q, cfg); err != nil {
		e.t.Fatalf("create queue %s: %v", q, err)
	}
	return q
}

// topic creates a topic of the check and returns its name.
func (e *env) topic(s string) string {
	e.t.Helper()
	name := e.name(s)
	if err := e.api.CreateTopic(e.ctx, name, chute.TopicConfig{}); err != nil {
		e.t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}

func (e *env) subscribe(topic, sub string, filter map[string]string) {
	e.t.Helper()
	if err := e.api.Subscribe(e.ctx, topic, sub, chute.SubscriptionConfig{Filter: filter}); err != nil {
		e.t.Fatalf("subscribe %s to %s: %v", sub, topic, err)
	}
}

func (e *env) publish(target string, msgs ...chute.Message) []chute.PublishResult {
	e.t.Helper()
	res, err := e.api.Publish(e.ctx, target, msgs...)
	if err != nil {
		e.t.Fatalf("publish %d to %s: %v", len(msgs), target, err)
	}
	if len(res) != len(msgs) {
		e.t.Fatalf("publish %d to %s: %d results", len(msgs), target, len(res))
	}
	return res
}

func (e *env) receive(q string, opts chute.ReceiveOptions) []chute.Delivery {
	e.t.Helper()
	ds, err := e.api.Receive(e.ctx, q, opts)
	if err != nil {
		e.t.Fatalf("receive from %s: %v", q, err)
	}
	if opts.Max > 0 && len(ds) > opts.Max || opts.Max <= 0 && len(ds) > 1 {
		e.t.Fatalf("receive from %s with max %d: %d messages", q, opts.Max, len(ds))
	}
	for _, d := range ds {
		if d.Receipt == "" || d.Queue != q || d.Deliveries < 1 {
			e.t.Fatalf("receive from %s: bad delivery %s", q, show(d))
		}
	}
	return ds
}

// ready receives what is ready now (up to max), without waiting.
func (e *env) ready(q string, max int) []chute.Delivery {
	e.t.Helper()
	return e.receive(q, chute.ReceiveOptions{Max: max, Wait: -1})
}

// receiveOne receives one message that must be ready now.
func (e *env) receiveOne(q string) chute.Delivery {
	e.t.Helper()
	ds := e.ready(q, 1)
	if len(ds) != 1 {
		e.t.Fatalf("receive from %s: nothing ready", q)
	}
	return ds[0]
}

// receiveDue receives one message of q that must not come before due:
// first with a wait that ends before due (it may return the message only
// if due has passed by then: a slow machine), then with a long one.
func (e *env) receiveDue(q string, due time.Time) chute.Delivery {
	e.t.Helper()
	try := func(wait time.Duration) (chute.Delivery, bool) {
		ds := e.receive(q, chute.ReceiveOptions{Max: 1, Wait: wait, Lease: dueLease})
		if len(ds) == 0 {
			return chute.Delivery{}, false
		}
		if at := deliveredAt(ds[0]); at.Before(due) {
			e.t.Fatalf("%s: %s came %v before it was due", q, show(ds[0]), due.Sub(at))
		}
		return ds[0], true
	}
	if short := time.Until(due) / 2; short >= 20*time.Millisecond {
		if d, ok := try(short); ok {
			return d
		}
	}
	d, ok := try(time.Until(due) + longWait)
	if !ok {
		e.t.Fatalf("%s: nothing came within %v of its due time", q, longWait)
	}
	return d
}

// dueLease is the lease receiveDue asks for, so that deliveredAt can tell
// when the server delivered a message.
const dueLease = time.Minute

// deliveredAt is when the server delivered d (received by receiveDue), on
// the server's clock: times are compared on one clock, never the test's
// against the server's (issue 8: TestAPI/connect/delayed failed by 1.3 ms
// that way).
func deliveredAt(d chute.Delivery) time.Time { return d.LeaseDeadline.Add(-dueLease) }

func (e *env) ack(q string, ds ...chute.Delivery) {
	e.t.Helper()
	if err := e.api.Ack(e.ctx, q, receipts(ds)...); err != nil {
		e.t.Fatalf("ack %d on %s: %v", len(ds), q, err)
	}
}

func (e *env) nack(q string, nacks ...chute.Nack) {
	e.t.Helper()
	if err := e.api.Nack(e.ctx, q, nacks...); err != nil {
		e.t.Fatalf("nack %d on %s: %v", len(nacks), q, err)
	}
}

func (e *env) peek(q string, max int) []chute.Delivery {
	e.t.Helper()
	ds, err := e.api.Peek(e.ctx, q, max)
	if err != nil {
		e.t.Fatalf("peek %s: %v", q, err)
	}
	for _, d := range ds {
		if d.Receipt != "" {
			e.t.Fatalf("peek %s: %s has a receipt", q, show(d))
		}
	}
	return ds
}

func (e *env) stats(q string) chute.QueueStats {
	e.t.Helper()
	s, err := e.api.QueueStats(e.ctx, q)
	if err != nil {
		e.t.Fatalf("stats of %s: %v", q, err)
	}
	if s.Name != q {
		e.t.Fatalf("stats of %s: named %q", q, s.Name)
	}
	return s
}

// wantDepth checks a queue's ready, delayed and in-flight counts.
func (e *env) wantDepth(q string, ready, delayed, inFlight int64) chute.QueueStats {
	e.t.Helper()
	s := e.stats(q)
	if s.Ready != ready || s.Delayed != delayed || s.InFlight != inFlight {
		e.t.Fatalf("%s: ready %d, delayed %d, in flight %d; want %d, %d, %d",
			q, s.Ready, s.Delayed, s.InFlight, ready, delayed, inFlight)
	}
	return s
}

// wantBodies checks the bodies of ds, in order.
func (e *env) wantBodies(what string, ds []chute.Delivery, want ...string) {
	e.t.Helper()
	if got := bodies(ds); !slices.Equal(got, want) {
		e.t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// wantErr checks that err is (or wraps) target.
func (e *env) wantErr(what string, err, target error) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantReceiptErr checks that err is a *chute.ReceiptErrors naming exactly
// the receipts at indexes, each failing with target.
func (e *env) wantReceiptErr(what string, err, target error, rs []string, indexes ...int) {
	e.t.Helper()
	var re *chute.ReceiptErrors
	if !errors.As(err, &re) {
		e.t.Fatalf("%s: got %v (%T), want a *chute.ReceiptErrors", what, err, err)
	}
	if len(re.Failed) != len(indexes) {
		e.t.Fatalf("%s: %d receipts failed (%v), want %d", what, len(re.Failed), err, len(indexes))
	}
	for i, f := range re.Failed {
		if f.Index != indexes[i] || f.Receipt != rs[f.Index] || !errors.Is(f.Err, target) {
			e.t.Fatalf("%s: failure %d is #%d %q: %v; want #%d %q: %v",
				what, i, f.Index, f.Receipt, f.Err, indexes[i], rs[indexes[i]], target)
		}
	}
	if !errors.Is(err, target) {
		e.t.Fatalf("%s: errors.Is(%v, %v) is false", what, err, target)
	}
}

func msg(body string) chute.Message { return chute.Message{Body: []byte(body)} }

func bodies(ds []chute.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}

func receipts(ds []chute.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Receipt
	}
	return out
}

// show is a delivery in a failure message.
func show(d chute.Delivery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{%q seq %d prio %d deliveries %d", d.Body, d.Seq, d.Priority, d.Deliveries)
	if d.Key != "" {
		fmt.Fprintf(&b, " key %q", d.Key)
	}
	if d.ID != "" {
		fmt.Fprintf(&b, " id %q", d.ID)
	}
	if d.LastError != "" {
		fmt.Fprintf(&b, " error %q", d.LastError)
	}
	b.WriteString("}")
	return b.String()
}
