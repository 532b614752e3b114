package engine

// The engine's priority queues (retry sets, delays, leases, expiries,
// queue timers) are binary heaps of different elements; these functions
// are their one implementation of sifting. A heap type says how to compare
// and swap two positions (a swap also updates the position an element
// keeps of itself, where it keeps one, which is what makes removal from
// the middle O(log n)).
type heapSlice interface {
	len() int
	less(i, j int) bool
	swap(i, j int)
}

// heapUp moves the element at i up to its place.
func heapUp[H heapSlice](h H, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.swap(i, p)
		i = p
	}
}

// heapDown moves the element at i down to its place; it reports whether
// it moved.
func heapDown[H heapSlice](h H, i int) bool {
	start, n := i, h.len()
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// heapFix restores order after the element at i changed.
func heapFix[H heapSlice](h H, i int) {
	if !heapDown(h, i) {
		heapUp(h, i)
	}
}
