package workload

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// hist is an HDR histogram of latencies in microseconds (1 µs to 1 hour,
// 3 significant digits), safe for concurrent use: done callbacks record
// from the system's client goroutines.
type hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram // guarded by mu
}

// histMax is the largest latency recorded as itself; longer ones are
// recorded as histMax.
const histMax = time.Hour

func newHist() *hist {
	return &hist{h: hdrhistogram.New(1, int64(histMax/time.Microsecond), 3)}
}

// record adds d (at least 1 µs, at most histMax).
func (h *hist) record(d time.Duration) {
	us := min(max(int64(d/time.Microsecond), 1), int64(histMax/time.Microsecond))
	h.mu.Lock()
	_ = h.h.RecordValue(us) // in range by construction
	h.mu.Unlock()
}

// quantile returns the latency at q percent (50, 99, 99.9).
func (h *hist) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.ValueAtQuantile(q)) * time.Microsecond
}

// max returns the largest latency recorded.
func (h *hist) max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.Max()) * time.Microsecond
}

// count returns how many latencies were recorded.
func (h *hist) count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// A stamped body carries, in its first bytes, what the consumer needs to
// measure and check it: when it was sent (nanoseconds on this process's
// monotonic clock, since epoch), its number in its producer's sequence,
// and, for the delayed burst, its delay; for the priority check its
// priority. Producer and consumer are one process reading one clock.
const (
	stampSent     = 0  // int64: since(epoch) at send
	stampSeq      = 8  // uint64: the producer's message number
	stampDelay    = 16 // int64: the requested delay (W5)
	stampPriority = 16 // byte: the priority (W5's priority check)
	stampSize     = 24
)

// epoch is the base of the stamps: time.Since(epoch) reads the monotonic
// clock, which no wall-clock step disturbs.
var epoch = time.Now()

// now is the stamp clock.
func now() time.Duration { return time.Since(epoch) }

// newBody returns a fresh body of size bytes stamped with seq and the
// current time: fresh, because a client may still hold the previous one.
func newBody(size int, seq uint64) []byte {
	b := make([]byte, max(size, stampSize))
	binary.LittleEndian.PutUint64(b[stampSeq:], seq)
	binary.LittleEndian.PutUint64(b[stampSent:], uint64(now()))
	return b
}

// stamp reads a stamped body; ok is false for a body too short to be one.
func stamp(b []byte) (sent time.Duration, seq uint64, ok bool) {
	if len(b) < stampSize {
		return 0, 0, false
	}
	return time.Duration(binary.LittleEndian.Uint64(b[stampSent:])), binary.LittleEndian.Uint64(b[stampSeq:]), true
}

// seen records which sequence numbers a consumer has had, to count each
// message once and tell duplicates apart.
type seen struct {
	bits []uint64
	n    int64 // distinct numbers seen
	dups int64 // numbers seen again
}

// add marks seq and reports whether it is new.
func (s *seen) add(seq uint64) bool {
	w := int(seq / 64)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w-len(s.bits)+1+len(s.bits)/2)...)
	}
	bit := uint64(1) << (seq % 64)
	if s.bits[w]&bit != 0 {
		s.dups++
		return false
	}
	s.bits[w] |= bit
	s.n++
	return true
}
