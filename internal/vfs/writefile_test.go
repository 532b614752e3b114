package vfs_test

import (
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestWriteFileSynced: once it returns, a crash keeps the new contents
// (the data, the rename and the directory entry were all synced), and
// no temporary file is left.
func TestWriteFileSynced(t *testing.T) {
	fs := vfs.NewMemFS()
	if err := fs.MkdirAll("d"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second, longer"} {
		if err := vfs.WriteFileSynced(fs, "d/f", "d/f.tmp", []byte(want)); err != nil {
			t.Fatal(err)
		}
		crashed := fs.CrashClone(nil)
		f, err := crashed.Open("d/f")
		if err != nil {
			t.Fatalf("after a crash: %v", err)
		}
		got := make([]byte, len(want))
		n, _ := f.ReadAt(got, 0)
		size, _ := f.Size()
		f.Close()
		if string(got[:n]) != want || size != int64(len(want)) {
			t.Fatalf("after a crash the file holds %q (%d bytes), want %q", got[:n], size, want)
		}
		if names, _ := crashed.List("d"); len(names) != 1 {
			t.Fatalf("after a crash the directory holds %v", names)
		}
	}
}
