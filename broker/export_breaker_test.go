package broker

// BreakerTickedAt is the broker time of the breaker loop's last
// evaluation, for tests that advance a fake clock and wait for it.
func BreakerTickedAt(b *Broker) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.brk.lastTick
}

// IndexBytesPerMessage is what the memory budget counts per queued message.
const IndexBytesPerMessage = indexBytesPerMessage

// SetHeap makes the broker see a heap of live bytes and nonHeap bytes
// besides it at its heap samples, and samples now.
func SetHeap(b *Broker, live, nonHeap int64) {
	b.mu.Lock()
	b.readHeap = func() (int64, int64) { return live, nonHeap }
	b.mu.Unlock()
	b.sampleHeap()
}
