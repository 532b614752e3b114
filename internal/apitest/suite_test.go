package apitest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestSuite runs the suite against the embedded broker (as the root
// package's TestAPI does), so that this package's own tests say whether
// the suite passes on a correct broker.
func TestSuite(t *testing.T) {
	Run(t, func(t *testing.T) chute.API { return chutetest.MustOpen(t, "", nil) })
}

// TestChecksCatchFaults runs checks against a broker with one fault each
// and expects the check to fail: a check that cannot fail proves nothing.
func TestChecksCatchFaults(t *testing.T) {
	for _, f := range faults {
		t.Run(f.check+"/"+f.name, func(t *testing.T) {
			i := checkIndex(f.check)
			if i < 0 {
				t.Fatalf("no check %q", f.check)
			}
			r := &recorder{TB: t}
			api := f.wrap(chutetest.MustOpen(t, "", nil))
			done := make(chan struct{})
			go func() {
				defer close(done)
				checks[i].runWith(r, api, "")
			}()
			<-done
			if !r.Failed() {
				t.Fatalf("check %s passed against a broker that %s", f.check, f.name)
			}
			if r.skipped {
				t.Fatalf("check %s skipped: %s", f.check, r.first)
			}
			t.Logf("caught: %s", r.first)
		})
	}
}

func checkIndex(name string) int {
	for i, c := range checks {
		if c.name == name {
			return i
		}
	}
	return -1
}

// faults are brokers that each break one promise, and the check that must
// notice.
var faults = []struct {
	check, name string
	wrap        func(chute.API) chute.API
}{
	{"competing-consumers", "delivers every message twice", func(a chute.API) chute.API { return twiceAPI{a} }},
	{"fan-out", "ignores subscription filters", func(a chute.API) chute.API { return noFilterAPI{a} }},
	{"priority", "ignores priorities", func(a chute.API) chute.API { return publishFault{a, func(m *chute.Message) { m.Priority = 0 }} }},
	{"delayed", "ignores delays", func(a chute.API) chute.API {
		return publishFault{a, func(m *chute.Message) { m.Delay, m.DeliverAt = 0, time.Time{} }}
	}},
	{"receive-wait", "never waits", func(a chute.API) chute.API { return noWaitAPI{a} }},
	{"nack-backoff", "ignores the back-off", func(a chute.API) chute.API { return nackFault{a, false} }},
	{"exponential-backoff", "ignores the back-off", func(a chute.API) chute.API { return nackFault{a, false} }},
	{"dead-letter-redrive", "drops nack errors", func(a chute.API) chute.API { return nackFault{a, true} }},
	{"dead-letter-redrive", "does not redrive", func(a chute.API) chute.API { return noRedriveAPI{a} }},
	{"dedup", "ignores message IDs", func(a chute.API) chute.API { return publishFault{a, func(m *chute.Message) { m.ID = "" }} }},
	{"sessions", "ignores sessions", func(a chute.API) chute.API {
		return publishFault{a, func(m *chute.Message) { m.Session, m.SessionSeq = "", 0 }}
	}},
	{"unstarted-returns", "counts unstarted returns", func(a chute.API) chute.API { return unstartedFault{a} }},
	{"ordering-keys", "ignores ordering keys", func(a chute.API) chute.API { return publishFault{a, func(m *chute.Message) { m.Key = "" }} }},
	{"extend", "does not extend", func(a chute.API) chute.API { return noExtendAPI{a} }},
	{"peek", "leases what it peeks", func(a chute.API) chute.API { return peekLeasesAPI{a} }},
	{"purge", "does not purge", func(a chute.API) chute.API { return noPurgeAPI{a} }},
	{"message-lookup", "takes a delivery to look up", func(a chute.API) chute.API { return leasingLookupAPI{a} }}, // lookup_test.go
	{"cancel-messages", "does not cancel", func(a chute.API) chute.API { return noCancelAPI{a} }},
	{"limits", "publishes batches one by one", func(a chute.API) chute.API { return splitBatchAPI{a} }},
	{"errors-receipts", "swallows ack errors", func(a chute.API) chute.API { return ackNoErrorAPI{a} }},
	{"errors-not-found", "loses error types", func(a chute.API) chute.API { return untypedAPI{a} }},
	{"tx-stale", "commits a transaction part by part", func(a chute.API) chute.API { return splitTxAPI{a} }},
	{"tx-retry", "forgets transaction IDs", func(a chute.API) chute.API { return txNoIDAPI{a} }},
}

// splitTxAPI commits a transaction's publishes, then its acks, each on
// its own: not atomically (tx_test.go's faults).
type splitTxAPI struct{ chute.API }

func (s splitTxAPI) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	var res chute.TxResult
	for _, p := range tx.Publish {
		rs, err := s.Publish(ctx, p.Target, p.Messages...)
		if err != nil {
			return res, err
		}
		res.Published = append(res.Published, rs)
	}
	for _, a := range tx.Ack {
		if err := s.Ack(ctx, a.Queue, a.Receipts...); err != nil {
			return res, err
		}
	}
	return res, nil
}

