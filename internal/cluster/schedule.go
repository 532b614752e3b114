package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/schedule"
)

// Schedules in a cluster: the shard keeps each schedule and the last slot
// it fired (commands), and the leader's timer proposes each firing as a
// command (OpFire: the schedule's name and the slot), which every replica
// applies as a publish in the schedule's producer session. The engine
// refuses a slot at or below the last one stored, so a firing proposed
// twice (by a leader that was deposed meanwhile, and by the next) is
// stored once.
//
// The leader's side is a scheduler: the timer heap (schedule.Set) of the
// shard's schedules, built when the node starts leading and kept up to
// date as schedule commands apply; the loop proposes what is due at each
// turn (so at most a tick late), and settles each firing when it applies.
// A node that stops leading drops it.

// scheduleCatchUp bounds how far back a new leader fires slots it finds
// missed: those since the last command the shard applied (a failover),
// but no earlier than this; slots before follow each schedule's missed-run
// policy, as downtime does for a broker.
const scheduleCatchUp = 5 * time.Second

// retryFire is how long a firing that failed for a transient reason waits
// before it is proposed again.
const retryFire = time.Second

type scheduler struct {
	set      *schedule.Set
	compiled map[string]*schedule.Schedule
	skipped  map[string]int64
	lastErr  map[string]string
	buf      []schedule.Firing
}

// newScheduler builds the leader's scheduler from the shard's schedules
// at now.
func newScheduler(sh *replica.Shard, now time.Time) *scheduler {
	started := time.Unix(0, sh.Now())
	if floor := now.Add(-scheduleCatchUp); started.Before(floor) {
		started = floor
	}
	if started.After(now) {
		started = now
	}
	sc := &scheduler{set: schedule.NewSet(started), compiled: map[string]*schedule.Schedule{},
		skipped: map[string]int64{}, lastErr: map[string]string{}}
	for _, st := range sh.Schedules() {
		sc.add(st)
	}
	return sc
}

func (sc *scheduler) add(st engine.ScheduleState) {
	c, err := engine.AddSchedule(sc.set, st)
	if err != nil {
		sc.lastErr[st.Name] = err.Error()
		return
	}
	sc.compiled[st.Name] = c
}

// applied keeps the set up to date with a schedule command applied
// (whoever proposed it).
func (sc *scheduler) applied(sh *replica.Shard, res replica.Result) {
	if res.Err != nil {
		return
	}
	name := res.Cmd.Queue
	switch res.Cmd.Op {
	case replica.OpCreateSchedule:
		if st, ok := sh.Schedule(name); ok {
			sc.add(st)
		}
	case replica.OpDeleteSchedule:
		sc.set.Remove(name)
		delete(sc.compiled, name)
		delete(sc.skipped, name)
		delete(sc.lastErr, name)
	case replica.OpPauseSchedule:
		sc.set.Pause(name)
	case replica.OpResumeSchedule:
		sc.set.Resume(name, time.Unix(0, res.Time))
	}
}

// due returns the firings due at now (each to be proposed, then settled
// with fired).
func (sc *scheduler) due(now time.Time) []schedule.Firing {
	sc.buf = sc.set.AppendDue(sc.buf[:0], now)
	return sc.buf
}

// fired settles firing f by the result of its command (res.Err nil and
// err nil: stored, or a duplicate of a slot stored before) or by err, the
// node's error when it could not be proposed or its outcome is unknown.
func (sc *scheduler) fired(f schedule.Firing, res replica.Result, err error, now time.Time) {
	if err == nil {
		err = res.Err
	}
	switch {
	case err == nil:
		sc.set.Fired(f)
	case errors.Is(err, chute.ErrNotFound) || errors.Is(err, chute.ErrQueueFull) ||
		errors.Is(err, chute.ErrInvalidMessage) || errors.Is(err, chute.ErrMessageTooLarge):
		// Passed over, as the broker does: the schedule goes on with its
		// next slot.
		sc.skipped[f.Name]++
		sc.lastErr[f.Name] = fmt.Sprintf("slot %s: %v", f.Slot.Format(time.RFC3339), err)
		sc.set.Fired(f)
	case errors.Is(err, chute.ErrScheduleNotFound):
		sc.set.Remove(f.Name)
	default:
		sc.lastErr[f.Name] = fmt.Sprintf("slot %s: %v (retrying)", f.Slot.Format(time.RFC3339), err)
		sc.set.Retry(f, now.Add(retryFire))
	}
}

// info is what chute shows of the shard's schedules, with this leader's
// view of when each fires next.
func (sc *scheduler) info(sh *replica.Shard) []chute.ScheduleInfo {
	all := sh.Schedules()
	out := make([]chute.ScheduleInfo, len(all))
	for i, st := range all {
		out[i] = engine.ScheduleInfoOf(st, sc.set, sc.compiled[st.Name])
		out[i].Skipped, out[i].LastError = sc.skipped[st.Name], sc.lastErr[st.Name]
	}
	return out
}

// Schedules is every schedule with its progress, from the leader (a
// follower answers with a *NotLeaderError).
func (n *Node) Schedules(ctx context.Context) ([]chute.ScheduleInfo, error) {
	var out []chute.ScheduleInfo
	var err error
	if lerr := n.onLoop(ctx, func() {
		if st := n.rn.Status(); !st.IsLeader || n.sched == nil {
			err = &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
			return
		}
		out = n.sched.info(n.rep.Shard())
	}); lerr != nil {
		return nil, lerr
	}
	return out, err
}
