package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/replica"
)

// BenchmarkCommit: one publish of one 256-byte message at a time through
// a 3-node cluster on loopback (real journals, synced): the time from Do
// to its result is one commit round. Reported as p50-µs and p99-µs.
func BenchmarkCommit(b *testing.B) {
	c := newTestClusterCompacting(b, 3, 100_000)
	if res := c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute}); res.Err != nil {
		b.Fatal(res.Err)
	}
	l := c.leader()
	ctx := context.Background()
	body := make([]byte, 256)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		res, err := l.node.Do(ctx, replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: body}}})
		if err == nil {
			err = res.Err
		}
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
