package broker_test

import (
	"context"
	"sync"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestMemoryBudget: the memory budget is shared by the index (counted
// twice: the heap's headroom) and the body cache; when the broker owns the
// process (Options.MemoryLimit) the cache also yields to the rest of the
// heap, and the Go memory limit keeps heap and cache within budget plus
// allowance — never below one and a half times the live heap, plus what
// the runtime holds besides the heap (issue 11: a server's resident memory
// over a backlog; a limit below the goroutines' stacks starved the
// collector).
func TestMemoryBudget(t *testing.T) {
	ctx := context.Background()
	const budget = 4 << 20
	const allowance = broker.MemoryAllowance
	var mu sync.Mutex
	var last int64
	b := chutetest.MustOpen(t, t.TempDir(), &broker.Options{MemoryBudget: budget, Sync: broker.SyncNever,
		MemoryLimit: func(n int64) { mu.Lock(); last = n; mu.Unlock() }})
	defer b.Close()
	broker.SetHeap(b, 0, 0) // not this test process's heap: samples see what the test sets
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
	check("empty", budget, allowance) // the cache has the whole budget; the heap the allowance
	mustCreate(t, b, "q", chute.QueueConfig{})
	const n = 150_000 // an index of 6 MB: over the budget
	msgs := make([]chute.Message, 1000)
	for i := range msgs {
		msgs[i].Body = []byte("x")
	}
	for range n / len(msgs) {
		mustPublish(t, b, "q", msgs...)
	}
	index := int64(n * broker.IndexBytesPerMessage)
	check("backlog", 0, max(budget, index)+allowance)
	if _, err := b.PurgeQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	check("purged", budget, allowance)

	// The cache yields to the rest of the heap, counted twice: heap and
	// cache share budget plus allowance.
	const other = 8 << 20 // stacks and the runtime's own
	broker.SetHeap(b, allowance/4, other)
	check("heap of a quarter of the allowance", budget, allowance+other)
	// (No backlog: all that is live churns.)
	live := int64(budget+allowance)/2 - budget/4
	broker.SetHeap(b, live, other)
	check("heap leaving half the budget to the cache", budget/2, budget+allowance-budget/2+other)
	// A live heap past budget and allowance, none of it the index: the
	// limit gives it as much again.
	live = 2 * (budget + allowance)
	broker.SetHeap(b, live, other)
	check("heap of twice budget and allowance", 0, 2*live+other)
}
