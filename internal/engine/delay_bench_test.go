package engine

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAdvanceDue: the cost, per message, of Advance making delayed
// messages ready — what the broker's timer loop pays under its lock when
// they come due. "spread": n messages due 200 µs apart, one Advance per
// due time (issue 11's burst: 10,000 over 2 s); "together": n messages
// due at one instant, one Advance for all of them.
func BenchmarkAdvanceDue(b *testing.B) {
	const n = 10000
	for _, together := range []bool{false, true} {
		name := "spread"
		if together {
			name = "together"
		}
		b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
			body := make([]byte, 16)
			step := int64(200 * time.Microsecond)
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				be := newBenchEngine(b, QueueConfig{})
				msgs := make([]PubMsg, 0, 100)
				for i := range n {
					at := be.now + int64(time.Second)
					if !together {
						at += int64(i) * step
					}
					msgs = append(msgs, PubMsg{Body: body, Prio: uint8(i % 10), DeliverAt: at})
					if len(msgs) == cap(msgs) {
						be.publish(b, msgs)
						msgs = msgs[:0]
					}
				}
				b.StartTimer()
				if together {
					be.e.Advance(be.now + int64(time.Second))
				} else {
					for i := range n {
						be.e.Advance(be.now + int64(time.Second) + int64(i)*step)
					}
				}
				b.StopTimer()
				if st, _ := be.e.QueueStats("q"); st.Ready != n {
					b.Fatalf("%d ready, want %d", st.Ready, n)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
