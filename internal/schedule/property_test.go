package schedule

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// The property tests compare Pending, Prev, Due and Set with a brute-force
// reference: the slots listed one by one over a few hours, and the firing
// rule applied to that list.

var propBases = []time.Time{
	at("2026-01-01T00:00:00Z"),
	at("2026-03-28T22:00:00Z"), // Berlin springs forward at 01:00Z on the 29th
	at("2026-10-24T22:00:00Z"), // Berlin falls back at 01:00Z on the 25th
	at("2026-11-01T03:00:00Z"), // New York falls back at 06:00Z
}

const propHorizon = 4 * time.Hour

func drawSchedule(rt *rapid.T, name string) (*Schedule, []time.Time) {
	created := rapid.SampledFrom(propBases).Draw(rt, "base").Add(time.Duration(rapid.Int64Range(0, 7200).Draw(rt, "createdSec")) * time.Second)
	var spec Spec
	if rapid.Bool().Draw(rt, "every") {
		e := time.Duration(rapid.IntRange(1, 900).Draw(rt, "everySec")) * time.Second
		spec.Every = e
		spec.Jitter = time.Duration(rapid.Int64Range(0, int64(e)-1).Draw(rt, "jitter")) * rapid.SampledFrom([]time.Duration{0, 1}).Draw(rt, "jitterOn")
	} else {
		spec.Cron = rapid.SampledFrom([]string{
			"*/7 * * * * *", "13 */3 * * * *", "0 30 * * * *", "@hourly", "*/10 * 1-2 * * *",
			"0 * 1,2 * * *", "30 2 * * *", "*/5 * * * *", "@every 97s", "0 0 * * * *",
		}).Draw(rt, "cron")
		spec.TimeZone = rapid.SampledFrom([]string{"", "Europe/Berlin", "America/New_York"}).Draw(rt, "zone")
		spec.Jitter = time.Duration(rapid.Int64Range(0, int64(90*time.Second)).Draw(rt, "jitter"))
	}
	spec.Missed = MissedPolicy(rapid.IntRange(0, 1).Draw(rt, "missed"))
	s, err := Compile(name, spec, created)
	if err != nil {
		rt.Fatalf("Compile(%+v): %v", spec, err)
	}
	// The reference list: every slot in (created, created+horizon], walked.
	var slots []time.Time
	end := created.Add(propHorizon)
	if s.every > 0 {
		for x := s.Created().Add(time.Duration(s.every) * time.Second); !x.After(end); x = x.Add(time.Duration(s.every) * time.Second) {
			slots = append(slots, x)
		}
	} else {
		for x := s.Next(created); !x.IsZero() && !x.After(end); x = s.Next(x) {
			if len(slots) > 0 && !x.After(slots[len(slots)-1]) {
				rt.Fatalf("Next not increasing: %v after %v", x, slots[len(slots)-1])
			}
			slots = append(slots, x)
		}
	}
	return s, slots
}

// drawSeconds draws a duration of up to max seconds, often whole, else a
// nanosecond either side of a second or half way.
func drawSeconds(rt *rapid.T, label string, max int64) time.Duration {
	return time.Duration(rapid.Int64Range(0, max).Draw(rt, label))*time.Second +
		time.Duration(rapid.SampledFrom([]int64{0, 0, 0, 1, 500000000, 999999999}).Draw(rt, label+"Nanos"))
}

// refPending is the firing rule applied to the listed slots; ok is false
// when the answer lies beyond the list.
func refPending(s *Schedule, slots []time.Time, last, since time.Time) (time.Time, bool) {
	if len(slots) == 0 || slots[len(slots)-1].Before(since) {
		return time.Time{}, false // the list does not reach since
	}
	var missed []time.Time
	for _, x := range slots {
		if x.After(last) && x.Before(since) {
			missed = append(missed, x)
		}
	}
	after := last
	switch {
	case len(missed) > 0 && s.spec.Missed == MissedOnce:
		return missed[len(missed)-1], true
	case len(missed) > 0:
		after = since.Add(-time.Nanosecond) // first slot ≥ since
	}
	for _, x := range slots {
		if x.After(after) {
			return x, true
		}
	}
	return time.Time{}, false
}

