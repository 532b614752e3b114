package engine

// expiryElem is a ready message that has an expiry. It carries a copy of the
// entry, so that expiring it needs nothing from the fifo or heap that holds
// it (that copy is left behind as a gone entry).
type expiryElem struct {
	expire int64
	e      entry
	key    *keyState // the message's ordering key, if any
}

// expiryHeap is a min-heap by (expire, seq) of ready messages with an expiry,
// with a map from seq to position so that delivering one removes it in
// O(log n). Only messages with a TTL pay for it.
type expiryHeap []expiryElem

type expiryIndex map[uint64]int

func (h expiryHeap) less(i, j int) bool {
	if h[i].expire != h[j].expire {
		return h[i].expire < h[j].expire
	}
	return h[i].e.seq < h[j].e.seq
}

func (h expiryHeap) swap(ix expiryIndex, i, j int) {
	h[i], h[j] = h[j], h[i]
	ix[h[i].e.seq] = i
	ix[h[j].e.seq] = j
}

func (h expiryHeap) up(ix expiryIndex, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.swap(ix, i, p)
		i = p
	}
}

func (h expiryHeap) down(ix expiryIndex, i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(ix, i, m)
		i = m
	}
	return i > start
}

func (h *expiryHeap) push(ix expiryIndex, x expiryElem) {
	ix[x.e.seq] = len(*h)
	*h = append(*h, x)
	h.up(ix, len(*h)-1)
}

func (h *expiryHeap) remove(ix expiryIndex, i int) expiryElem {
	s := *h
	last := len(s) - 1
	if i != last {
		s.swap(ix, i, last)
	}
	x := s[last]
	s = s[:last]
	delete(ix, x.e.seq)
	if i != last && !s.down(ix, i) {
		s.up(ix, i)
	}
	if len(s) == 0 {
		s = nil
	}
	*h = s
	return x
}
