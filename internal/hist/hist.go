// Package hist is the latency histogram the broker keeps for its metrics
// (issue 9): fixed, exponential buckets, no locks or atomics of its own —
// the owner updates it under the lock it already holds for the operation
// (a batch commit, a settlement), so that counting costs nothing extra on
// the hot path — and a snapshot that the metrics package turns into a
// Prometheus histogram and the alert rules into averages and quantiles.
package hist

import (
	"math/bits"
	"sync"
	"time"
)

// Bounds are the buckets' upper bounds: 100 µs × 2^i for i in 0..23,
// 100 µs to about 14 minutes, then +Inf. Doubling keeps a quantile
// estimate within a factor of two; Prometheus's own defaults are coarser.
var Bounds = func() []time.Duration {
	b := make([]time.Duration, 24)
	for i := range b {
		b[i] = 100 * time.Microsecond << i
	}
	return b
}()

// H is a histogram of durations. The zero value is empty and ready.
// It is not safe for concurrent use: its owner's lock guards it.
type H struct {
	counts [25]uint64 // counts[i]: observations ≤ Bounds[i]; the last is +Inf
	sum    time.Duration
	n      uint64
}

// Observe adds one duration (negative ones count as 0).
func (h *H) Observe(d time.Duration) {
	d = max(d, 0)
	h.counts[bucket(d)]++
	h.sum += d
	h.n++
}

// bucket finds the first bound ≥ d. Bucket i holds (B·2^(i-1), B·2^i]
// for B = Bounds[0], so (d-1)/B lies in [2^(i-1), 2^i): its bit length
// is i.
func bucket(d time.Duration) int {
	if d <= Bounds[0] {
		return 0
	}
	return min(bits.Len64(uint64((d-1)/Bounds[0])), len(Bounds))
}

// Snapshot is a copy of a histogram at one moment.
type Snapshot struct {
	Counts [25]uint64 // per bucket, not cumulative; the last is +Inf
	Sum    time.Duration
	Count  uint64
}

// Snapshot copies h.
func (h *H) Snapshot() Snapshot { return Snapshot{Counts: h.counts, Sum: h.sum, Count: h.n} }

// Sub returns s minus an earlier snapshot of the same histogram: what was
// observed between the two (for "over the last minute" figures).
func (s Snapshot) Sub(earlier Snapshot) Snapshot {
	out := Snapshot{Sum: s.Sum - earlier.Sum, Count: s.Count - earlier.Count}
	for i := range s.Counts {
		out.Counts[i] = s.Counts[i] - earlier.Counts[i]
	}
	return out
}

// Avg is the mean duration (0 when empty).
func (s Snapshot) Avg() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}

// Quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation
// inside its bucket, as Prometheus's histogram_quantile does; 0 when
// empty. Observations above the last bound report the last bound.
func (s Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	var seen float64
	for i, c := range s.Counts {
		if c == 0 || seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		if i == len(Bounds) {
			return Bounds[len(Bounds)-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = Bounds[i-1]
		}
		frac := (rank - seen) / float64(c)
		return lo + time.Duration(frac*float64(Bounds[i]-lo))
	}
	return Bounds[len(Bounds)-1]
}

// Cumulative returns the bucket counts as Prometheus wants them: for
// each bound, the observations ≤ it (the +Inf bucket is Count).
func (s Snapshot) Cumulative() []uint64 {
	out := make([]uint64, len(Bounds))
	var run uint64
	for i := range Bounds {
		run += s.Counts[i]
		out[i] = run
	}
	return out
}

// Locked is an H with its own small lock, for observations made outside
// any lock the caller already holds (once per sync or per publish batch,
// not per message).
type Locked struct {
	mu sync.Mutex
	h  H // guarded by mu
}

// Observe adds one duration.
func (l *Locked) Observe(d time.Duration) {
	l.mu.Lock()
	l.h.Observe(d)
	l.mu.Unlock()
}

// Snapshot copies the histogram.
func (l *Locked) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.h.Snapshot()
}
