package metrics

import (
	"sync"
	"time"

	"github.com/chutemq/chute/internal/hist"
)

// SyncHistogram is the journal's fdatasync latency. Give its Observe to
// broker.Options.OnSync and the histogram to Options.Sync. It takes its
// own small lock once per sync (a group commit's, not a message's).
type SyncHistogram struct {
	mu sync.Mutex
	h  hist.H // guarded by mu
}

// Observe adds one sync's duration.
func (s *SyncHistogram) Observe(d time.Duration) {
	s.mu.Lock()
	s.h.Observe(d)
	s.mu.Unlock()
}

// Snapshot copies the histogram.
func (s *SyncHistogram) Snapshot() hist.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Snapshot()
}
