package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/chutemq/chute"
)

// TestSettledLogModel checks the settled log's lookups (two map
// generations over the order deque) against a plain map of what it must
// remember, through forgetting by cap and by age, re-settled sequences and
// the maps' rotations.
func TestSettledLogModel(t *testing.T) {
	for _, c := range []struct {
		name          string
		window, limit int64
	}{{"cap", 1 << 62, 50}, {"window", 40, 0}, {"both", 70, 30}, {"unbounded", 1 << 62, 0}} {
		t.Run(c.name, func(t *testing.T) {
			seed := uint64(len(c.name))
			rng := rand.New(rand.NewPCG(seed, 7))
			var s settledLog
			type want struct {
				seq uint64
				rec settledRec
			}
			var model []want // oldest first
			now := int64(0)
			for i := range 3000 {
				now += int64(rng.IntN(3))
				seq := uint64(rng.IntN(400)) + 1 // repeats: a sequence settled again
				rec := settledRec{at: now, state: chute.MessageAcked, movedSeq: uint64(i)}
				s.add(seq, rec, c.window, c.limit)
				for len(model) > 0 && model[0].rec.at+c.window <= now {
					model = model[1:]
				}
				model = append(model, want{seq, rec})
				if c.limit > 0 && len(model) > int(c.limit) {
					model = model[len(model)-int(c.limit):]
				}
				if s.len() != len(model) {
					t.Fatalf("seed %d step %d: %d remembered, want %d", seed, i, s.len(), len(model))
				}
				newest := map[uint64]settledRec{}
				for _, w := range model {
					newest[w.seq] = w.rec
				}
				for q := uint64(1); q <= 401; q++ {
					got, ok := s.get(q)
					exp, eok := newest[q]
					if ok != eok || got != exp {
						t.Fatalf("seed %d step %d: get(%d) = %+v, %v; want %+v, %v", seed, i, q, got, ok, exp, eok)
					}
				}
				if n := len(s.m) + len(s.old); c.limit > 0 && n > 2*int(c.limit)+1 {
					t.Fatalf("step %d: the maps hold %d entries for a cap of %d", i, n, c.limit)
				}
			}
		})
	}
}
