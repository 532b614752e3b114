package chute

import (
	"fmt"
	"time"

	"github.com/chutemq/chute/internal/engine"
)

// recover replays the journal into the engine.
//
// Every record is applied at the time it carries, never at the clock's
// time, so a delay or a lease deadline means after the restart what it
// meant before. Then the engine advances to now (timers that came due
// while the broker was down fire, in due order), and, if any leases
// survived the replay, a release-leases record ends them: a lease does not
// outlive the process that granted it, and its message is ready again
// (with its delivery count, which counts towards max deliveries).
func (b *Broker) recover() error {
	start := time.Now()
	var n int
	err := b.jrn.Replay(0, func(payload []byte, pos uint64) error {
		r, err := engine.Decode(payload)
		if err != nil {
			return err
		}
		n++
		return b.eng.Apply(r, pos)
	})
	if err != nil {
		return wrapCorrupt(fmt.Errorf("recover: %w", err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.nowLocked()
	b.eng.Advance(now)
	if b.eng.HasLeases() {
		if _, err := b.commitLocked(b.eng.ReleaseLeases(now)); err != nil {
			return fmt.Errorf("recover: release leases: %w", err)
		}
	}
	if n > 0 {
		b.log.Info("recovered journal", "records", n, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
