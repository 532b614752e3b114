package engine

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// benchEngine drives the engine as the broker does, without the test
// harness's logging: prepare, encode into a reused buffer, apply.
type benchEngine struct {
	e    *Engine
	now  int64
	buf  []byte
	base uint64
}

func newBenchEngine(tb testing.TB, cfg QueueConfig) *benchEngine {
	b := &benchEngine{e: New(), now: t0}
	if _, err := b.e.CreateQueue(b.now, "q", cfg); err != nil {
		tb.Fatal(err)
	}
	return b
}

func (b *benchEngine) publish(tb testing.TB, msgs []PubMsg) {
	r, _, err := b.e.PreparePublish(b.now, "q", Session{}, msgs)
	if err != nil {
		tb.Fatal(err)
	}
	b.buf = r.Encode(b.buf[:0])
	if err := b.e.Apply(r, b.base); err != nil {
		tb.Fatal(err)
	}
	b.base += uint64(len(b.buf))
	if b.base&0xffffffff > 64<<20 { // 64 MiB "segments"
		b.base = (b.base>>32 + 1) << 32
	}
}

func (b *benchEngine) fill(tb testing.TB, n int, body []byte) {
	batch := make([]PubMsg, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, PubMsg{Body: body})
		if len(batch) == cap(batch) || i == n-1 {
			b.publish(tb, batch)
			batch = batch[:0]
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			be := newBenchEngine(b, QueueConfig{})
			msgs := make([]PubMsg, size)
			for i := range msgs {
				msgs[i] = PubMsg{Body: make([]byte, 256)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				be.publish(b, msgs)
			}
		})
	}
}

// BenchmarkReceiveAck: one receive and one ack per op, with depth held
// near the given size (refilled outside the timer every refill ops).
func BenchmarkReceiveAck(b *testing.B) {
	for _, depth := range []int{1000, 1_000_000} {
		b.Run(fmt.Sprintf("queued=%d", depth), func(b *testing.B) {
			be := newBenchEngine(b, QueueConfig{})
			body := make([]byte, 64)
			be.fill(b, depth, body)
			refill := min(100, depth/10)
			items := make([]Item, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%refill == refill-1 {
					b.StopTimer()
					be.fill(b, refill, body)
					b.StartTimer()
				}
				_, ds, _ := be.e.Receive(be.now, "q", 1, 0)
				items[0] = Item{Seq: ds[0].Seq, Deliv: ds[0].Deliv}
				be.e.Ack(be.now, "q", items)
			}
		})
	}
}

// BenchmarkDelayedComingDue: the cost per message of delays coming due
// (heap pop, into the ready set) and of delivering and acking it.
func BenchmarkDelayedComingDue(b *testing.B) {
	be := newBenchEngine(b, QueueConfig{})
	rng := rand.New(rand.NewPCG(1, 2))
	const span = int64(time.Hour)
	msgs := make([]PubMsg, 1)
	for i := 0; i < b.N; i++ {
		msgs[0] = PubMsg{Body: []byte("x"), DeliverAt: be.now + 1 + rng.Int64N(span)}
		be.publish(b, msgs)
	}
	items := make([]Item, 1)
	b.ReportAllocs()
	b.ResetTimer()
	steps := int64(1000)
	for s := int64(1); s <= steps; s++ {
		be.e.Advance(be.now + span*s/steps)
		for {
			_, ds, _ := be.e.Receive(be.e.Now(), "q", 1, 0)
			if len(ds) == 0 {
				break
			}
			items[0] = Item{Seq: ds[0].Seq, Deliv: ds[0].Deliv}
			be.e.Ack(be.e.Now(), "q", items)
		}
	}
	b.StopTimer()
	if s, _ := be.e.QueueStats("q"); s.Depth() != 0 {
		b.Fatalf("%d left", s.Depth())
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// memoryPerMessage publishes n messages with 128-byte bodies and returns the
// engine's heap growth per message. The engine holds no bodies (they stay
// in the journal), so all of it is overhead.
func memoryPerMessage(tb testing.TB, n int) float64 {
	be := newBenchEngine(tb, QueueConfig{})
	before := heapInUse()
	be.fill(tb, n, make([]byte, 128))
	be.buf = nil
	after := heapInUse()
	if s, _ := be.e.QueueStats("q"); s.Ready != int64(n) {
		tb.Fatalf("ready %d of %d", s.Ready, n)
	}
	runtime.KeepAlive(be)
	return float64(after-before) / float64(n)
}

func BenchmarkMemoryPerReadyMessage(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(memoryPerMessage(b, 1_000_000), "B/msg")
	}
}

// TestMemoryPerReadyMessage holds the engine to its memory budget: at most
// 96 bytes per ready message beyond its body and headers (it is 32 plus
// the fifo's chunk slack).
func TestMemoryPerReadyMessage(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 200_000
	}
	per := memoryPerMessage(t, n)
	t.Logf("%.1f bytes per ready message at %d messages", per, n)
	if per > 96 {
		t.Fatalf("%.1f bytes per ready message, budget 96", per)
	}
}
