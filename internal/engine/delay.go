package engine

// delayElem is a message waiting for its due time: a first delivery that was
// published with a delay, or a retry waiting out its back-off.
type delayElem struct {
	at     int64 // when to look at it again: min(due, expire)
	due    int64
	expire int64 // 0: never
	e      entry
	key    *keyState
	active bool // a retry of a key's current message: it keeps the key
}

// delayHeap is a min-heap by (at, seq). Delayed messages are never removed
// from the middle (a purge clears the whole heap), so no index is kept.
type delayHeap []delayElem

func (h delayHeap) len() int { return len(h) }

func (h delayHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].e.seq < h[j].e.seq
}

func (h delayHeap) swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *delayHeap) push(d delayElem) {
	*h = append(*h, d)
	heapUp(*h, len(*h)-1)
}

func (h *delayHeap) pop() delayElem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = delayElem{}
	s = s[:last]
	heapDown(s, 0)
	if len(s) == 0 {
		s = nil
	}
	*h = s
	return top
}
