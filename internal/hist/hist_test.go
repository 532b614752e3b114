package hist

import (
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {-time.Second, 0}, {100 * time.Microsecond, 0}, {101 * time.Microsecond, 1},
		{200 * time.Microsecond, 1}, {201 * time.Microsecond, 2}, {time.Second, 14}, {time.Hour, 24},
	} {
		if got := bucket(c.d); got != c.want {
			t.Errorf("bucket(%v) = %d, want %d (bounds %v, %v)", c.d, got, c.want, bound(got-1), bound(got))
		}
	}
	for i, b := range Bounds { // every bound lands in its own bucket
		if got := bucket(b); got != i {
			t.Errorf("bucket(bound %v) = %d, want %d", b, got, i)
		}
		if got := bucket(b + 1); got != i+1 {
			t.Errorf("bucket(bound %v + 1ns) = %d, want %d", b, got, i+1)
		}
	}
}

func bound(i int) time.Duration {
	if i < 0 || i >= len(Bounds) {
		return -1
	}
	return Bounds[i]
}

func TestQuantileAndAvg(t *testing.T) {
	var h H
	for range 99 {
		h.Observe(time.Millisecond)
	}
	h.Observe(time.Second)
	s := h.Snapshot()
	if s.Count != 100 || s.Sum != 99*time.Millisecond+time.Second {
		t.Fatalf("count %d sum %v", s.Count, s.Sum)
	}
	if avg := s.Avg(); avg != (99*time.Millisecond+time.Second)/100 {
		t.Errorf("avg %v", avg)
	}
	// The median lies in the bucket of 1 ms (0.8–1.6 ms).
	if p50 := s.Quantile(0.5); p50 < 800*time.Microsecond || p50 > 1600*time.Microsecond {
		t.Errorf("p50 %v, want about 1ms", p50)
	}
	// The maximum lies in the bucket of 1 s (0.82–1.64 s).
	if p100 := s.Quantile(1); p100 < 800*time.Millisecond || p100 > 1700*time.Millisecond {
		t.Errorf("p100 %v, want about 1s", p100)
	}
	before := s
	h.Observe(time.Second)
	d := h.Snapshot().Sub(before)
	if d.Count != 1 || d.Sum != time.Second || d.Quantile(0.99) < 800*time.Millisecond {
		t.Errorf("difference %+v", d)
	}
	if cum := h.Snapshot().Cumulative(); cum[len(cum)-1] != 101 || cum[0] != 0 {
		t.Errorf("cumulative %v", cum)
	}
	var empty Snapshot
	if empty.Quantile(0.99) != 0 || empty.Avg() != 0 {
		t.Error("an empty histogram reports a figure")
	}
}

func BenchmarkObserve(b *testing.B) {
	var h H
	for i := range b.N {
		h.Observe(time.Duration(i%100000) * time.Microsecond)
	}
}
