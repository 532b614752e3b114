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

// expiryOps is an expiry heap with its index, as heapSlice.
type expiryOps struct {
	h  expiryHeap
	ix expiryIndex
}

func (o expiryOps) len() int { return len(o.h) }

func (o expiryOps) less(i, j int) bool {
	if o.h[i].expire != o.h[j].expire {
		return o.h[i].expire < o.h[j].expire
	}
	return o.h[i].e.seq < o.h[j].e.seq
}

func (o expiryOps) swap(i, j int) {
	o.h[i], o.h[j] = o.h[j], o.h[i]
	o.ix[o.h[i].e.seq] = i
	o.ix[o.h[j].e.seq] = j
}

func (h *expiryHeap) push(ix expiryIndex, x expiryElem) {
	ix[x.e.seq] = len(*h)
	*h = append(*h, x)
	heapUp(expiryOps{*h, ix}, len(*h)-1)
}

func (h *expiryHeap) remove(ix expiryIndex, i int) expiryElem {
	s := *h
	last := len(s) - 1
	if i != last {
		expiryOps{s, ix}.swap(i, last)
	}
	x := s[last]
	s = s[:last]
	delete(ix, x.e.seq)
	if i != last {
		heapFix(expiryOps{s, ix}, i)
	}
	if len(s) == 0 {
		s = nil
	}
	*h = s
	return x
}
