package schedule

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestSetOrdering(t *testing.T) {
	set := NewSet(t0)
	// 300 schedules with intervals of 1–7 s and some jitter, created at t0.
	scheds := map[string]*Schedule{}
	for i := range 300 {
		name := fmt.Sprintf("s%03d", i)
		every := time.Duration(1+i%7) * time.Second
		scheds[name] = mustCompile(t, name, Spec{Every: every, Jitter: every / 3}, t0)
		set.Add(name, scheds[name], time.Time{})
	}
	if set.Len() != 300 {
		t.Fatalf("Len = %d", set.Len())
	}
	last := map[string]time.Time{}
	var prevFire time.Time
	end := t0.Add(60 * time.Second)
	for now := t0; now.Before(end); now = now.Add(250 * time.Millisecond) {
		if wake, ok := set.Peek(); !ok || !wake.After(now.Add(-250*time.Millisecond)) {
			t.Fatalf("at %v: Peek = %v, %v: should be in the future of the previous tick", now, wake, ok)
		}
		for _, f := range set.PopDue(now) {
			s := scheds[f.Name]
			fire := s.FireAt(f.Slot)
			if fire.After(now) || fire.Before(prevFire) {
				t.Fatalf("at %v: %s slot %v fires at %v; previous fire %v", now, f.Name, f.Slot, fire, prevFire)
			}
			prevFire = fire
			if want := s.Next(last[f.Name]); !f.Slot.Equal(want) || f.SlotSeq != SlotSeq(want) {
				t.Fatalf("%s: slot %v, want %v", f.Name, f.Slot, want)
			}
			if !set.Fired(f) || set.Fired(f) {
				t.Fatalf("%s: Fired should succeed once", f.Name)
			}
			last[f.Name] = f.Slot
		}
	}
	// Every slot up to end−1h of jitter has fired: nothing is late.
	for name, s := range scheds {
		if slot, ok := s.Due(last[name], t0, end.Add(-time.Second)); ok {
			t.Errorf("%s: slot %v due but not fired", name, slot)
		}
	}
}

func TestSetLifecycle(t *testing.T) {
	started := t0.Add(10*time.Minute + 30*time.Second)
	missed := t0.Add(10 * time.Minute) // the latest slot before the start
	set := NewSet(started)
	minutely := mustCompile(t, "m", Spec{Every: time.Minute, Missed: MissedOnce}, t0)
	set.Add("m", minutely, t0.Add(time.Minute)) // fired once, then down 9 minutes
	set.Add("gone", minutely, time.Time{})
	if !set.Remove("gone") || set.Remove("gone") || set.Len() != 1 {
		t.Fatal("Remove")
	}
	if wake, ok := set.Peek(); !ok || !wake.Equal(missed) {
		t.Fatalf("Peek = %v, %v; want the latest missed slot", wake, ok)
	}
	fs := set.PopDue(started)
	if len(fs) != 1 || !fs[0].Slot.Equal(missed) {
		t.Fatalf("PopDue = %v", fs)
	}
	if _, ok := set.Peek(); ok {
		t.Fatal("an in-flight schedule is still in the heap")
	}
	// The publish failed: retry in 5 s, same slot.
	if !set.Retry(fs[0], started.Add(5*time.Second)) || set.Retry(fs[0], started) {
		t.Fatal("Retry")
	}
	if fs := set.PopDue(started.Add(4 * time.Second)); len(fs) != 0 {
		t.Fatalf("PopDue before the retry time = %v", fs)
	}
	fs = set.PopDue(started.Add(5 * time.Second))
	if len(fs) != 1 || !fs[0].Slot.Equal(missed) || set.Fired(Firing{Name: "m", Slot: started}) || !set.Fired(Firing{Name: "m", Slot: missed}) {
		t.Fatalf("PopDue after retry = %v", fs)
	}
	st, _ := set.Status("m")
	if !st.Last.Equal(missed) || !st.Slot.Equal(missed.Add(time.Minute)) || !st.FireAt.Equal(st.Slot) || st.Paused || st.InFlight {
		t.Fatalf("Status = %+v", st)
	}
	// Paused for 10 minutes: the paused slots follow the policy (once).
	set.Pause("m")
	if fs := set.PopDue(started.Add(time.Hour)); len(fs) != 0 {
		t.Fatalf("PopDue while paused = %v", fs)
	}
	if st, _ := set.Status("m"); !st.Paused || !st.Slot.IsZero() {
		t.Fatalf("Status paused = %+v", st)
	}
	resumed := missed.Add(10*time.Minute + 30*time.Second)
	set.Resume("m", resumed)
	fs = set.PopDue(resumed)
	if len(fs) != 1 || !fs[0].Slot.Equal(missed.Add(10*time.Minute)) {
		t.Fatalf("PopDue on resume = %v", fs)
	}
	// Paused while in flight: Fired still records it, but it is not re-armed.
	set.Pause("m")
	if !set.Fired(fs[0]) {
		t.Fatal("Fired while paused")
	}
	if _, ok := set.Peek(); ok {
		t.Fatal("paused schedule re-armed")
	}
	if set.Pause("x") || set.Resume("x", resumed) || set.Fired(Firing{Name: "x"}) || set.Retry(Firing{Name: "x"}, resumed) {
		t.Fatal("unknown names should report false")
	}
	if _, ok := set.Status("x"); ok {
		t.Fatal("Status of unknown name")
	}
}

// TestSetTies: tied firings come out in an order fixed by the calls made.
func TestSetTies(t *testing.T) {
	run := func() []string {
		set := NewSet(t0)
		for _, n := range []string{"c", "a", "d", "b", "e"} {
			set.Add(n, mustCompile(t, n, Spec{Every: time.Second}, t0), time.Time{})
		}
		var got []string
		for now := t0.Add(time.Second); now.Before(t0.Add(4 * time.Second)); now = now.Add(time.Second) {
			for _, f := range set.PopDue(now) {
				got = append(got, f.Name)
				set.Fired(f)
			}
		}
		return got
	}
	a, b := run(), run()
	if len(a) != 15 || !slices.Equal(a, b) {
		t.Errorf("PopDue orders %v and %v", a, b)
	}
}

// BenchmarkSet10k: one op is one simulated second of 10,000 every-second
// schedules: pop all 10,000 firings and confirm each (re-arm).
func BenchmarkSet10k(b *testing.B) {
	for _, jitter := range []time.Duration{0, 900 * time.Millisecond} {
		b.Run(fmt.Sprintf("jitter=%v", jitter), func(b *testing.B) {
			set := NewSet(t0)
			for i := range 10000 {
				name := fmt.Sprintf("schedule-%05d", i)
				set.Add(name, mustCompile(b, name, Spec{Every: time.Second, Jitter: jitter}, t0), time.Time{})
			}
			buf := make([]Firing, 0, 10000)
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now = now.Add(time.Second)
				buf = set.AppendDue(buf[:0], now)
				for _, f := range buf {
					set.Fired(f)
				}
				if jitter == 0 && len(buf) != 10000 {
					b.Fatalf("%d firings in a second", len(buf))
				}
			}
		})
	}
}
