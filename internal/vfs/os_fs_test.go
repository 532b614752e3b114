package vfs_test

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestOSFilePreallocateSync runs the platform-specific half of the OS
// filesystem (os_fs_<goos>.go) against the real file system: whatever
// Preallocate does on this platform (fallocate KEEP_SIZE, F_PREALLOCATE,
// nothing), the file's length must stay the length of its data, because
// the journal reads the length as "how much was written"; and Sync and
// SyncDir must succeed on an ordinary local directory.
func TestOSFilePreallocateSync(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "seg")
	f, err := vfs.OS.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// Preallocate a fresh, empty file, as the journal does for a segment.
	const reserve = 1 << 20
	if err := f.Preallocate(reserve); err != nil {
		t.Fatalf("preallocate empty file: %v", err)
	}
	checkSize(t, f, 0)

	data := bytes.Repeat([]byte("chute-journal-"), 300) // not block aligned
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	// And again once it holds data, which on darwin asks only for the
	// blocks still missing.
	if err := f.Preallocate(reserve); err != nil {
		t.Fatalf("preallocate written file: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if err := vfs.OS.SyncDir(dir); err != nil {
		t.Fatalf("sync dir: %v", err)
	}
	checkSize(t, f, int64(len(data)))

	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("read back different bytes")
	}
	// The reserved space past the data must not be readable as data.
	if n, err := f.ReadAt(make([]byte, 16), int64(len(data))); n != 0 || err != io.EOF {
		t.Fatalf("read past the data: %d bytes, %v; want 0, EOF", n, err)
	}

	// Appending after the reservation grows the file by the write alone.
	if _, err := f.WriteAt(data, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync after append: %v", err)
	}
	checkSize(t, f, int64(2*len(data)))

	// And the data survives a close and reopen.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := vfs.OS.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	checkSize(t, g, int64(2*len(data)))
	got = make([]byte, 2*len(data))
	if _, err := g.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(data, data...)) {
		t.Fatal("reopened file holds different bytes")
	}
}

func checkSize(t *testing.T, f vfs.File, want int64) {
	t.Helper()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	if size != want {
		t.Fatalf("size %d, want %d: Preallocate must not change the length", size, want)
	}
}
