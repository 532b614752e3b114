package main

import (
	"context"
	"testing"
	"time"
)

// TestSettle: settle waits through busy samples and returns at the first
// quiet one; it gives up at the deadline; a machine without /proc/stat
// does not wait.
func TestSettle(t *testing.T) {
	// Cumulative (busy, total) jiffies: 90 %, 60 %, then 10 % busy.
	readings := [][2]uint64{{0, 0}, {90, 100}, {150, 200}, {160, 300}, {400, 400}}
	i := 0
	times := func() (uint64, uint64, bool) {
		r := readings[min(i, len(readings)-1)]
		i++
		return r[0], r[1], true
	}
	tick := make(chan time.Time, 10)
	for range 10 {
		tick <- time.Time{}
	}
	if !settle(context.Background(), times, tick, nil) {
		t.Fatal("settle: not quiet")
	}
	if i != 4 {
		t.Fatalf("settle read %d samples, want 4 (quiet at the third interval)", i)
	}

	i = 0
	busy := func() (uint64, uint64, bool) { i++; return uint64(i * 90), uint64(i * 100), true }
	deadline := make(chan time.Time) // unbuffered: each send waits for settle to take it
	tick = make(chan time.Time)
	go func() {
		for range 3 {
			tick <- time.Time{}
		}
		deadline <- time.Time{}
	}()
	if settle(context.Background(), busy, tick, deadline) {
		t.Fatal("settle: quiet on a machine always 90 % busy")
	}
	if i != 4 {
		t.Fatalf("settle read %d samples before the deadline, want 4 (one per tick)", i)
	}

	none := func() (uint64, uint64, bool) { return 0, 0, false }
	if !settle(context.Background(), none, nil, nil) {
		t.Fatal("settle without /proc/stat waited")
	}
}
