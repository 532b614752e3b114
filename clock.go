package chute

import "time"

// Clock is the broker's source of time. The engine never reads a clock:
// the broker stamps every record with Clock.Now and arms one timer for the
// engine's next due event. Tests substitute a fake clock
// (internal/chutetest) to drive delays, leases and TTLs deterministically.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now (at once if
	// d ≤ 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer from a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it does not drain C.
	Stop() bool
}

// SystemClock is the real clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }
