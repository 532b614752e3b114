package journal

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/commitdelay"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/internal/vfs"
)

// TestSyncDelay: an append that wakes the idle writer within SyncDelay of
// the end of its last sync waits out the rest of it, timed by
// Options.Clock, and what is appended meanwhile shares the same sync; an
// append after a longer quiet spell is synced at once; Close ends a wait.
func TestSyncDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const delay = 10 * time.Millisecond
	j, clock := delayJournal(t, vfs.NewMemFS(), delay)
	clock.Advance(delay / 2)
	before := j.Stats()

	_, a, err := j.Append([]byte("A"))
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, clock, 1) // the writer waits on the clock
	_, b, err := j.Append([]byte("B"))
	if err != nil {
		t.Fatal(err)
	}
	if isClosed(a.Written()) || isClosed(b.Written()) {
		t.Fatal("written during the delay")
	}
	clock.Advance(delay/2 - time.Microsecond)
	if clock.Pending() != 1 || isClosed(a.Written()) {
		t.Fatal("the delay ended early: it runs to SyncDelay after the last sync ended")
	}
	clock.Advance(time.Microsecond)
	for _, bt := range []*Batch{a, b} {
		if err := bt.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := j.Stats()
	if syncs, delayed := after.Syncs-before.Syncs, after.Delayed-before.Delayed; syncs != 1 || delayed != 1 {
		t.Fatalf("A and B: %d syncs, %d delays; want 1 and 1", syncs, delayed)
	}

	// A quiet spell of SyncDelay: the next append is synced at once (the
	// clock does not move while it waits).
	clock.Advance(delay)
	if err := waitBatch(ctx, j, []byte("C")); err != nil {
		t.Fatalf("after a quiet spell: %v", err)
	}
	if d := j.Stats().Delayed - after.Delayed; d != 0 {
		t.Fatalf("%d delays after a quiet spell", d)
	}

	// Close ends a delay at once and syncs what waited.
	_, d, err := j.Append([]byte("D")) // within the delay of C's sync
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, clock, 1)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(ctx); err != nil {
		t.Fatalf("D after Close: %v", err)
	}
}

// TestSyncDelayOnlyIdle: a writer that goes from one sync straight to the
// next batch never waits, whatever SyncDelay says.
func TestSyncDelayOnlyIdle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := vfs.NewMemFS()
	g := newGatedSyncs()
	j, clock := delayJournal(t, vfs.NewFaulty(mem, g.inject), time.Hour) // its first sync is not armed

	g.armed.Store(true)
	_, a, err := j.Append([]byte("A")) // within the hour: waits on the clock
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, clock, 1)
	clock.Advance(time.Hour)
	<-g.started // A's sync runs; B comes during it
	_, b, err := j.Append([]byte("B"))
	if err != nil {
		t.Fatal(err)
	}
	close(g.release)
	// B is taken as A's sync ends and synced without a wait: the clock
	// never moves again.
	for _, bt := range []*Batch{a, b} {
		if err := bt.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := j.Stats().Delayed; d != 1 {
		t.Fatalf("%d delays, want 1 (A's)", d)
	}
}

// TestSyncDelayHurry: during the delay a caller that needs its appends
// only written (WaitWritten) writes them itself, at once; the writer
// syncs them, with the rest, once the delay is over.
func TestSyncDelayHurry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := vfs.NewMemFS()
	j, clock := delayJournal(t, mem, time.Hour)
	before := j.Stats()

	_, a, err := j.Append([]byte("A")) // wakes the writer, which waits
	if err != nil {
		t.Fatal(err)
	}
	waitPending(t, clock, 1)
	pos, b, err := j.Append([]byte("record B"))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.WaitWritten(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := fileBytes(t, mem, pos, len("record B")); string(got) != "record B" {
		t.Fatalf("B in the file during the delay: %q", got)
	}
	if isClosed(a.Done()) || isClosed(b.Done()) {
		t.Fatal("completed before the delay ended: not synced yet")
	}
	clock.Advance(time.Hour)
	for _, bt := range []*Batch{a, b} {
		if err := bt.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := j.Stats()
	if syncs, hurried := after.Syncs-before.Syncs, after.Hurried-before.Hurried; syncs != 1 || hurried != 1 {
		t.Fatalf("%d syncs, %d hurried; want 1 and 1", syncs, hurried)
	}
}

// TestSyncDelayFruitless: one caller appending and waiting for each sync
// gains nothing from the delay; after commitdelay.FruitlessLimit delays in a row with
// nothing appended during them the writer syncs at once, and tries a
// delay again every commitdelay.ProbeEvery wakes.
func TestSyncDelayFruitless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const delay = 10 * time.Millisecond
	j, clock := delayJournal(t, vfs.NewMemFS(), delay)
	delayed := func(p string) {
		t.Helper()
		_, b, err := j.Append([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		waitPending(t, clock, 1)
		clock.Advance(delay)
		if err := b.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range commitdelay.FruitlessLimit {
		delayed(fmt.Sprint("waited ", i))
	}
	// The clock stands still: each of these would wait for ever if the
	// writer delayed it.
	for i := range commitdelay.ProbeEvery - 1 {
		if err := waitBatch(ctx, j, []byte(fmt.Sprint("at once ", i))); err != nil {
			t.Fatalf("append %d after %d fruitless delays: %v", i, commitdelay.FruitlessLimit, err)
		}
	}
	delayed("probe")
	if got := j.Stats().Delayed; got != commitdelay.FruitlessLimit+1 {
		t.Fatalf("%d delays, want %d", got, commitdelay.FruitlessLimit+1)
	}
}

// delayJournal opens a journal on fs with SyncDelay delay timed by a fake
// clock, and appends a first record: its sync (which waits for nothing,
// none came before) is what the next append's delay counts from.
func delayJournal(t *testing.T, fs vfs.FS, delay time.Duration) (*Journal, *fakeclock.FakeClock) {
	t.Helper()
	clock := fakeclock.New()
	j, _ := openJournal(t, fs, Options{SyncDelay: delay, Clock: clock})
	appendWait(t, j, []byte("first"))
	return j, clock
}

// waitBatch appends p and waits for its sync, or ctx.
func waitBatch(ctx context.Context, j *Journal, p []byte) error {
	_, b, err := j.Append(p)
	if err != nil {
		return err
	}
	return b.Wait(ctx)
}

// waitPending waits until n timers are armed on clock (a goroutine has
// started waiting on it).
func waitPending(t *testing.T, clock *fakeclock.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for clock.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers armed, want %d", clock.Pending(), n)
		}
		runtime.Gosched()
	}
}
