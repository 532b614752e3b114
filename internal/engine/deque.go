package engine

// deque is a queue in chunks of dequeChunk elements: pushing never copies
// what is already queued (a growing slice would copy it all at each
// doubling), and popping frees memory chunk by chunk.
type deque[T any] struct {
	chunks [][]T
	head   int // index of the front element in chunks[0]
	n      int
}

const dequeChunk = 512

func (d *deque[T]) len() int { return d.n }

func (d *deque[T]) push(v T) {
	if len(d.chunks) == 0 || len(d.chunks[len(d.chunks)-1]) == dequeChunk {
		d.chunks = append(d.chunks, make([]T, 0, dequeChunk))
	}
	last := len(d.chunks) - 1
	d.chunks[last] = append(d.chunks[last], v)
	d.n++
}

// front returns the front element; the deque must not be empty.
func (d *deque[T]) front() *T { return &d.chunks[0][d.head] }

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

// each calls fn for every element, front to back.
func (d *deque[T]) each(fn func(v *T)) {
	for ci, c := range d.chunks {
		start := 0
		if ci == 0 {
			start = d.head
		}
		for i := start; i < len(c); i++ {
			fn(&c[i])
		}
	}
}
