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

// delayHeap is a min-heap by (at, seq). Messages leave it from the top as
// they come due; a cancel or a salvage takes one from the middle
// (removeAt, found by a scan: those are rare), so no index is kept.
type delayHeap []delayElem

// before orders delayed messages: by the time to look at them again, then
// by sequence.
func (d *delayElem) before(o *delayElem) bool {
	if d.at != o.at {
		return d.at < o.at
	}
	return d.e.seq < o.e.seq
}

func (h delayHeap) len() int { return len(h) }

func (h delayHeap) less(i, j int) bool { return h[i].before(&h[j]) }

func (h delayHeap) swap(i, j int) { h[i], h[j] = h[j], h[i] }

// push and pop sift a hole rather than swapping (heapUp, heapDown): one
// copy of the 72-byte element per level instead of three. When many
// messages come due at once the broker's timer loop pops them all under
// its lock (BenchmarkAdvanceDue: 10,000 due together), and the pops were
// most of that time.

func (h *delayHeap) push(d delayElem) {
	s := append(*h, delayElem{})
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !d.before(&s[p]) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = d
	*h = s
}

func (h *delayHeap) pop() delayElem {
	s := *h
	top := s[0]
	n := len(s) - 1
	x := s[n]
	s[n] = delayElem{}
	s = s[:n]
	if n > 0 {
		i := 0
		for {
			m := 2*i + 1
			if m >= n {
				break
			}
			if r := m + 1; r < n && s[r].before(&s[m]) {
				m = r
			}
			if !s[m].before(&x) {
				break
			}
			s[i] = s[m]
			i = m
		}
		s[i] = x
	} else {
		s = nil
	}
	*h = s
	return top
}
