package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
)

// The transactional mode: a consume-transform-produce pipeline whose
// every step is one transaction (ack the input of queue "in", publish its
// output "o-ID" to queue "out", both of group "pipe"), killed with SIGKILL
// at random points. After each kill, for every input the broker has,
// either the input is still queued and has no output, or it is acked and
// has exactly one output: never an output without its input acked, never
// an input acked without its output.
//
//	go test ./tests/crash -run TestCrashTx -crash.cycles=100

const txModeEnv = "CHUTE_CRASH_MODE"

var txGroup = chute.QueueConfig{Group: "pipe", MaxDeliveries: -1, VisibilityTimeout: time.Hour}

// txWorker runs the pipeline and reports: "P id" an input confirmed, "t id"
// a commit about to be sent, "T id" a commit confirmed.
func txWorker(dir string) {
	cycle := os.Getenv("CHUTE_CRASH_CYCLE")
	segment, _ := strconv.ParseInt(os.Getenv("CHUTE_CRASH_SEGMENT"), 10, 64)
	b, err := broker.Open(dir, &broker.Options{SegmentSize: segment, CheckpointBytes: segment * 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	for _, q := range []string{"in", "out"} {
		if err := b.CreateQueue(ctx, q, txGroup); err != nil && !errors.Is(err, chute.ErrExists) {
			fmt.Fprintln(os.Stderr, "create:", err)
			os.Exit(1)
		}
	}
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		mu.Unlock()
	}
	fail := func(what string, err error) {
		fmt.Fprintln(os.Stderr, what+":", err)
		os.Exit(1)
	}
	report("R 0 0")
	for p := range 3 {
		go func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("c%s-p%d-%d", cycle, p, n)
				if _, err := b.Publish(ctx, "in", chute.Message{ID: id, Body: []byte(id)}); err != nil {
					fail("publish", err)
				}
				report("P %s", id)
			}
		}()
	}
	for c := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			for {
				ds, err := b.Receive(ctx, "in", chute.ReceiveOptions{Max: 1 + rng.IntN(3)})
				if err != nil {
					fail("receive", err)
				}
				// One transaction per delivery, or one for all of them.
				groups := [][]chute.Delivery{ds}
				if rng.IntN(2) == 0 {
					groups = groups[:0]
					for _, d := range ds {
						groups = append(groups, []chute.Delivery{d})
					}
				}
				for _, g := range groups {
					tx := chute.Tx{ID: "tx-" + g[0].Receipt}
					var outs []chute.Message
					var ids []string
					for _, d := range g {
						tx.Ack = append(tx.Ack, chute.TxAck{Queue: "in", Receipts: []string{d.Receipt}})
						outs = append(outs, chute.Message{ID: "o-" + d.ID, Body: []byte("o-" + d.ID)})
						ids = append(ids, d.ID)
					}
					tx.Publish = []chute.TxPublish{{Target: "out", Messages: outs}}
					report("t %s", strings.Join(ids, " "))
					if _, err := b.Commit(ctx, tx); err != nil {
						fail("commit", err)
					}
					report("T %s", strings.Join(ids, " "))
				}
			}
		}()
	}
	select {}
}

// txTruth is what the parent has seen of the pipeline.
type txTruth struct {
	confirmed map[string]bool
	committed map[string]bool
	commits   int
}

func (t *txTruth) read(line string) error {
	f := strings.Fields(line)
	switch {
	case len(f) == 3 && f[0] == "R":
	case len(f) == 2 && f[0] == "P":
		t.confirmed[f[1]] = true
	case len(f) >= 2 && f[0] == "t":
	case len(f) >= 2 && f[0] == "T":
		t.commits++
		for _, id := range f[1:] {
			t.committed[id] = true
		}
	default:
		return fmt.Errorf("bad line %q", line)
	}
	return nil
}

func TestCrashTx(t *testing.T) {
	rng, dir, exe := crashSetup(t, 3)
	segment := int64(256 << 10)
	tr := &txTruth{confirmed: map[string]bool{}, committed: map[string]bool{}}
	total := 0
	for cycle := 1; cycle <= *cycles; cycle++ {
		events := 50 + rng.IntN(3000)
		n := runAndKillWith(t, exe, dir, cycle, segment, events, tr)
		total += n
		in, out := checkTx(t, dir, segment, tr)
		t.Logf("cycle %d: killed after %d events; %d inputs confirmed, %d committed; %d inputs queued, %d outputs", cycle, n, len(tr.confirmed), len(tr.committed), in, out)
	}
	t.Logf("%d cycles, %d events, %d transactions confirmed, %d inputs confirmed, %d committed", *cycles, total, tr.commits, len(tr.confirmed), len(tr.committed))
}

// runAndKillWith is runAndKill for the transactional worker.
func runAndKillWith(t *testing.T, exe, dir string, cycle int, segment int64, events int, tr lineReader) int {
	t.Helper()
	t.Setenv(txModeEnv, "tx")
	return runAndKill(t, exe, dir, cycle, segment, 0, events, 0, tr)
}

// lineReader takes the lines a worker reports.
type lineReader interface{ read(line string) error }

// checkTx opens the journal as a restart does and checks the pipeline's
// atomicity. It returns how many inputs and outputs are queued.
func checkTx(t *testing.T, dir string, segment int64, tr *txTruth) (int, int) {
	t.Helper()
	b, err := broker.Open(dir, &broker.Options{SegmentSize: segment, MaxBatch: 1 << 20})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer b.Close()
	ctx := context.Background()
	ids := func(q, prefix string) map[string]bool {
		s, err := b.QueueStats(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if s.InFlight != 0 || s.Delayed != 0 {
			t.Fatalf("%s after restart: %d in flight, %d delayed", q, s.InFlight, s.Delayed)
		}
		ds, err := b.Peek(ctx, q, int(s.Ready)+1)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, d := range ds {
			id := strings.TrimPrefix(d.ID, prefix)
			if out[id] {
				t.Fatalf("%s: %s is queued twice", q, d.ID)
			}
			if string(d.Body) != d.ID {
				t.Fatalf("%s: %s has body %q", q, d.ID, d.Body)
			}
			out[id] = true
		}
		return out
	}
	in, out := ids("in", ""), ids("out", "o-")
	for id := range in {
		if out[id] {
			t.Fatalf("input %s is still queued, yet its output was published", id)
		}
		if tr.committed[id] {
			t.Fatalf("input %s came back after its transaction was confirmed", id)
		}
	}
	for id := range tr.confirmed {
		if !in[id] && !out[id] {
			t.Fatalf("input %s was confirmed, and is neither queued nor transformed: acked without its output, or lost", id)
		}
	}
	for id := range tr.committed {
		if !out[id] {
			t.Fatalf("the transaction of %s was confirmed, but its output is missing", id)
		}
	}
	return len(in), len(out)
}
