package commitdelay

import (
	"testing"
	"time"
)

func TestRule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := Rule{Delay: time.Millisecond}
	if w := r.Wait(t0); w != 0 {
		t.Fatalf("no sync yet: wait %v", w)
	}
	r.Synced(t0)
	if w := r.Wait(t0.Add(300 * time.Microsecond)); w != 700*time.Microsecond {
		t.Fatalf("0.3 ms after a sync: wait %v, want 0.7 ms", w)
	}
	r.Waited(true)
	for _, at := range []time.Duration{time.Millisecond, 5 * time.Millisecond, -time.Microsecond} {
		if w := r.Wait(t0.Add(at)); w != 0 {
			t.Fatalf("%v after the sync: wait %v, want none", at, w)
		}
	}
	// Fruitless waits: after FruitlessLimit in a row, one wake in
	// ProbeEvery waits.
	for i := range FruitlessLimit {
		if w := r.Wait(t0); w != time.Millisecond {
			t.Fatalf("fruitless wait %d: %v", i, w)
		}
		r.Waited(false)
	}
	for i := 1; i < ProbeEvery; i++ {
		if w := r.Wait(t0); w != 0 {
			t.Fatalf("wake %d after %d fruitless waits: wait %v", i, FruitlessLimit, w)
		}
	}
	if w := r.Wait(t0); w != time.Millisecond {
		t.Fatalf("the probe: wait %v", w)
	}
	r.Waited(true) // it paid: every wake waits again
	if w := r.Wait(t0); w != time.Millisecond {
		t.Fatalf("after a fruitful probe: wait %v", w)
	}
	r.Waited(false)
	if w := r.Wait(t0); w != time.Millisecond {
		t.Fatalf("one fruitless wait is not a run of them: %v", w)
	}
	var off Rule
	off.Synced(t0)
	if w := off.Wait(t0); w != 0 {
		t.Fatalf("Delay 0: wait %v", w)
	}
}
