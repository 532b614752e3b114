package engine

// entry is everything the engine keeps about a queued message while it is
// ready: 32 bytes, no pointers, so a million of them are 32 MB that the
// garbage collector never scans. Body, headers, message ID and ordering key
// live in the message's blob, which the storage layer holds at ref; the
// engine only counts its size.
type entry struct {
	seq   uint64 // message sequence, unique within the queue
	ref   uint64 // where the blob lives: storage unit (segment) << 32 | offset
	pub   int64  // publish time, unix nanoseconds
	size  uint32 // blob bytes
	deliv uint16 // deliveries so far, saturating at 65535
	prio  uint8  // 0..9
	flags uint8  // fTTL | fKey | fDead | fErr | fRet
}

// Entry flags: which side tables hold more about the message, so that the
// common message (no TTL, no key, never failed) costs no lookups.
const (
	fTTL  uint8 = 1 << iota // has an expiry: see queue.expiry while ready
	fKey                    // has an ordering key: see queue.keys
	fDead                   // is a dead letter: see queue.dead
	fErr                    // a nack left an error text: see queue.lastErr
	fRet                    // returned without counting a delivery: see queue.returned
)

// fifo is the ready set's queue of entries.
type fifo = deque[entry]

// dequeChunk is the unit a deque grows by: 128 elements (4 KiB of entries).
const dequeChunk = 128

// deque is a queue in chunks of dequeChunk elements: pushing never copies
// what is already queued (a growing slice would copy it all at each
// doubling), and popping gives memory back chunk by chunk.
type deque[T any] struct {
	chunks [][]T // chunks[0][head:] … chunks[last]
	head   int   // index of the front element in chunks[0]
	n      int   // number of elements
}

func (d *deque[T]) len() int { return d.n }

func (d *deque[T]) push(v T) {
	if len(d.chunks) == 0 || len(d.chunks[len(d.chunks)-1]) == dequeChunk {
		d.chunks = append(d.chunks, make([]T, 0, dequeChunk))
	}
	last := len(d.chunks) - 1
	d.chunks[last] = append(d.chunks[last], v)
	d.n++
}

// front returns the first element; the deque must not be empty.
func (d *deque[T]) front() *T { return &d.chunks[0][d.head] }

// back returns the last element; the deque must not be empty.
func (d *deque[T]) back() *T {
	c := d.chunks[len(d.chunks)-1]
	return &c[len(c)-1]
}

func (d *deque[T]) pop() T {
	var zero T
	v := d.chunks[0][d.head]
	d.chunks[0][d.head] = zero
	d.head++
	d.n--
	if d.head == dequeChunk || d.n == 0 {
		d.chunks[0] = nil
		d.chunks = d.chunks[1:]
		d.head = 0
		if d.n == 0 {
			d.chunks = nil
		}
	}
	return v
}

// at returns the i-th element from the front (0 ≤ i < n).
func (d *deque[T]) at(i int) *T {
	i += d.head
	return &d.chunks[i/dequeChunk][i%dequeChunk]
}

// each calls fn for every element front to back until fn returns false.
func (d *deque[T]) each(fn func(v *T) bool) {
	for ci, c := range d.chunks {
		start := 0
		if ci == 0 {
			start = d.head
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
