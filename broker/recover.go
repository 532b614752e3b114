package broker

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
// RecoveryStats describes what the last Open did to recover.
type RecoveryStats struct {
	Checkpoint int           // bytes of checkpoint restored (0: none)
	Records    int           // records replayed after it
	Bytes      int64         // bytes of records replayed after it
	Duration   time.Duration // time Open spent recovering
}

// RecoveryStats reports what Open did to recover the broker's state.
func (b *Broker) RecoveryStats() RecoveryStats { return b.recovery }

func (b *Broker) recover() error {
	start := time.Now()
	from, snap, err := b.jrn.LoadCheckpoint()
	if err != nil {
		return wrapCorrupt(fmt.Errorf("recover: %w", err))
	}
	if snap != nil {
		e, err := engine.Restore(snap)
		if err != nil {
			return wrapCorrupt(fmt.Errorf("recover: checkpoint: %w", err))
		}
		b.eng = e
		b.ckptLastSize.Store(int64(len(snap)))
	}
	var n int
	var replayed int64
	err = b.jrn.Replay(from, func(payload []byte, pos uint64) error {
		r, err := engine.Decode(payload)
		if err != nil {
			return err
		}
		n++
		replayed += int64(len(payload))
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
	b.recovery = RecoveryStats{Checkpoint: len(snap), Records: n, Bytes: replayed, Duration: time.Since(start)}
	if n > 0 || snap != nil {
		b.log.Info("recovered", "checkpoint bytes", len(snap), "records replayed", n, "took", b.recovery.Duration.Round(time.Millisecond))
	}
	return nil
}
