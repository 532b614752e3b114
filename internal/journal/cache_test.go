package journal

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestReadCacheRing writes runs of random sizes round a small ring and
// checks after each that whatever the cache still answers is right, and
// that the most recent writes (up to half the ring) are always answered.
func TestReadCacheRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c, err := newReadCache(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	type run struct {
		seg  uint32
		off  int64
		data []byte
	}
	var runs []run
	seg, off := uint32(1), int64(32)
	for i := range 5000 {
		n := 1 + rng.IntN(700)
		if i%97 == 0 {
			seg, off = seg+1, 32
		}
		data := make([]byte, n)
		for k := range data {
			data[k] = byte(rng.IntN(256))
		}
		c.add(seg, off, data)
		runs = append(runs, run{seg, off, data})
		off += int64(n)
		recent := 0
		for k := len(runs) - 1; k >= 0 && k >= len(runs)-40; k-- {
			r := runs[k]
			got := c.get(r.seg, r.off, len(r.data))
			recent += len(r.data)
			if got == nil && recent <= 2048 {
				t.Fatalf("write %d: run %d (%d bytes back) evicted too early", i, k, recent)
			}
			if got != nil && !bytes.Equal(got, r.data) {
				t.Fatalf("write %d: run %d answered with wrong bytes", i, k)
			}
			// A sub-range, as a blob read asks.
			if len(r.data) > 10 {
				if got := c.get(r.seg, r.off+5, 5); got != nil && !bytes.Equal(got, r.data[5:10]) {
					t.Fatalf("write %d: run %d sub-range wrong", i, k)
				}
			}
		}
	}
}

func TestReadAtFromMemoryAndFiles(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{CacheBytes: 8 << 10, SegmentSize: 64 << 10})
	rng := rand.New(rand.NewPCG(5, 6))
	var want []rec
	for i := range 400 {
		p := payload(rng, i)
		pos, b, err := j.Append(p)
		if err != nil {
			t.Fatal(err)
		}
		// Readable at once, before the write completes.
		if got, err := j.ReadAt(pos, len(p)); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("read of a pending record: %v", err)
		}
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec{pos, p})
	}
	for _, r := range want {
		if got, err := j.ReadAt(r.pos, len(r.payload)); err != nil || !bytes.Equal(got, r.payload) {
			t.Fatalf("read %x: %v", r.pos, err)
		}
	}
	st := j.Stats()
	if st.CacheHits == 0 || st.FileReads == 0 || st.CacheBytes > 8<<10 {
		t.Fatalf("stats %+v: want reads from both memory and files within the budget", st)
	}
}

func TestReadCacheLimit(t *testing.T) {
	c, err := newReadCache(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	data := bytes.Repeat([]byte("x"), 1000)
	off := int64(0)
	for range 2000 {
		c.add(1, off, data)
		off += 1000
	}
	if c.bytes() > 1<<20 || c.get(1, off-1000, 1000) == nil {
		t.Fatalf("held %d; newest cached: %v", c.bytes(), c.get(1, off-1000, 1000) != nil)
	}
	c.setLimit(100 << 10)
	if c.bytes() != 0 || c.get(1, off-1000, 1000) != nil {
		t.Fatal("lowering the limit must empty the cache")
	}
	for range 500 {
		c.add(1, off, data)
		off += 1000
		if c.bytes() > 100<<10 {
			t.Fatalf("held %d above the 100 KiB limit", c.bytes())
		}
	}
	if got := c.get(1, off-1000, 1000); !bytes.Equal(got, data) {
		t.Fatal("newest write not cached under the lower limit")
	}
	c.setLimit(0)
	c.add(1, off, data)
	if c.bytes() != 0 {
		t.Fatal("a zero limit caches nothing")
	}
}

// TestReadCacheLimitRaisedAgain lowers the limit to a point inside a page
// (so that the pages past it are handed back to the OS, where the
// platform can) and raises it again: the ring must take the pages back and
// cache correctly over its whole length.
func TestReadCacheLimitRaisedAgain(t *testing.T) {
	const size = 256 << 10
	c, err := newReadCache(size)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	fill := func(b byte) {
		t.Helper()
		data := bytes.Repeat([]byte{b}, 1000)
		for i := range int64(size / 1000) {
			c.add(uint32(b), i*1000, data)
		}
		for i := range int64(size / 1000) {
			if got := c.get(uint32(b), i*1000, 1000); !bytes.Equal(got, data) {
				t.Fatalf("fill %d: run %d not cached or wrong", b, i)
			}
		}
	}
	fill(1)
	c.setLimit(5000 + 123)
	if c.size() != 5123 || c.bytes() != 0 {
		t.Fatalf("after lowering: size %d, held %d", c.size(), c.bytes())
	}
	c.setLimit(size)
	if c.size() != size {
		t.Fatalf("after raising: size %d", c.size())
	}
	fill(2)
	c.setLimit(1 << 40) // above the ring: clamped
	if c.size() != size {
		t.Fatalf("limit above the ring: size %d", c.size())
	}
}
