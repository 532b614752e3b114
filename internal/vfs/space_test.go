package vfs

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMemFSCapacity: a MemFS with a capacity is a volume that fills up:
// writes store what fits and fail with ENOSPC, Preallocate and Allocate
// count and fail whole, removing or truncating a file gives its space
// back, and Free says what is left.
func TestMemFSCapacity(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("d")
	m.SetCapacity(1000)
	f, _ := m.Create("d/a")
	if n, err := f.WriteAt(make([]byte, 600), 0); n != 600 || err != nil {
		t.Fatal(n, err)
	}
	g, _ := m.Create("d/b")
	n, err := g.WriteAt(make([]byte, 600), 0)
	if n != 400 || !IsNoSpace(err) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: %d, %v", n, err)
	}
	if free, total, _ := m.Free("d"); free != 0 || total != 1000 {
		t.Fatalf("free %d of %d", free, total)
	}
	if err := f.Preallocate(700); !IsNoSpace(err) {
		t.Fatalf("preallocate past the capacity: %v", err)
	}
	if err := g.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if err := f.Preallocate(700); err != nil { // KEEP_SIZE: counts, length unchanged
		t.Fatal(err)
	}
	if size, _ := f.Size(); size != 600 || m.Used() != 800 {
		t.Fatalf("size %d, used %d", size, m.Used())
	}
	r, _ := m.Create("d/RESERVE")
	if err := Allocate(r, 300); !IsNoSpace(err) {
		t.Fatalf("allocate past the capacity: %v", err)
	}
	if err := Allocate(r, 200); err != nil {
		t.Fatal(err)
	}
	if size, _ := r.Size(); size != 200 || m.Used() != 1000 || m.Usage("d") != 700 {
		t.Fatalf("reserve size %d, used %d, usage %d", size, m.Used(), m.Usage("d"))
	}
	buf := []byte{1, 2, 3}
	if n, err := r.ReadAt(buf, 198); n != 2 || buf[0] != 0 || buf[1] != 0 {
		t.Fatalf("read of the allocated zeros: %d %v %v", n, buf, err)
	}
	r.Sync()
	m.SyncDir("d")
	clone := m.CrashClone(nil)
	if clone.Used() != 200 {
		t.Fatalf("clone holds %d bytes, want the synced reserve's 200", clone.Used())
	}
	if err := m.Remove("d/RESERVE"); err != nil {
		t.Fatal(err)
	}
	if free, _, _ := m.Free("d"); free != 200 {
		t.Fatalf("free after removing the reserve: %d", free)
	}
	// A rename over a file frees the file it replaces.
	if err := m.Rename("d/b", "d/a"); err != nil {
		t.Fatal(err)
	}
	if m.Used() != 100 {
		t.Fatalf("used %d after the rename", m.Used())
	}
}

// TestOSFree: the real volume reports something sensible, and Allocate
// takes real space there.
func TestOSFree(t *testing.T) {
	dir := t.TempDir()
	free, total, err := OS.Free(dir)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil || free <= 0 || total < free {
		t.Fatalf("free %d, total %d, %v", free, total, err)
	}
	name := filepath.Join(dir, "RESERVE")
	f, err := OS.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Allocate(f, 3<<20+5); err != nil {
		t.Fatal(err)
	}
	if size, _ := f.Size(); size != 3<<20+5 {
		t.Fatalf("allocated %d bytes", size)
	}
	if st, err := os.Stat(name); err != nil || st.Size() != 3<<20+5 {
		t.Fatalf("stat %v %v", st, err)
	}
}

// TestSchedule: rules fire on the Nth matching call, for Repeat calls, and
// a short write stores the part it says.
func TestSchedule(t *testing.T) {
	m := NewMemFS()
	m.MkdirAll("d")
	s := NewSchedule(
		Rule{Op: OpWrite, N: 2, Kind: FaultShortWrite, Keep: 0.25, Path: "*.seg"},
		Rule{Op: OpSync, N: 1, Repeat: 2, Kind: FaultNoSpace},
	)
	fs := NewFaulty(m, s.Inject)
	f, _ := fs.Create("d/1.seg")
	g, _ := fs.Create("d/other")
	for i := range 3 {
		if _, err := g.WriteAt([]byte("x"), int64(i)); err != nil {
			t.Fatal("a write to another file failed:", err)
		}
	}
	if _, err := f.WriteAt(make([]byte, 8), 0); err != nil {
		t.Fatal(err)
	}
	n, err := f.WriteAt(make([]byte, 8), 8)
	var wf *WriteFault
	if n != 2 || !errors.As(err, &wf) || !errors.Is(err, ErrInjected) {
		t.Fatalf("short write: %d, %v", n, err)
	}
	if _, err := f.WriteAt(make([]byte, 8), 8); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		if err := f.Sync(); (err != nil) != want || err != nil && !IsNoSpace(err) {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if got := len(s.Fired()); got != 3 {
		t.Fatalf("%d faults fired: %v", got, s.Fired())
	}
	if s.String() != "write#2 short keep=0.25 on *.seg; sync#1 nospace x2" {
		t.Fatalf("schedule %q", s)
	}
	// Random schedules come from the seed alone.
	calls := Calls{OpWrite: 50, OpSync: 50, OpRename: 5}
	a := RandomSchedule(rand.New(rand.NewPCG(7, 7)), 3, calls).String()
	b := RandomSchedule(rand.New(rand.NewPCG(7, 7)), 3, calls).String()
	if a != b || a == "" {
		t.Fatalf("%q vs %q", a, b)
	}
}
