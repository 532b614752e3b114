package journal

import (
	"bytes"
	"context"
	"io"
	"path"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestBackupCheckpointReader: the streamed checkpoint is byte for byte the
// file WriteCheckpoint writes, and loads.
func TestBackupCheckpointReader(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{})
	pos := appendWait(t, j, []byte("one record"))
	snap := [][]byte{[]byte("snap"), {}, bytes.Repeat([]byte("shot"), 1000)}
	if err := j.WriteCheckpoint(pos, snap); err != nil {
		t.Fatal(err)
	}
	want, err := fs.Bytes(ckptName("j", pos))
	if err != nil {
		t.Fatal(err)
	}
	r, n := CheckpointReader(pos, snap)
	got, err := io.ReadAll(r)
	if err != nil || int64(len(got)) != n || !bytes.Equal(got, want) {
		t.Fatalf("CheckpointReader: %d bytes (said %d), %v; the file has %d, equal %v", len(got), n, err, len(want), bytes.Equal(got, want))
	}
	if CheckpointFile(pos) != path.Base(ckptName("j", pos)) || SegmentFile(3) != "00000003.seg" {
		t.Fatalf("names %s %s", CheckpointFile(pos), SegmentFile(3))
	}
	if p, ok := ParseCheckpointFile(CheckpointFile(pos)); !ok || p != pos {
		t.Fatalf("ParseCheckpointFile: %x %v", p, ok)
	}
}

// TestBackupPinOutlivesRelease: a pinned segment's file stays, readable,
// through Release, and goes at Unpin; the tail reads up to a position.
func TestBackupPinOutlivesRelease(t *testing.T) {
	fs := vfs.NewMemFS()
	j, _ := openJournal(t, fs, Options{SegmentSize: 1024})
	first := appendWait(t, j, bytes.Repeat([]byte("a"), 900))
	last := appendWait(t, j, bytes.Repeat([]byte("b"), 900))
	seg1, seg2 := uint32(first>>32), uint32(last>>32)
	if seg1 == seg2 {
		t.Fatal("one segment")
	}
	p, err := j.Pin([]uint32{seg1, seg2})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Release(seg1); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sr, n, err := p.Section(seg1, -1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(sr)
	if err != nil || int64(len(data)) != n || !bytes.Contains(data, bytes.Repeat([]byte("a"), 900)) {
		t.Fatalf("released, pinned segment: %d bytes, %v", len(data), err)
	}
	_, tailOff := j.Tail()
	sr, n, err = p.Section(seg2, tailOff)
	if err != nil || n != tailOff {
		t.Fatalf("tail section: %d, %v", n, err)
	}
	if _, _, err := p.Section(seg2, tailOff+1<<20); err == nil {
		t.Fatal("a section past the end of the file")
	}
	if err := p.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Bytes(segName("j", seg1)); !vfs.IsNotExist(err) {
		t.Fatalf("released segment still there after Unpin: %v", err)
	}
	if _, err := fs.Bytes(segName("j", seg2)); err != nil {
		t.Fatalf("unreleased segment gone after Unpin: %v", err)
	}
	if _, err := j.Pin([]uint32{seg1}); err == nil {
		t.Fatal("pinned a released segment")
	}
	if err := p.Unpin(); err != nil {
		t.Fatal("second Unpin:", err)
	}
}
