package main

import "testing"

// TestAfterAll: a rebuild is forgotten only once every shard's node has
// reported its own done, and once.
func TestAfterAll(t *testing.T) {
	calls := 0
	f := afterAll(3, func() { calls++ })
	for i := range 2 {
		f()
		if calls != 0 {
			t.Fatalf("ran after %d of 3 shards", i+1)
		}
	}
	f()
	f() // a fourth report (none is expected): not again
	if calls != 1 {
		t.Fatalf("ran %d times, want once", calls)
	}
}
