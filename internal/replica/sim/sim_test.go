package sim

import (
	"flag"
	"runtime"
	"strings"
	"testing"
	"time"

	"testing/cryptotest"

	"go.uber.org/goleak"
)

// Reproduce a failing seed with
//
//	go test ./internal/replica/sim -run TestSeeds -sim.seed N -v
//
// and run many by hand with -sim.seeds and -sim.budget (see
// docs/replication.md).
var (
	seedFlag   = flag.Uint64("sim.seed", 0, "run only this seed (0: -sim.seeds seeds from -sim.first)")
	firstFlag  = flag.Uint64("sim.first", 1, "the first seed of the run")
	seedsFlag  = flag.Int("sim.seeds", 300, "how many seeds to run (under -race, 20 unless given)")
	budgetFlag = flag.Duration("sim.budget", 90*time.Second, "stop starting seeds after this long")
	nodesFlag  = flag.Int("sim.nodes", 0, "nodes per cluster (0: 3 for odd seeds, 5 for even)")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs one seed. The Raft library draws its election timeouts from
// crypto/rand: the seed makes that stream deterministic too.
func run(t *testing.T, cfg Config) Outcome {
	cryptotest.SetGlobalRandom(t, cfg.Seed)
	return Run(cfg)
}

func nodesFor(seed uint64) int {
	if *nodesFlag != 0 {
		return *nodesFlag
	}
	if seed%2 == 0 {
		return 5
	}
	return 3
}

// TestSeeds runs the simulation over many seeds, each with faults, and
// fails with the command that reproduces each failing seed.
func TestSeeds(t *testing.T) {
	first, n := *firstFlag, *seedsFlag
	if *seedFlag != 0 {
		first, n = *seedFlag, 1
	}
	if testing.Short() {
		n = min(n, 20)
	}
	// The race detector makes a seed about ten times slower. The README's
	// `go test -race ./...` runs 20 (enough for it to watch the hand-offs
	// between the simulation and the journals' writers); .ci/run runs
	// 1,500 more without it.
	if raceEnabled && !flagSet("sim.seeds") {
		n = min(n, 20)
	}
	// A node's journal writes from a goroutine that the simulation waits
	// for, hand to hand: on one P the hand-offs cost less (measured: 30
	// seeds in 5.6 s against 7.2 s with two).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	start := time.Now()
	var ran, failed int
	var totals Outcome
	for seed := first; seed < first+uint64(n); seed++ {
		if ran > 0 && time.Since(start) > *budgetFlag {
			break
		}
		out := run(t, Config{Seed: seed, Nodes: nodesFor(seed)})
		ran++
		totals.add(out) // Events: the most in one seed
		if *seedFlag != 0 {
			t.Logf("seed %d: %+v", seed, out)
		}
		if len(out.Violations) > 0 {
			failed++
			t.Errorf("seed %d (%d nodes): %d violations; reproduce: go test ./internal/replica/sim -run TestSeeds -sim.seed %d -v", seed, nodesFor(seed), len(out.Violations), seed)
			for i, v := range out.Violations {
				if i == 5 {
					t.Errorf("  … and %d more", len(out.Violations)-5)
					break
				}
				t.Errorf("  %s", v)
			}
		}
	}
	t.Logf("%d seeds from %d in %v, %d failed: confirmed %d, delivered %d, acked %d (dead-lettered %d), crashes %d, partitions %d, leaders %d, hash checks %d, at most %d events in a seed; snapshots %d taken, %d sent, %d restored, at most %d segments after one; disks lost %d, bits flipped %d, logs found damaged %d, members replaced %d; histories linearizable %d, undecided %d; leases extended %d; transactions %d (%d refused as stale)",
		ran, first, time.Since(start).Round(time.Millisecond), failed, totals.Confirmed, totals.Delivered, totals.Acked,
		totals.DeadLettered, totals.Crashes, totals.Partitions, totals.Elections, totals.HashChecks, totals.Events,
		totals.Snapshots, totals.SnapshotsSent, totals.Restores, totals.MaxSegments,
		totals.DisksLost, totals.BitFlips, totals.Damaged, totals.Replacements, totals.LinearChecked, totals.LinearUnknown, totals.Extended,
		totals.Transactions, totals.StaleTx)
	if ran < min(n, 10) {
		t.Fatalf("only %d seeds ran within the budget", ran)
	}
}

// TestDeterministic: a seed replays event for event.
func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{7, 8} {
		a, b := run(t, Config{Seed: seed, Nodes: nodesFor(seed)}), run(t, Config{Seed: seed, Nodes: nodesFor(seed)})
		if a.Trace != b.Trace || a.Confirmed != b.Confirmed || a.Crashes != b.Crashes || a.SimTime != b.SimTime {
			t.Errorf("seed %d ran two ways: %+v and %+v", seed, a, b)
		}
		if c := run(t, Config{Seed: seed + 100, Nodes: nodesFor(seed)}); c.Trace == a.Trace {
			t.Errorf("seeds %d and %d gave the same trace", seed, seed+100)
		}
	}
}

// TestNoFaults: without faults every message is confirmed, delivered and
// acked, nothing is dead-lettered by accident of the network, and every
// replica ends with the same state.
func TestNoFaults(t *testing.T) {
	for _, nodes := range []int{3, 5} {
		out := run(t, Config{Seed: 1, Nodes: nodes, NoFaults: true})
		if len(out.Violations) > 0 {
			t.Fatalf("%d nodes: %v", nodes, out.Violations)
		}
		// Every node snapshots its log (a few hundred entries, one snapshot
		// per compactEvery), and a snapshot leaves it few segments.
		if !out.Drained || out.Confirmed == 0 || out.Acked != out.Confirmed || out.HashChecks < nodes || out.Crashes+out.Partitions != 0 ||
			out.Snapshots < nodes || out.MaxSegments > 3 {
			t.Fatalf("%d nodes: %+v", nodes, out)
		}
	}
}

// TestChecksCatchBugs: the checks fail runs of a system with a planted
// defect, on one of the first ten seeds (it stops at the first).
func TestChecksCatchBugs(t *testing.T) {
	for _, b := range []struct {
		name string
		bug  bug
	}{{"an fsync that lies", bugLyingSync}, {"a replica that skips a command", bugDiverge},
		{"a replica that stores another priority", bugQuietDiverge},
		{"a node that lost its disk rejoins under its old ID", bugRejoinOldID}} {
		caught := uint64(0)
		for seed := uint64(1); seed <= 10 && caught == 0; seed++ {
			if out := run(t, Config{Seed: seed, Nodes: 3, bug: b.bug}); len(out.Violations) > 0 {
				caught = seed
				t.Logf("%s: caught at seed %d: %s", b.name, seed, out.Violations[0])
			}
		}
		if caught == 0 {
			t.Errorf("%s: no violation in 10 seeds", b.name)
		}
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// TestAdminAtLeastOnce: admin commands retried without exactly-once
// numbers apply twice when a first attempt's answer is lost, and the
// linearizability check says so on some of the first 20 seeds.
func TestAdminAtLeastOnce(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		out := run(t, Config{Seed: seed, Nodes: nodesFor(seed), adminAtLeastOnce: true})
		for _, v := range out.Violations {
			if strings.Contains(v, "admin history") {
				t.Logf("seed %d: %s", seed, v)
				return
			}
		}
	}
	t.Fatal("no seed of 20 found the at-least-once admin history not linearizable")
}
