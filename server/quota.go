package server

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// quota is a token's publish quota: a token bucket of messages and one of
// request bytes (golang.org/x/time/rate), each holding one second's worth
// (at least one message, one byte).
//
// A call is admitted when each bucket holds what the call needs, or is
// full: a call larger than a bucket (a 1000-message batch on a 100
// messages/s token) is admitted when the bucket is full and leaves it in
// debt for the rest, so the long-run rate holds whatever the batch size
// and no batch is refused for ever. Unary publishes over quota are
// refused (ResourceExhausted, reason QUOTA: the client backs off and
// retries); a stream's publishes wait for their turn instead, which slows
// the stream through HTTP/2 flow control rather than failing it.
type quota struct {
	now   func() time.Time
	rate  float64 // messages/s, for messages; 0: none
	bytes float64 // bytes/s; 0: none

	mu   sync.Mutex // makes check-then-charge atomic
	msgs *rate.Limiter
	size *rate.Limiter
}

// newQuota returns the quota for a token, nil if it has none.
func newQuota(msgsPerSec, bytesPerSec float64, now func() time.Time) *quota {
	if msgsPerSec <= 0 && bytesPerSec <= 0 {
		return nil
	}
	q := &quota{now: now, rate: msgsPerSec, bytes: bytesPerSec}
	q.msgs, q.size = bucket(msgsPerSec), bucket(bytesPerSec)
	return q
}

func bucket(perSec float64) *rate.Limiter {
	if perSec <= 0 {
		return nil
	}
	burst := math.Ceil(perSec)
	if burst > math.MaxInt32 {
		burst = math.MaxInt32
	}
	return rate.NewLimiter(rate.Limit(perSec), max(1, int(burst)))
}

// admit charges a publish of n messages and size bytes if the buckets
// allow it now; if not, it charges nothing and returns how long until
// they will.
func (q *quota) admit(n, size int) (wait time.Duration, ok bool) {
	now := q.now()
	q.mu.Lock()
	defer q.mu.Unlock()
	wait = max(shortfall(q.msgs, now, n), shortfall(q.size, now, size))
	if wait > 0 {
		return wait, false
	}
	charge(q.msgs, now, n)
	charge(q.size, now, size)
	return 0, true
}

// shortfall is how long until l holds min(n, burst) tokens; 0 if it does.
func shortfall(l *rate.Limiter, now time.Time, n int) time.Duration {
	if l == nil || n <= 0 {
		return 0
	}
	need := float64(min(n, l.Burst()))
	have := l.TokensAt(now)
	if have >= need {
		return 0
	}
	d := time.Duration((need - have) / float64(l.Limit()) * float64(time.Second))
	return max(d, time.Millisecond)
}

// charge takes n tokens from l at now, in pieces no larger than its
// burst; past what it holds, the bucket goes into debt.
func charge(l *rate.Limiter, now time.Time, n int) {
	if l == nil {
		return
	}
	for n > 0 {
		k := min(n, l.Burst())
		l.ReserveN(now, k)
		n -= k
	}
}

// String describes the quota for an error message: "10 messages/s".
func (q *quota) String() string {
	switch {
	case q.rate > 0 && q.bytes > 0:
		return fmt.Sprintf("%g messages/s, %g bytes/s", q.rate, q.bytes)
	case q.rate > 0:
		return fmt.Sprintf("%g messages/s", q.rate)
	}
	return fmt.Sprintf("%g bytes/s", q.bytes)
}
