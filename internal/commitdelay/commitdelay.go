// Package commitdelay is the rule of a commit delay (as PostgreSQL's
// commit_delay), shared by the journal's writer (one broker's syncs) and a
// cluster node's loop (a Raft group's batches): when the writer, idle, is
// woken less than Delay after its last sync ended, it waits until Delay
// has passed since then, and what arrives meanwhile shares one sync.
//
// It waits only on an idle wake: a writer that goes from one sync
// straight to the next batch already carries what came during the sync,
// and the first arrival after a quiet spell is not held up. A wait pays
// only when others arrive during it: one caller that waits for each sync
// before sending the next (a publisher waiting for each confirm) would
// pay the delay every time and gain nothing. So after FruitlessLimit
// waits in a row during which nothing arrived, the writer stops waiting,
// and tries one wait again every ProbeEvery wakes to see whether others
// arrive by then. Why a delay at all, and what it measured on this
// project's machine: internal/journal/syncdelay.go.
package commitdelay

import "time"

const (
	// FruitlessLimit fruitless waits in a row stop the waits ...
	FruitlessLimit = 3
	// ... until one in ProbeEvery idle wakes tries again.
	ProbeEvery = 16
)

// Rule is one writer's commit delay. Its zero value (Delay 0) never
// waits. It is not safe for concurrent use: its writer owns it.
type Rule struct {
	Delay time.Duration

	synced             time.Time // when the last sync ended
	fruitless, skipped int
}

// Synced records that a sync ended at t.
func (r *Rule) Synced(t time.Time) { r.synced = t }

// Wait is how long a writer woken idle at now waits before it takes what
// woke it: 0 (not at all) unless its last sync ended less than Delay
// before now and waits have been paying. A positive answer must be
// followed by Waited.
func (r *Rule) Wait(now time.Time) time.Duration {
	if r.Delay <= 0 || r.synced.IsZero() {
		return 0
	}
	wait := r.Delay - now.Sub(r.synced)
	if wait <= 0 || wait > r.Delay { // long enough ago (or the clock stepped back)
		return 0
	}
	if r.fruitless >= FruitlessLimit {
		if r.skipped++; r.skipped < ProbeEvery {
			return 0
		}
		r.skipped = 0
	}
	return wait
}

// Waited records whether anything arrived during the wait Wait asked for.
func (r *Rule) Waited(arrived bool) {
	if arrived {
		r.fruitless = 0
	} else {
		r.fruitless++
	}
}
