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
