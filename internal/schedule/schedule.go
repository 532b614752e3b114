package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a compiled Spec: immutable, safe for concurrent use. Every
// time it returns is in UTC; a zero time means "no such slot".
type Schedule struct {
	name    string
	spec    Spec
	created int64 // Unix second; slots are strictly after it
	every   int64 // interval schedules: seconds between slots; 0 for cron
	cron    *cron.SpecSchedule
	loc     *time.Location
	seed    uint64 // nameSeed(name): the jitter's seed
}

// Name returns the name given to Compile.
func (s *Schedule) Name() string { return s.name }

// Spec returns the spec given to Compile.
func (s *Schedule) Spec() Spec { return s.spec }

// Created returns the creation time, truncated to the second.
func (s *Schedule) Created() time.Time { return unix(s.created) }

// SlotSeq returns a slot's sequence: its Unix second. The broker publishes
// a slot's firing with it as the producer-session sequence.
func SlotSeq(slot time.Time) uint64 { return uint64(slot.Unix()) }

// SlotTime is the inverse of SlotSeq.
func SlotTime(seq uint64) time.Time { return unix(int64(seq)) }

// Next returns the first slot strictly after after (and after creation),
// or the zero time if there is none (a cron schedule matching no time in
// the five years after after, such as 30 February).
func (s *Schedule) Next(after time.Time) time.Time {
	return timeOf(s.nextSec(after.Unix())) // floor: a slot is > after iff > after.Unix()
}

// Prev returns the latest slot strictly before before (and after
// creation), or the zero time if there is none.
func (s *Schedule) Prev(before time.Time) time.Time {
	return timeOf(s.prevSec(ceilUnix(before)))
}

// FireAt returns when slot fires: slot plus a jitter in [0, Jitter) that
// depends only on the schedule's name and the slot's sequence.
func (s *Schedule) FireAt(slot time.Time) time.Time {
	if s.spec.Jitter <= 0 {
		return slot
	}
	return slot.Add(s.jitter(SlotSeq(slot)))
}

// Pending returns the slot to fire next, given the last slot fired (zero
// if none yet) and since, the start of the broker process (or the time
// the schedule was resumed): the first slot after last, unless it fell
// before since, in which case the MissedPolicy chooses. It returns the zero
// time if the schedule has no more slots.
func (s *Schedule) Pending(last, since time.Time) time.Time {
	return timeOf(s.pendingSec(last.Unix(), ceilUnix(since)))
}

// Due reports whether a slot is due at now, and which: the Pending slot,
// once now has reached its FireAt. The broker fires it, records it as last,
// and asks again.
func (s *Schedule) Due(last, since, now time.Time) (slot time.Time, ok bool) {
	slot = s.Pending(last, since)
	if slot.IsZero() {
		return slot, false
	}
	return slot, !now.Before(s.FireAt(slot))
}

// NextFire returns when the broker should wake for this schedule: the
// FireAt of the Pending slot, or the zero time if there is none.
func (s *Schedule) NextFire(last, since time.Time) time.Time {
	slot := s.Pending(last, since)
	if slot.IsZero() {
		return slot
	}
	return s.FireAt(slot)
}

// The rest works in Unix seconds (slots are whole seconds; 0 = none),
// which is what Set keeps.

// nextSec returns the first slot > a, or 0.
func (s *Schedule) nextSec(a int64) int64 {
	if a < s.created {
		a = s.created
	}
	if s.every > 0 {
		return s.created + ((a-s.created)/s.every+1)*s.every
	}
	n := s.cron.Next(time.Unix(a, 0).UTC())
	if n.IsZero() {
		return 0
	}
	return n.Unix()
}

// prevSec returns the latest slot < b, or 0. Interval schedules use
// arithmetic; cron schedules, since robfig has no Prev, search windows
// doubling back from b until one holds a slot, then bisect that window:
// O(log(b − slot)) calls of robfig's Next, so ten years of downtime cost
// about 60 calls.
func (s *Schedule) prevSec(b int64) int64 {
	if b-1 <= s.created {
		return 0
	}
	if s.every > 0 {
		k := (b - 1 - s.created) / s.every
		if k < 1 {
			return 0
		}
		return s.created + k*s.every
	}
	// has(x): is there a slot in (x, b)? False for x = b−1; monotone.
	has := func(x int64) bool {
		n := s.nextSec(x)
		return n != 0 && n < b
	}
	lo, hi := b-1, b-1 // has(lo) is wanted true; has(hi) is false
	for step := int64(1); ; step *= 2 {
		lo = b - step
		if lo <= s.created {
			lo = s.created
			if !has(lo) {
				return 0
			}
			break
		}
		if has(lo) {
			break
		}
		hi = lo
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if has(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1 // a slot in (lo, b) but none in (lo+1, b): it is lo+1
}

// pendingSec is Pending with last a Unix second (0 = none) and since
// rounded up to one.
func (s *Schedule) pendingSec(last, since int64) int64 {
	next := s.nextSec(last)
	if next == 0 || next >= since {
		return next
	}
	if s.spec.Missed == MissedOnce {
		return s.prevSec(since) // the latest missed slot: ≥ next > last
	}
	return s.nextSec(since - 1) // the first slot ≥ since
}

// fireNanos is FireAt in Unix nanoseconds.
func (s *Schedule) fireNanos(slot int64) int64 {
	return slot*int64(time.Second) + int64(s.jitter(uint64(slot)))
}

// jitter returns the jitter of the slot with sequence seq.
func (s *Schedule) jitter(seq uint64) time.Duration {
	if s.spec.Jitter <= 0 {
		return 0
	}
	return time.Duration(mix(s.seed, seq) % uint64(s.spec.Jitter))
}

// mix is splitmix64's finalizer over the seed and a slot sequence. It is
// part of the contract that fire times do not move across versions.
func mix(seed, seq uint64) uint64 {
	z := seed ^ (seq * 0x9e3779b97f4a7c15)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func unix(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

// timeOf is unix, with 0 (no slot) as the zero time.
func timeOf(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return unix(sec)
}

// ceilUnix returns the smallest Unix second not before t.
func ceilUnix(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}
