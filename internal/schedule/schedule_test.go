package schedule

import (
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestNextDescriptors(t *testing.T) {
	created := t0.Add(7 * time.Second)
	after := at("2026-05-13T10:20:30Z") // a Wednesday
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Cron: "@hourly"}, "2026-05-13T11:00:00Z"},
		{Spec{Cron: "@daily"}, "2026-05-14T00:00:00Z"},
		{Spec{Cron: "@midnight"}, "2026-05-14T00:00:00Z"},
		{Spec{Cron: "@weekly"}, "2026-05-17T00:00:00Z"}, // Sunday
		{Spec{Cron: "@monthly"}, "2026-06-01T00:00:00Z"},
		{Spec{Cron: "@yearly"}, "2027-01-01T00:00:00Z"},
		{Spec{Cron: "@annually"}, "2027-01-01T00:00:00Z"},
		{Spec{Cron: "@every 30s"}, "2026-05-13T10:20:37Z"}, // aligned to created (:07)
		{Spec{Every: 30 * time.Second}, "2026-05-13T10:20:37Z"},
		{Spec{Cron: "*/15 * * * *"}, "2026-05-13T10:30:00Z"},
		{Spec{Cron: "30 */15 * * * *"}, "2026-05-13T10:30:30Z"},
		{Spec{Cron: "@daily", TimeZone: "Europe/Berlin"}, "2026-05-13T22:00:00Z"},
		{Spec{Cron: "0 9 * * *", TimeZone: "America/New_York"}, "2026-05-13T13:00:00Z"},
	} {
		s := mustCompile(t, "n", tc.spec, created)
		if got := s.Next(after); !got.Equal(at(tc.want)) || got.Location() != time.UTC {
			t.Errorf("%+v: Next(%v) = %v, want %s", tc.spec, after, got, tc.want)
		}
		// Strictly after: from the slot itself, the next one is later.
		if got := s.Next(at(tc.want)); !got.After(at(tc.want)) {
			t.Errorf("%+v: Next(slot) = %v, not after %s", tc.spec, got, tc.want)
		}
		// A time before creation gives the first slot after creation.
		if got := s.Next(time.Time{}); !got.After(created) || !s.Prev(got).IsZero() {
			t.Errorf("%+v: first slot %v; Prev of it %v", tc.spec, got, s.Prev(got))
		}
	}
}

func TestEveryAlignment(t *testing.T) {
	created := at("2026-03-01T12:00:07.900Z") // truncated to 12:00:07
	s := mustCompile(t, "a", Spec{Every: time.Minute}, created)
	for _, tc := range []struct{ after, next, prev string }{
		{"2000-01-01T00:00:00Z", "2026-03-01T12:01:07Z", ""},
		{"2026-03-01T12:00:07.5Z", "2026-03-01T12:01:07Z", ""},
		{"2026-03-01T12:01:06.999Z", "2026-03-01T12:01:07Z", ""},
		{"2026-03-01T12:01:07Z", "2026-03-01T12:02:07Z", ""},
		{"2026-03-01T12:01:07.001Z", "2026-03-01T12:02:07Z", "2026-03-01T12:01:07Z"},
		{"2026-03-02T00:00:00Z", "2026-03-02T00:00:07Z", "2026-03-01T23:59:07Z"},
	} {
		if got := s.Next(at(tc.after)); !got.Equal(at(tc.next)) {
			t.Errorf("Next(%s) = %v, want %s", tc.after, got, tc.next)
		}
		got := s.Prev(at(tc.after))
		if (tc.prev == "" && !got.IsZero()) || (tc.prev != "" && !got.Equal(at(tc.prev))) {
			t.Errorf("Prev(%s) = %v, want %q", tc.after, got, tc.prev)
		}
	}
	if !s.Created().Equal(at("2026-03-01T12:00:07Z")) {
		t.Errorf("Created() = %v", s.Created())
	}
}

func TestSlotSeq(t *testing.T) {
	slot := at("2026-05-13T10:20:37Z")
	if seq := SlotSeq(slot); seq != uint64(slot.Unix()) || !SlotTime(seq).Equal(slot) {
		t.Errorf("SlotSeq(%v) = %d, SlotTime = %v", slot, seq, SlotTime(seq))
	}
}

// TestPrevMatchesWalk checks the cron search backwards against a walk
// forwards, including a dense run of slots followed by a long gap.
func TestPrevMatchesWalk(t *testing.T) {
	for _, spec := range []Spec{
		{Cron: "* 0-5 * * *"},
		{Cron: "*/7 * 3 * * *"},
		{Cron: "0 30 2 * * *", TimeZone: "Europe/Berlin"},
		{Cron: "13 * * * * *", TimeZone: "America/New_York"},
		{Cron: "0 0 1 */3 *"},
	} {
		s := mustCompile(t, "p", spec, t0)
		var slots []time.Time
		for x := s.Next(t0); x.Before(at("2026-04-02T00:00:00Z")); x = s.Next(x) {
			slots = append(slots, x)
		}
		i := 0
		for _, before := range []time.Time{t0, t0.Add(time.Hour), at("2026-03-10T23:00:00Z"), at("2026-03-29T01:00:00.5Z"),
			at("2026-03-29T03:00:00Z"), at("2026-04-01T00:00:00Z"), at("2026-04-01T05:59:59Z")} {
			for i < len(slots) && slots[i].Before(before) {
				i++
			}
			var want time.Time
			if i > 0 {
				want = slots[i-1]
			}
			if got := s.Prev(before); !got.Equal(want) {
				t.Errorf("%+v: Prev(%v) = %v, want %v", spec, before, got, want)
			}
		}
	}
}

