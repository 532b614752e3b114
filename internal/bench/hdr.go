package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms of `chute bench run` (issue 11). They are HDR
// histograms (HdrHistogram-go) rather than internal/hist's doubling
// buckets or latency.go's bounded sample: a benchmark is read at p99.9 and
// max, where a factor-of-two bucket says too little and a sample of 20,000
// says nothing, and HDR keeps three significant digits over the whole
// range in a fixed ~190 KB whatever the count.
const (
	// hdrUnit is the resolution: a microsecond, well below the loopback
	// and fsync latencies measured.
	hdrUnit = time.Microsecond
	// hdrMax is the highest value tracked; longer ones are counted as
	// hdrMax (and hdrClamped says how many) rather than dropped, so that a
	// count still adds up.
	hdrMax = time.Hour
	// hdrDigits is the precision: three significant decimal digits.
	hdrDigits = 3
)

// Hist is a latency histogram that many goroutines record into. A mutex
// guards it: recording takes ~50 ns under an uncontended lock, and the
// recorders (one confirm waiter per producer, one receive loop per
// consumer) record at most a few hundred thousand values a second, so
// contention stays negligible, while one histogram per kind (instead of
// one per goroutine) keeps the memory fixed however many producers run.
type Hist struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram // guarded by mu
	clamped int64                   // values above hdrMax, recorded as hdrMax; guarded by mu
}

// NewHist returns an empty histogram tracking 1 µs to an hour.
func NewHist() *Hist {
	return &Hist{h: hdrhistogram.New(1, int64(hdrMax/hdrUnit), hdrDigits)}
}

// Record adds one duration; negative ones count as 0, ones above an hour
// as an hour.
func (h *Hist) Record(d time.Duration) {
	h.mu.Lock()
	h.recordLocked(d)
	h.mu.Unlock()
}

// RecordAll adds several durations under one lock (a consumer records a
// whole delivered batch at once).
func (h *Hist) RecordAll(ds []time.Duration) {
	h.mu.Lock()
	for _, d := range ds {
		h.recordLocked(d)
	}
	h.mu.Unlock()
}

// recordLocked records d; the caller holds h.mu.
func (h *Hist) recordLocked(d time.Duration) {
	v := int64(max(d, 0) / hdrUnit)
	if d > hdrMax {
		v = int64(hdrMax / hdrUnit)
		h.clamped++
	}
	// RecordValue fails only for a value out of range, which the clamp
	// above rules out.
	_ = h.h.RecordValue(v)
}

// Percentiles is a histogram's summary in milliseconds, as `chute bench
// run --json` prints it (field names are stable: scripts read them).
type Percentiles struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
	// Clamped counts values above an hour, recorded as an hour; absent
	// when 0.
	Clamped int64 `json:"clamped,omitempty"`
}

// Summary returns the percentiles so far. It may run while others record
// (the progress line reads p99 once a second).
func (h *Hist) Summary() Percentiles {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.h.TotalCount()
	if n == 0 {
		return Percentiles{}
	}
	ms := func(v int64) float64 { return float64(time.Duration(v)*hdrUnit) / float64(time.Millisecond) }
	// HDR reports a quantile as the highest value equivalent to the bucket
	// it falls in: at three digits, within 0.1% above the true value.
	return Percentiles{
		N:       n,
		Mean:    h.h.Mean() * float64(hdrUnit) / float64(time.Millisecond),
		P50:     ms(h.h.ValueAtQuantile(50)),
		P90:     ms(h.h.ValueAtQuantile(90)),
		P99:     ms(h.h.ValueAtQuantile(99)),
		P999:    ms(h.h.ValueAtQuantile(99.9)),
		Max:     ms(h.h.Max()),
		Clamped: h.clamped,
	}
}
