package journal

import "sort"

// readCache keeps the most recently written bytes of the journal in memory
// so that a consumer that keeps up reads a fresh message without a system
// call. It is a ring mapped outside the Go heap (the garbage collector
// neither scans it nor counts it towards its goal), Options.CacheBytes
// long, of which the first limit bytes are in use: writes go round
// [0, limit). SetCacheLimit lowers the limit as the broker's index grows,
// so that index and cached bodies share one memory budget; lowering it
// empties the cache and hands the pages past the new limit back to the
// kernel, so resident memory follows the limit.
//
// Only getting the ring from the OS and giving pages back differ by
// platform (mapRing, unmapRing, trimRing, untrimRing): cache_unix.go maps
// it anonymously and returns pages with madvise, whose advice is per OS
// (cache_linux.go, cache_darwin.go, cache_bsd.go); elsewhere, Windows
// included, cache_other.go puts the ring on the Go heap. The ring logic
// below is the same everywhere.
//
// Guarded by Journal.mu.
type readCache struct {
	ring  []byte      // from mapRing; nil when the budget is 0
	limit int         // the ring in use: [0, limit)
	next  int         // where the next bytes go
	spans []cacheSpan // cached runs, oldest first from head
	head  int
	held  int64 // bytes in live spans
}

type cacheSpan struct {
	seg  uint32
	off  int64 // offset in the segment
	at   int   // offset in the ring
	size int
}

func newReadCache(size int64) (*readCache, error) {
	c := &readCache{}
	if size <= 0 {
		return c, nil
	}
	ring, err := mapRing(int(size))
	if err != nil {
		return nil, err
	}
	c.ring, c.limit = ring, int(size)
	return c, nil
}

// add caches data written at (seg, off). Spans go round the ring in order,
// so the oldest (from head) are those just ahead of next: the new bytes
// evict exactly the spans they overlap. Data larger than the ring in use
// is not cached.
func (c *readCache) add(seg uint32, off int64, data []byte) {
	n := len(data)
	if n == 0 || n > c.limit {
		return
	}
	if c.next+n > c.limit {
		// Wrap. The spans between next and the end are the oldest of all;
		// they go first, to keep the spans in age order.
		for c.head < len(c.spans) && c.spans[c.head].at >= c.next {
			c.drop()
		}
		c.next = 0
	}
	start, end := c.next, c.next+n
	for c.head < len(c.spans) {
		if s := &c.spans[c.head]; s.at >= end || s.at+s.size <= start {
			break
		}
		c.drop()
	}
	copy(c.ring[start:end], data)
	c.spans = append(c.spans, cacheSpan{seg: seg, off: off, at: start, size: n})
	c.held += int64(n)
	c.next = end
	if c.head > 64 && c.head*2 > len(c.spans) {
		k := copy(c.spans, c.spans[c.head:])
		c.spans = c.spans[:k]
		c.head = 0
	}
}

func (c *readCache) drop() {
	c.held -= int64(c.spans[c.head].size)
	c.spans[c.head] = cacheSpan{}
	c.head++
}

// setLimit changes the part of the ring in use. Lowering it empties the
// cache and returns the pages past the new limit to the kernel; raising it
// takes them back.
func (c *readCache) setLimit(n int64) {
	n = min(max(n, 0), int64(len(c.ring)))
	switch {
	case int(n) > c.limit:
		untrimRing(c.ring, c.limit, int(n))
		c.limit = int(n)
	case int(n) < c.limit:
		trimRing(c.ring, int(n), c.limit)
		clear(c.spans)
		c.spans, c.head, c.held, c.next = c.spans[:0], 0, 0, 0
		c.limit = int(n)
	}
}

// get returns the n bytes at (seg, off) if they are cached.
func (c *readCache) get(seg uint32, off int64, n int) []byte {
	spans := c.spans[c.head:]
	i := sort.Search(len(spans), func(i int) bool {
		s := &spans[i]
		return s.seg > seg || s.seg == seg && s.off > off
	})
	if i == 0 {
		return nil
	}
	s := &spans[i-1]
	if s.seg != seg || off+int64(n) > s.off+int64(s.size) {
		return nil
	}
	at := s.at + int(off-s.off)
	return c.ring[at : at+n]
}

// bytes is how much of the ring holds live data.
func (c *readCache) bytes() int64 { return c.held }

// size is the part of the ring in use.
func (c *readCache) size() int64 { return int64(c.limit) }

func (c *readCache) close() {
	if c.ring != nil {
		unmapRing(c.ring)
		c.ring, c.spans, c.limit = nil, nil, 0
	}
}