func TestJitter(t *testing.T) {
	const j = 10 * time.Second
	a := mustCompile(t, "alpha", Spec{Every: time.Minute, Jitter: j}, t0)
	a2 := mustCompile(t, "alpha", Spec{Every: time.Minute, Jitter: j}, t0) // after a restart
	b := mustCompile(t, "beta", Spec{Every: time.Minute, Jitter: j}, t0)
	none := mustCompile(t, "alpha", Spec{Every: time.Minute}, t0)
	var lo, hi, same time.Duration = j, 0, 0
	slot := t0
	for range 2000 {
		slot = a.Next(slot)
		d := a.FireAt(slot).Sub(slot)
		if d < 0 || d >= j {
			t.Fatalf("FireAt(%v) − slot = %v, outside [0, %v)", slot, d, j)
		}
		if !a2.FireAt(slot).Equal(a.FireAt(slot)) {
			t.Fatalf("FireAt(%v) differs between two compiles of the same schedule", slot)
		}
		if b.FireAt(slot).Equal(a.FireAt(slot)) {
			same++
		}
		if !none.FireAt(slot).Equal(slot) {
			t.Fatalf("no jitter: FireAt(%v) = %v", slot, none.FireAt(slot))
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > j/50 || hi < j-j/50 || same > 2 {
		t.Errorf("jitter spread [%v, %v] of [0, %v); %d equal between names", lo, hi, j, same)
	}
}

func TestDue(t *testing.T) {
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	var zero time.Time
	for _, tc := range []struct {
		name             string
		spec             Spec
		last, since, now time.Time
		slot             time.Time
		ok               bool
	}{
		{"first slot not yet", Spec{Every: time.Minute}, zero, t0, sec(59), m(1), false},
		{"first slot", Spec{Every: time.Minute}, zero, t0, m(1), m(1), true},
		{"late while running: never skipped", Spec{Every: time.Minute}, m(1), t0, m(10), m(2), true},
		{"skip: first slot after start", Spec{Every: time.Minute}, m(1), sec(630), m(10), m(11), false},
		{"skip: slot at start counts", Spec{Every: time.Minute}, m(1), m(10), m(10), m(10), true},
		{"skip: never fired, down since creation", Spec{Every: time.Minute}, zero, sec(630), m(11), m(11), true},
		{"once: latest missed, on start", Spec{Every: time.Minute, Missed: MissedOnce}, m(1), sec(630), sec(630), m(10), true},
		{"once: then on", Spec{Every: time.Minute, Missed: MissedOnce}, m(10), sec(630), sec(630), m(11), false},
		{"once: nothing missed", Spec{Every: time.Minute, Missed: MissedOnce}, m(9), sec(570), sec(570), m(10), false},
		{"once: only the first missed", Spec{Every: time.Minute, Missed: MissedOnce}, zero, sec(61), sec(61), m(1), true},
		{"cron skip", Spec{Cron: "*/5 * * * *"}, m(5), m(23), m(23), m(25), false},
		{"cron once", Spec{Cron: "*/5 * * * *", Missed: MissedOnce}, m(5), m(23), m(23), m(20), true},
	} {
		s := mustCompile(t, "d", tc.spec, t0)
		slot, ok := s.Due(tc.last, tc.since, tc.now)
		if !slot.Equal(tc.slot) || ok != tc.ok {
			t.Errorf("%s: Due = %v, %v; want %v, %v", tc.name, slot, ok, tc.slot, tc.ok)
		}
		if nf := s.NextFire(tc.last, tc.since); !nf.Equal(tc.slot) {
			t.Errorf("%s: NextFire = %v, want %v", tc.name, nf, tc.slot)
		}
	}
}

// TestDueHugeDowntime: ten years of downtime of every-second schedules
// cost O(1) (intervals) or O(log) (cron), not a walk over 3·10⁸ slots.
func TestDueHugeDowntime(t *testing.T) {
	since := t0.AddDate(10, 0, 0).Add(500 * time.Millisecond)
	last := t0.Add(time.Second)
	for _, spec := range []Spec{{Every: time.Second}, {Cron: "@every 1s"}, {Cron: "* * * * * *"}, {Cron: "*/1 * * * * *", TimeZone: "Europe/Berlin"}} {
		skip := spec
		s := mustCompile(t, "h", skip, t0)
		if slot, ok := s.Due(last, since, since); !slot.Equal(since.Truncate(time.Second).Add(time.Second)) || ok {
			t.Errorf("%+v skip: Due = %v, %v", spec, slot, ok)
		}
		once := spec
		once.Missed = MissedOnce
		s = mustCompile(t, "h", once, t0)
		if slot, ok := s.Due(last, since, since); !slot.Equal(since.Truncate(time.Second)) || !ok {
			t.Errorf("%+v once: Due = %v, %v", spec, slot, ok)
		}
	}
	// Sparse cron: the latest 29 February before a start eleven years on.
	s := mustCompile(t, "leap", Spec{Cron: "0 12 29 2 *", Missed: MissedOnce}, t0)
	if got := s.Pending(s.Next(t0), at("2037-06-01T00:00:00Z")); !got.Equal(at("2036-02-29T12:00:00Z")) {
		t.Errorf("leap once: Pending = %v", got)
	}
	// A dense run then a long gap: every second of 00:00–05:59, started at 23:00.
	s = mustCompile(t, "dense", Spec{Cron: "* * 0-5 * * *", Missed: MissedOnce}, t0)
	if got := s.Pending(t0.Add(time.Second), at("2031-07-04T23:00:00Z")); !got.Equal(at("2031-07-04T05:59:59Z")) {
		t.Errorf("dense once: Pending = %v", got)
	}
}
