package journal

import (
	"bytes"
	"errors"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// FuzzReplaySegment feeds arbitrary bytes to recovery as the only (hence
// last) segment, after a valid header. Recovery must never panic or hang;
// it either reports corruption or replays frames that are each valid, and
// a journal it accepted must take appends and replay them again.
func FuzzReplaySegment(f *testing.F) {
	var seg []byte
	seg = appendFrame(seg, 1, []byte("first record"))
	seg = appendFrame(seg, 1, bytes.Repeat([]byte{7}, 100))
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(append(bytes.Clone(seg), 0xff, 0, 0, 0))
	f.Add(append(make([]byte, 16), seg...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		fs := vfs.NewMemFS()
		fs.MkdirAll("j")
		file, _ := fs.Create(segName("j", 1))
		file.WriteAt(append(segHeader(1, 0), body...), 0)
		file.Close()
		j, err := Open(Options{FS: fs, Dir: "j"})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		var n int
		err = j.Replay(0, func(p []byte, pos uint64) error {
			off := int(pos&0xffffffff) - segHeaderSize - frameHeaderSize
			if off < 0 || off+frameHeaderSize+len(p) > len(body) || !bytes.Equal(body[off+frameHeaderSize:][:len(p)], p) {
				t.Fatalf("position %x outside the segment", pos)
			}
			n++
			return nil
		})
		var ce *CorruptionError
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("replay: %v", err)
			}
			return
		}
		if _, b, err := j.Append([]byte("after")); err != nil || b.Wait(t.Context()) != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		j.Close()
		j2, err := Open(Options{FS: fs, Dir: "j"})
		if err != nil {
			t.Fatal(err)
		}
		defer j2.Close()
		var m int
		if err := j2.Replay(0, func([]byte, uint64) error { m++; return nil }); err != nil || m != n+1 {
			t.Fatalf("second recovery: %d records (want %d), %v", m, n+1, err)
		}
	})
}
