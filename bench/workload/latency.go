package workload

import (
	"fmt"
	"slices"
	"time"
)

// recorder keeps a bounded sample of latencies per worker (no lock on the
// hot path: each worker writes its own slot; summary runs after they stop).
type recorder struct {
	samples [][]time.Duration
}

const maxSamples = 20000

func newRecorder(workers int) *recorder {
	return &recorder{samples: make([][]time.Duration, workers)}
}

func (r *recorder) add(w int, d time.Duration) {
	if s := r.samples[w]; len(s) < maxSamples {
		r.samples[w] = append(s, d)
	}
}

// Latencies summarises a sample.
type Latencies struct {
	N             int
	P50, P99, Max time.Duration
}

func (l Latencies) String() string {
	return fmt.Sprintf("p50 %v  p99 %v", l.P50.Round(time.Microsecond), l.P99.Round(time.Microsecond))
}

func (r *recorder) summary() Latencies {
	var all []time.Duration
	for _, s := range r.samples {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return Latencies{}
	}
	slices.Sort(all)
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	return Latencies{N: len(all), P50: at(0.50), P99: at(0.99), Max: all[len(all)-1]}
}
