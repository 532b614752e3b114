// Package schedule decides when periodic schedules fire. It is the pure,
// clock-free half of chute's periodic schedules (issue 13, item 1): no
// goroutines, timers, files or time.Now. Every function takes the times it
// needs, so the broker, replay, tests and simulation drive it alike.
//
// # Slots
//
// A schedule is a series of slots: nominal times at whole seconds, all
// strictly after the schedule's creation. A cron schedule's slots are the
// times its expression matches (robfig/cron/v3's parser and Next, in the
// schedule's time zone); an interval schedule's slots are created + k·Every,
// k ≥ 1, aligned to the creation second, not to the epoch. A slot is
// identified by SlotSeq, its Unix second: unique and increasing, so the
// broker publishes the firing of a slot in the schedule's producer session
// with SlotSeq as the sequence, and a slot can never fire twice.
//
// # The firing rule
//
// The broker keeps, per schedule, the last slot it fired (durably, as the
// session's sequence) and knows when its process started. Pending(last,
// since) is the one slot to fire next:
//
//   - While the broker runs, every slot fires, in order, late if need be,
//     never skipped.
//   - Slots before since (the process start, or a resume) fell during
//     downtime and follow the MissedPolicy: MissedSkip fires none of them
//     and goes on from the first slot at or after since; MissedOnce fires
//     only the latest of them, once, then goes on.
//
// A slot fires at FireAt(slot): the slot plus a jitter in [0, Jitter) that
// is a hash of the schedule's name and the slot's sequence, so it is the
// same after a restart. Whether a slot was missed is decided by its nominal
// time, not its jittered one.
//
// Costs: Next and FireAt are O(1) for interval schedules and one robfig Next
// for cron. Finding the latest slot before a time (Prev, used by
// MissedOnce) is arithmetic for intervals and O(log gap) robfig Next calls
// for cron (exponential, then binary search): after ten years of downtime,
// an every-second schedule needs no work per missed slot (about sixty Next
// calls for cron). Set, the timer heap the broker uses for many schedules,
// is O(log n) per operation.
//
// The rules, time zones and daylight saving time are written down for users
// in docs/schedules.md.
package schedule
