package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// lossyCommits loses the answer of every other commit (after the commit
// happened), as a connection that breaks at the wrong moment would.
type lossyCommits struct {
	chute.API
	n    atomic.Int64
	lost atomic.Int64
}

func (l *lossyCommits) Commit(ctx context.Context, tx chute.Tx) (chute.TxResult, error) {
	res, err := l.API.Commit(ctx, tx)
	if err == nil && l.n.Add(1)%2 == 1 {
		l.lost.Add(1)
		return chute.TxResult{}, connect.NewError(connect.CodeUnavailable, errors.New("connection reset (test)"))
	}
	return res, err
}

// The tx handler's ack and outputs are one commit; a failed step is
// nacked with nothing published; a commit whose answer is lost is retried
// under the same ID and publishes nothing twice.
func TestTxRunnerExactlyOnce(t *testing.T) {
	for name, api := range apis(t, nil) {
		for _, lose := range []bool{true, false} {
			testTxRunner(t, name, api, lose)
		}
	}
}

func testTxRunner(t *testing.T, name string, api chute.API, lose bool) {
	if lose {
		name += "-lossy"
	}
	t.Run(name, func(t *testing.T) {
		ctx := context.Background()
		in, out := "tx-in-"+name, "tx-out-"+name
		for _, q := range []string{in, out} {
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{Group: "g-" + name}); err != nil {
				t.Fatal(err)
			}
		}
		publishN(t, api, in, 100, func(i int) chute.Message { return chute.Message{Body: []byte(fmt.Sprint(i))} })
		lossy := &lossyCommits{API: api}
		var runAPI chute.API = lossy
		if !lose {
			runAPI = api
		}
		var failed atomic.Int64
		r := client.NewTxRunner(runAPI, in, func(_ context.Context, d chute.Delivery, o *client.Outputs) error {
			if d.Seq%10 == 0 && d.Deliveries == 1 {
				failed.Add(1)
				o.Publish(out, chute.Message{Body: []byte("never")})
				return errors.New("first try fails")
			}
			o.Publish(out, chute.Message{Body: append([]byte("out-"), d.Body...)})
			return nil
		}, client.RunnerOptions{Concurrency: 4, Prefetch: 16, NackDelay: -1, RetryDelay: 1})
		stop := runBackground(t, r)
		chutetest.Eventually(t, "every input acked", func() bool { return stats(t, api, in).Totals.Acked == 100 })
		stop()
		if s := stats(t, api, out); s.Ready != 100 {
			t.Fatalf("%d outputs for 100 inputs", s.Ready)
		}
		ds, err := api.Receive(ctx, out, chute.ReceiveOptions{Max: 1000, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if seen[string(d.Body)] || string(d.Body) == "never" {
				t.Fatalf("output %q twice or from a failed step", d.Body)
			}
			seen[string(d.Body)] = true
		}
		if lose && lossy.lost.Load() == 0 || failed.Load() == 0 {
			t.Fatalf("lost %d answers, failed %d steps: the test tested nothing", lossy.lost.Load(), failed.Load())
		}
		if s := stats(t, api, in); s.Ready+s.InFlight+s.Delayed != 0 {
			t.Fatalf("input left: %+v", s)
		}
	})
}
