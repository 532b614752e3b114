package broker_test

import (
	"context"
	"sync"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestMemoryLimitFollowsBacklog: the memory budget is shared by the index
// (counted twice: the heap's headroom) and the body cache, and the Go
// memory limit the broker asks for (Options.MemoryLimit) keeps heap and
// cache within budget plus allowance, never below the index plus the
// allowance (issue 11: a server's resident memory over a backlog).
func TestMemoryLimitFollowsBacklog(t *testing.T) {
	ctx := context.Background()
	const budget = 4 << 20
	var mu sync.Mutex
	var last int64
	b := chutetest.MustOpen(t, t.TempDir(), &broker.Options{MemoryBudget: budget, Sync: broker.SyncNever,
		MemoryLimit: func(n int64) { mu.Lock(); last = n; mu.Unlock() }})
	defer b.Close()
	// The limit follows in steps of an eighth of the budget.
	check := func(when string, cache, limit int64) {
		t.Helper()
		mu.Lock()
		got := last
		mu.Unlock()
		if c := b.Stats().Memory.CacheLimit; c != cache || got > limit || got <= limit-budget/8 {
			t.Fatalf("%s: cache limit %d, memory limit %d; want %d, %d (less at most an eighth of the budget)", when, c, got, cache, limit)
		}
	}
	check("empty", budget, broker.MemoryAllowance) // the cache has the whole budget, the heap the allowance
	mustCreate(t, b, "q", chute.QueueConfig{})
	const n = 150_000 // an index of 6 MB: over the budget, counted twice
	msgs := make([]chute.Message, 1000)
	for i := range msgs {
		msgs[i].Body = []byte("x")
	}
	for range n / len(msgs) {
		mustPublish(t, b, "q", msgs...)
	}
	index := int64(n * broker.IndexBytesPerMessage)
	check("backlog", 0, max(budget, index)+broker.MemoryAllowance)
	if _, err := b.PurgeQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	check("purged", budget, broker.MemoryAllowance)
}