func TestPropertyPending(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, slots := drawSchedule(rt, "p")
		if len(slots) < 2 {
			return
		}
		var last time.Time
		if i := rapid.IntRange(-1, len(slots)-1).Draw(rt, "lastIdx"); i >= 0 {
			last = slots[i]
		}
		span := int64(propHorizon / time.Second)
		since := s.Created().Add(drawSeconds(rt, "since", span))
		if since.Before(last) {
			since = last.Add(drawSeconds(rt, "gap", 3600))
		}
		want, ok := refPending(s, slots, last, since)
		if !ok {
			return
		}
		if got := s.Pending(last, since); !got.Equal(want) {
			rt.Fatalf("Pending(%v, %v) = %v, want %v (%+v)", last, since, got, want, s.spec)
		}
		now := want.Add(time.Duration(rapid.Int64Range(-int64(time.Minute), int64(3*time.Minute)).Draw(rt, "now")))
		if slot, due := s.Due(last, since, now); !slot.Equal(want) || due != !now.Before(s.FireAt(want)) {
			rt.Fatalf("Due(%v, %v, %v) = %v, %v", last, since, now, slot, due)
		}
		if d := s.FireAt(want).Sub(want); d < 0 || (d > 0 && d >= s.spec.Jitter) {
			rt.Fatalf("jitter %v out of [0, %v)", d, s.spec.Jitter)
		}
		// Prev against the list.
		before := s.Created().Add(drawSeconds(rt, "before", span))
		var wantPrev time.Time
		for _, x := range slots {
			if x.Before(before) {
				wantPrev = x
			}
		}
		if got := s.Prev(before); !got.Equal(wantPrev) {
			rt.Fatalf("Prev(%v) = %v, want %v (%+v)", before, got, wantPrev, s.spec)
		}
	})
}

// popOne pops one due firing, as a broker that fires one at a time would.
func popOne(set *Set, now time.Time) (Firing, bool) {
	if wake, ok := set.Peek(); !ok || wake.After(now) {
		return Firing{}, false
	}
	fs := set.PopDue(now)
	for _, f := range fs[1:] {
		set.Retry(f, now) // back in, same slot, still due
	}
	return fs[0], true
}

// TestPropertySet runs a Set of random schedules through random ticks,
// confirming or retrying each firing, and checks each schedule fired
// exactly its reference slots, in order, never before their FireAt.
func TestPropertySet(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(rt, "n")
		started := propBases[0].Add(time.Duration(rapid.Int64Range(0, int64(3*time.Hour)).Draw(rt, "started")))
		set := NewSet(started)
		scheds := map[string]*Schedule{}
		lists := map[string][]time.Time{}
		want := map[string][]time.Time{}
		got := map[string][]time.Time{}
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			s, slots := drawSchedule(rt, name)
			// Rebase on propBases[0] so that all share one timeline.
			if !s.Created().Before(propBases[0].Add(2*time.Hour + time.Second)) {
				continue
			}
			var last time.Time
			if k := rapid.IntRange(-1, len(slots)-1).Draw(rt, "lastIdx"); k >= 0 && slots[k].Before(started) {
				last = slots[k]
			}
			scheds[name], lists[name] = s, slots
			set.Add(name, s, last)
			// The reference sequence from last on, until the list ends.
			if x, ok := refPending(s, slots, last, started); ok {
				i := slices.IndexFunc(slots, x.Equal)
				want[name] = slots[i:]
			}
		}
		now := started
		for range rapid.IntRange(0, 60).Draw(rt, "ticks") {
			fail := rapid.Bool().Draw(rt, "fail") // the tick's first firing fails
			for f, ok := popOne(set, now); ok; f, ok = popOne(set, now) {
				s := scheds[f.Name]
				if s.FireAt(f.Slot).After(now) {
					rt.Fatalf("%s: slot %v popped at %v before its FireAt", f.Name, f.Slot, now)
				}
				if fail {
					fail = false
					set.Retry(f, now.Add(time.Second))
					continue
				}
				got[f.Name] = append(got[f.Name], f.Slot)
				if !set.Fired(f) {
					rt.Fatalf("Fired(%v) = false", f)
				}
			}
			if wake, ok := set.Peek(); ok && !wake.After(now) {
				rt.Fatalf("Peek = %v, not after %v after PopDue", wake, now)
			}
			now = now.Add(time.Duration(rapid.Int64Range(1, 90).Draw(rt, "tick"))*time.Second +
				time.Duration(rapid.SampledFrom([]int64{0, 0, 1, 499999999}).Draw(rt, "tickNanos")))
		}
		// Drain at end: everything due by then fires, late if need be.
		end := now
		for fs := set.PopDue(end); len(fs) > 0; fs = set.PopDue(end) {
			for _, f := range fs {
				got[f.Name] = append(got[f.Name], f.Slot)
				set.Fired(f)
			}
		}
		for name, s := range scheds {
			g, w := got[name], want[name]
			// Compare the prefix both cover: the reference stops at the
			// list's end, the Set at end.
			k := min(len(g), len(w))
			for i := range k {
				if !g[i].Equal(w[i]) {
					rt.Fatalf("%s (%+v): firing %d = %v, want %v\ngot  %v\nwant %v", name, s.spec, i, g[i], w[i], g, w)
				}
			}
			// The first slot not fired was not due by end. (Later ones may
			// have been, with a jitter larger than the gap: slots fire in
			// order.)
			if k < len(w) && !s.FireAt(w[k]).After(end) {
				rt.Fatalf("%s: slot %v (fire %v) not fired by %v; got %v", name, w[k], s.FireAt(w[k]), end, g)
			}
		}
	})
}
