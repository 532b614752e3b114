package broker_test

import (
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestSyncDelayOption: Options.SyncDelay reaches the journal (a publish
// right behind another's sync waits out the delay: JournalStats counts
// it), and a negative SyncDelay turns the delay off.
func TestSyncDelayOption(t *testing.T) {
	for _, tc := range []struct {
		delay time.Duration
		want  bool
	}{{time.Second, true}, {-1, false}} {
		b := chutetest.MustOpen(t, t.TempDir(), &broker.Options{SyncDelay: tc.delay})
		mustCreate(t, b, "q", chute.QueueConfig{})
		// Each publish after the first comes right behind the sync of the
		// one before, well within a second: with the delay on, its sync
		// waits (the first wait counts even alone; a few tries for a
		// machine that stalls between two calls).
		for i := 0; i < 4 && b.JournalStats().SyncDelays == 0; i++ {
			mustPublish(t, b, "q", chute.Message{Body: []byte("m")})
		}
		if got := b.JournalStats().SyncDelays > 0; got != tc.want {
			t.Errorf("SyncDelay %v: %d delays", tc.delay, b.JournalStats().SyncDelays)
		}
	}
}
