package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/chutemq/chute/internal/engine"
)

// Linearizability of the commands that have a sequential specification,
// checked with porcupine over each run's history (call and return times
// are the clients', in simulated time; a call that was retried is one
// operation, from its first attempt to its answer).
//
//   - Publishes: every new message takes a sequence above any taken
//     before it in a linearization, so a publish that returned before
//     another was called holds smaller sequences. (That each message is
//     stored once is the checker's; a retried batch may come back as
//     duplicates of its own first attempt.)
//   - Admin: creating and deleting queues is a set: create succeeds iff
//     the queue is absent (else ErrExists), delete iff present (else not
//     found). The admin clients' commands are exactly-once
//     (Command.Client): without that, a retry whose first attempt took
//     effect applies twice, and the history is not linearizable (seeds 8
//     and 15 of the first 20 showed it; TestAdminAtLeastOnce keeps it).

// linearTimeout bounds each check; porcupine's search is exponential in
// the worst case, and an Unknown is counted, not failed.
const linearTimeout = 5 * time.Second

var publishModel = porcupine.Model{
	Init: func() any { return uint64(0) }, // the lowest sequence a new message may take
	Step: func(state, input, output any) (bool, any) {
		next := state.(uint64)
		for _, p := range output.([]engine.PubResult) {
			if p.Seq < next {
				return false, state
			}
			next = p.Seq + 1
		}
		return true, next
	},
	DescribeOperation: func(input, output any) string { return fmt.Sprintf("publish %d → %v", input, output) },
}

type adminInput struct {
	queue  int
	create bool
}

type adminOutput struct {
	err     error
	retried bool // for the visualisation: the call took more than one attempt
}

var adminModel = porcupine.Model{
	Init: func() any { return 0 }, // a bit per queue of adminQueues: present
	Step: func(state, input, output any) (bool, any) {
		present, in, out := state.(int), input.(adminInput), output.(adminOutput)
		bit := 1 << in.queue
		was := present&bit != 0
		var ok bool
		switch {
		case in.create && out.err == nil:
			ok = !was
		case in.create:
			ok = was && errors.Is(out.err, engine.ErrExists)
		case out.err == nil:
			ok = was
		default:
			ok = !was && errors.Is(out.err, engine.ErrQueueNotFound)
		}
		if in.create {
			return ok, present | bit
		}
		return ok, present &^ bit
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v → %v", input, output.(adminOutput).err)
	},
}

type placeInput struct {
	name, shard int
	unplace     bool
}

type placeOutput struct {
	err error
	in  int // a refusal's: the shard the name is in (replica.PlacedError; -1 not known)
}

// placeModel: the directory of a sharded cluster, for placeNames; the
// state is each name's shard plus one (0: not placed), 4 bits a name.
var placeModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		dir, in, out := state.(int), input.(placeInput), output.(placeOutput)
		shift := 4 * in.name
		at := dir >> shift & 15 // its shard + 1, 0: none
		if in.unplace {
			return out.err == nil, dir &^ (15 << shift)
		}
		switch {
		case out.err == nil:
			if at != 0 && at != in.shard+1 {
				return false, dir
			}
			return true, dir&^(15<<shift) | (in.shard+1)<<shift
		case errors.Is(out.err, engine.ErrExists):
			return at != 0 && at != in.shard+1 && (out.in < 0 || at == out.in+1), dir
		}
		return false, dir
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v → %v", input, output.(placeOutput).err)
	},
}

// checkLinear runs the checks; an Illegal history is a violation.
func (c *checker) checkLinear() {
	for _, h := range []struct {
		name  string
		model porcupine.Model
		ops   []porcupine.Operation
	}{{"publish", publishModel, c.publishes}, {"admin", adminModel, c.admin}, {"place", placeModel, c.place}} {
		if len(h.ops) == 0 {
			continue
		}
		switch porcupine.CheckOperationsTimeout(h.model, h.ops, linearTimeout) {
		case porcupine.Illegal:
			c.w.violation("the %s history (%d operations) is not linearizable", h.name, len(h.ops))
		case porcupine.Unknown:
			c.w.out.LinearUnknown++
		default:
			c.w.out.LinearChecked++
		}
	}
}
