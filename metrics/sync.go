package metrics

import "github.com/chutemq/chute/internal/hist"

// SyncHistogram is the journal's fdatasync latency. Give its Observe to
// broker.Options.OnSync and the histogram to Options.Sync. It takes its
// own small lock once per sync (a group commit's, not a message's).
type SyncHistogram struct{ hist.Locked }
