package engine

// lease is a delivered message held by a consumer until its deadline.
type lease struct {
	e        entry // e.deliv already counts this delivery
	deadline int64
	expire   int64 // the message's expiry, kept for when it returns; 0: never
	key      *keyState
	idx      int    // position in leaseQ
	start    int64  // when the lease began (unix ns; 0: unknown, restored from a checkpoint): statistics only
	holder   string // who holds it (ReceiveAs; "" unknown): for lookups only, not state
}

// leaseHeap is a min-heap by (deadline, seq) that keeps each lease's index on
// the lease, so an ack removes it in O(log n).
type leaseHeap []*lease

func (h leaseHeap) len() int { return len(h) }

func (h leaseHeap) less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].e.seq < h[j].e.seq
}

func (h leaseHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *leaseHeap) push(l *lease) {
	l.idx = len(*h)
	*h = append(*h, l)
	heapUp(*h, l.idx)
}

func (h *leaseHeap) remove(i int) *lease {
	s := *h
	last := len(s) - 1
	if i != last {
		s.swap(i, last)
	}
	l := s[last]
	s[last] = nil
	s = s[:last]
	if i != last {
		heapFix(s, i)
	}
	if len(s) == 0 {
		s = nil
	}
	*h = s
	l.idx = -1
	return l
}

// fix restores heap order after h[i].deadline changed.
func (h leaseHeap) fix(i int) { heapFix(h, i) }
