package broker_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
)

// A transaction's results are its own: the engine reuses its result and
// record arrays from one transaction to the next, so a later commit must
// not change what an earlier one returned, and a retried ID returns the
// original results however many commits came between.
func TestTxResultsNotReused(t *testing.T) {
	ctx := context.Background()
	b := chutetest.MustOpen(t, "", nil)
	for _, q := range []string{"a", "b"} {
		if err := b.CreateQueue(ctx, q, chute.QueueConfig{Group: "g"}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := func(n int) []chute.Message {
		m := make([]chute.Message, n)
		for i := range m {
			m[i] = chute.Message{Body: []byte{byte(i)}}
		}
		return m
	}
	type commit struct {
		tx  chute.Tx
		res chute.TxResult
		cp  [][]chute.PublishResult
	}
	var done []commit
	for i := range 12 {
		tx := chute.Tx{Publish: []chute.TxPublish{{Target: "a", Messages: msgs(1 + i%5)}}}
		if i%3 == 0 {
			tx.Publish = append(tx.Publish, chute.TxPublish{Target: "b", Messages: msgs(2)})
		}
		if i%2 == 0 {
			tx.ID = fmt.Sprintf("tx-%d", i)
		}
		res, err := b.Commit(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		cp := make([][]chute.PublishResult, len(res.Published))
		for j, rs := range res.Published {
			cp[j] = append([]chute.PublishResult(nil), rs...)
		}
		done = append(done, commit{tx, res, cp})
	}
	for i, c := range done {
		if !reflect.DeepEqual(c.res.Published, c.cp) {
			t.Fatalf("commit %d: results changed to %v, were %v", i, c.res.Published, c.cp)
		}
		if c.tx.ID == "" {
			continue
		}
		again, err := b.Commit(ctx, c.tx)
		if err != nil || !reflect.DeepEqual(again.Published, c.cp) {
			t.Fatalf("retry of %s: %v, %v; want %v", c.tx.ID, again.Published, err, c.cp)
		}
	}
}
