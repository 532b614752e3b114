package engine

// entry is everything the engine keeps about a queued message while it is
// ready: 32 bytes, no pointers, so a million of them are 32 MB that the
// garbage collector never scans. Body, headers, producer ID and ordering key
// live in the message's blob, which the storage layer holds at ref; the
// engine only counts its size.
type entry struct {
	seq   uint64 // message sequence, unique within the queue
	ref   uint64 // where the blob lives: storage unit (segment) << 32 | offset
	pub   int64  // publish time, unix nanoseconds
	size  uint32 // blob bytes
	deliv uint16 // deliveries so far, saturating at 65535
	prio  uint8  // 0..9
	flags uint8  // fTTL | fKey | fDead | fErr
}

// Entry flags: which side tables hold more about the message, so that the
// common message (no TTL, no key, never failed) costs no lookups.
const (
	fTTL  uint8 = 1 << iota // has an expiry: see queue.expiry while ready
	fKey                    // has an ordering key: see queue.keys
	fDead                   // is a dead letter: see queue.dead
	fErr                    // a nack left an error text: see queue.lastErr
)

// fifoChunk is the unit a fifo grows by: 128 entries, 4 KiB.
const fifoChunk = 128

// fifo is a queue of entries in chunks of fifoChunk, so growth never copies
// entries and a drained fifo gives its memory back chunk by chunk.
type fifo struct {
	chunks [][]entry // chunks[0][head:] … chunks[last][:tail]
	head   int       // index of the first entry in chunks[0]
	n      int       // number of entries
}

func (f *fifo) len() int { return f.n }

func (f *fifo) push(e entry) {
	if len(f.chunks) == 0 || len(f.chunks[len(f.chunks)-1]) == fifoChunk {
		f.chunks = append(f.chunks, make([]entry, 0, fifoChunk))
	}
	last := len(f.chunks) - 1
	f.chunks[last] = append(f.chunks[last], e)
	f.n++
}

// front returns a pointer to the first entry; the fifo must not be empty.
func (f *fifo) front() *entry { return &f.chunks[0][f.head] }

// back returns a pointer to the last entry; the fifo must not be empty.
func (f *fifo) back() *entry {
	c := f.chunks[len(f.chunks)-1]
	return &c[len(c)-1]
}

func (f *fifo) pop() entry {
	e := f.chunks[0][f.head]
	f.head++
	f.n--
	if f.head == fifoChunk || f.n == 0 {
		f.chunks[0] = nil
		f.chunks = f.chunks[1:]
		f.head = 0
		if f.n == 0 {
			f.chunks = nil
		}
	}
	return e
}

// at returns the i-th entry from the front (0 ≤ i < n).
func (f *fifo) at(i int) *entry {
	i += f.head
	return &f.chunks[i/fifoChunk][i%fifoChunk]
}

// each calls fn for every entry front to back until fn returns false.
func (f *fifo) each(fn func(e *entry) bool) {
	for ci, c := range f.chunks {
		start := 0
		if ci == 0 {
			start = f.head
		}
		for i := start; i < len(c); i++ {
			if !fn(&c[i]) {
				return
			}
		}
	}
}

// seqHeap is a binary min-heap of entries by sequence. The ready set uses
// one per priority for messages that return out of publish order (a nack, an
// expired lease, a delay coming due), so that within a priority messages
// still leave in sequence order.
type seqHeap []entry

func (h seqHeap) len() int           { return len(h) }
func (h seqHeap) less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) swap(i, j int)      { h[i], h[j] = h[j], h[i] }

func (h *seqHeap) push(e entry) {
	*h = append(*h, e)
	heapUp(*h, len(*h)-1)
}

func (h *seqHeap) pop() entry {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	heapDown(s, 0)
	if len(s) == 0 {
		s = nil
	}
	*h = s
	return top
}
