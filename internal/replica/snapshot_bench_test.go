package replica

import (
	"fmt"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/consensus"
)

// BenchmarkShardSnapshot: a shard holding n messages of 1 KiB (in
// publishes of 250), snapshotted ("whole"), and the part of that a node's
// loop spends on a compaction ("loop": SnapshotLater without its assembly,
// which a server's node leaves to the checkpoint's goroutine). (Grown by
// append, 80,000 took 1.2 s here; sized once, 0.28 s, in the sixteenth
// session; in the eighteenth, -count 3: whole 34–43 ms, loop 2.2 ms.)
func BenchmarkShardSnapshot(b *testing.B) {
	const t0 = int64(1_800_000_000_000_000_000)
	for _, n := range []int{20_000, 80_000} {
		for _, part := range []string{"whole", "loop"} {
			b.Run(fmt.Sprintf("%dx1KiB/%s", n, part), func(b *testing.B) {
				s := NewShard()
				idx := uint64(1)
				apply := func(c Command) {
					if _, err := s.Apply(consensus.Entry{Index: idx, Term: 1, Data: c.Encode(nil)}); err != nil {
						b.Fatal(err)
					}
					idx++
				}
				apply(Command{Op: OpCreateQueue, Queue: "q", Time: t0, Visibility: time.Minute})
				body := make([]byte, 1024)
				for i := 0; i < n; i += 250 {
					msgs := make([]Msg, 250)
					for j := range msgs {
						msgs[j] = Msg{Body: body}
					}
					apply(Command{Op: OpPublish, Queue: "q", Time: t0 + int64(i), Msgs: msgs})
				}
				b.ResetTimer()
				for range b.N {
					if part == "whole" {
						_ = s.Snapshot()
					} else {
						_, _ = s.SnapshotLater()
					}
				}
			})
		}
	}
}
