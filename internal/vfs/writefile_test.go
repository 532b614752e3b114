package vfs_test

import (
	"bytes"
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

// TestWriteFileSyncedSlices: a large file, in pieces that do not line up
// with SyncSlice, is written whole and synced every SyncSlice bytes and
// once at its end, not only once at the end.
func TestWriteFileSyncedSlices(t *testing.T) {
	mem := vfs.NewMemFS()
	if err := mem.MkdirAll("d"); err != nil {
		t.Fatal(err)
	}
	var syncs int
	fs := vfs.NewFaulty(mem, func(op vfs.Op, name string) error {
		if op == vfs.OpSync && name == "d/f.tmp" {
			syncs++
		}
		return nil
	})
	var pieces [][]byte
	var want []byte
	for i, n := range []int{3 << 20, 6 << 20, 1, 2 << 20} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j)
		}
		pieces, want = append(pieces, p), append(want, p...)
	}
	if err := vfs.WriteFileSynced(fs, "d/f", "d/f.tmp", pieces...); err != nil {
		t.Fatal(err)
	}
	if wantSyncs := len(want)/vfs.SyncSlice + 1; syncs != wantSyncs {
		t.Fatalf("%d syncs of %d bytes, want %d", syncs, len(want), wantSyncs)
	}
	got, err := mem.CrashClone(nil).Bytes("d/f")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("after a crash the file holds %d bytes, not the %d written", len(got), len(want))
	}
}