// txNoIDAPI drops transaction IDs.
type txNoIDAPI struct{ chute.API }

func (t txNoIDAPI) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	tx.ID = ""
	return t.API.Commit(ctx, tx)
}

type publishFault struct {
	chute.API
	f func(*chute.Message)
}

func (p publishFault) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	for i := range msgs {
		p.f(&msgs[i])
	}
	return p.API.Publish(ctx, target, msgs...)
}

type twiceAPI struct{ chute.API }

func (a twiceAPI) Receive(ctx context.Context, q string, o chute.ReceiveOptions) ([]chute.Delivery, error) {
	ds, err := a.API.Receive(ctx, q, o)
	if len(ds) > 0 && o.Max > len(ds) {
		ds = append(ds, ds[0])
	}
	return ds, err
}

type noFilterAPI struct{ chute.API }

func (a noFilterAPI) Subscribe(ctx context.Context, topic, name string, sub chute.SubscriptionConfig) error {
	sub.Filter = nil
	return a.API.Subscribe(ctx, topic, name, sub)
}

type noWaitAPI struct{ chute.API }

func (a noWaitAPI) Receive(ctx context.Context, q string, o chute.ReceiveOptions) ([]chute.Delivery, error) {
	o.Wait = -1
	return a.API.Receive(ctx, q, o)
}

type nackFault struct {
	chute.API
	dropError bool // else: redeliver at once
}

func (a nackFault) Nack(ctx context.Context, q string, nacks ...chute.Nack) error {
	for i := range nacks {
		if a.dropError {
			nacks[i].Error = ""
		} else if nacks[i].Delay == 0 {
			nacks[i].Delay = -1
		}
	}
	return a.API.Nack(ctx, q, nacks...)
}

// unstartedFault turns unstarted returns into plain nacks at once.
type unstartedFault struct{ chute.API }

func (a unstartedFault) Nack(ctx context.Context, q string, nacks ...chute.Nack) error {
	for i := range nacks {
		if nacks[i].Unstarted {
			nacks[i] = chute.Nack{Receipt: nacks[i].Receipt, Delay: -1}
		}
	}
	return a.API.Nack(ctx, q, nacks...)
}

type noRedriveAPI struct{ chute.API }

func (noRedriveAPI) Redrive(context.Context, string, int64) (int64, error) { return 1, nil }

type noExtendAPI struct{ chute.API }

func (noExtendAPI) Extend(context.Context, string, time.Duration, ...string) error { return nil }

type peekLeasesAPI struct{ chute.API }

func (a peekLeasesAPI) Peek(ctx context.Context, q string, max int) ([]chute.Delivery, error) {
	return a.API.Receive(ctx, q, chute.ReceiveOptions{Max: max, Wait: -1})
}

type noPurgeAPI struct{ chute.API }

func (a noPurgeAPI) PurgeQueue(ctx context.Context, q string) (int64, error) {
	s, err := a.API.QueueStats(ctx, q)
	return s.Depth(), err
}

type splitBatchAPI struct{ chute.API }

func (a splitBatchAPI) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	var out []chute.PublishResult
	for _, m := range msgs {
		r, err := a.API.Publish(ctx, target, m)
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
	}
	return out, nil
}

type ackNoErrorAPI struct{ chute.API }

func (a ackNoErrorAPI) Ack(ctx context.Context, q string, rs ...string) error {
	a.API.Ack(ctx, q, rs...)
	return nil
}

type untypedAPI struct{ chute.API }

func (a untypedAPI) Receive(ctx context.Context, q string, o chute.ReceiveOptions) ([]chute.Delivery, error) {
	ds, err := a.API.Receive(ctx, q, o)
	if err != nil {
		err = errors.New(err.Error())
	}
	return ds, err
}

// recorder is a testing.TB that records failures instead of failing the
// test; Fatal and Skip end the calling goroutine, as in a test.
type recorder struct {
	testing.TB // the real test, for Helper, Cleanup, Name and the rest

	mu      sync.Mutex
	failed  bool
	skipped bool
	first   string // guarded by mu: the first failure or skip message
}

func (r *recorder) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failed {
		r.first = msg
	}
	r.failed = true
}

func (r *recorder) Fail()                             { r.note("Fail") }
func (r *recorder) Error(args ...any)                 { r.note(fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.note(fmt.Sprintf(format, args...)) }
func (r *recorder) FailNow()                          { r.note("FailNow"); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.note(fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.note(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any)                 { r.skip(fmt.Sprint(args...)) }
func (r *recorder) Skipf(format string, args ...any) { r.skip(fmt.Sprintf(format, args...)) }
func (r *recorder) SkipNow()                         { r.skip("SkipNow") }
func (r *recorder) Log(args ...any)                  {}
func (r *recorder) Logf(format string, args ...any)  {}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) skip(msg string) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	r.note("skipped: " + msg)
	runtime.Goexit()
}
