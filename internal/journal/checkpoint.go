package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/chutemq/chute/internal/vfs"
)

// A checkpoint file holds a snapshot of the engine taken when the journal's
// tail was at pos: recovery restores it and replays only the records from
// pos on. Its name carries pos (DIR/SSSSSSSS-OOOOOOOO.ckpt); its content is
//
//	"CHUTECKP" | u32 version | u64 pos | u64 length | snapshot | u32 CRC-32C of everything before
//
// It is written to a temporary name, synced, renamed into place and the
// directory synced, so a checkpoint is either whole or absent; older ones
// are removed after.
const (
	ckptMagic   = "CHUTECKP"
	ckptVersion = 1
	ckptHeader  = 8 + 4 + 8 + 8
)

func ckptName(dir string, pos uint64) string {
	return path.Join(dir, fmt.Sprintf("%08x-%08x.ckpt", uint32(pos>>32), uint32(pos)))
}

func parseCkptName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, ".ckpt")
	if !ok || len(base) != 17 || base[8] != '-' {
		return 0, false
	}
	seg, err1 := strconv.ParseUint(base[:8], 16, 32)
	off, err2 := strconv.ParseUint(base[9:], 16, 32)
	return seg<<32 | off, err1 == nil && err2 == nil
}

// ckptFrame returns a checkpoint file's header for snapshot at pos, the
// snapshot's length, and the CRC-32C of header and snapshot (the file's
// last four bytes).
func ckptFrame(pos uint64, snapshot [][]byte) (hdr []byte, size int64, crc uint32) {
	for _, p := range snapshot {
		size += int64(len(p))
	}
	hdr = make([]byte, 0, ckptHeader)
	hdr = append(hdr, ckptMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, ckptVersion)
	hdr = binary.LittleEndian.AppendUint64(hdr, pos)
	hdr = binary.LittleEndian.AppendUint64(hdr, uint64(size))
	crc = crc32.Checksum(hdr, castagnoli)
	for _, p := range snapshot {
		crc = crc32.Update(crc, castagnoli, p)
	}
	return hdr, size, crc
}

// WriteCheckpoint durably stores snapshot (its pieces, in order) as the
// state at pos, then removes older checkpoints. pos must be a frame
// boundary (Tail).
func (j *Journal) WriteCheckpoint(pos uint64, snapshot [][]byte) error {
	fs, dir := j.opts.FS, j.opts.Dir
	// Header, snapshot and checksum are written in place: the snapshot can
	// be large, and is not copied.
	hdr, _, crc := ckptFrame(pos, snapshot)
	name := ckptName(dir, pos)
	tmp := name + ".tmp"
	parts := append(append([][]byte{hdr}, snapshot...), binary.LittleEndian.AppendUint32(nil, crc))
	if err := vfs.WriteFileSynced(fs, name, tmp, parts...); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil // the new checkpoint is in place; old ones stay for now
	}
	for _, n := range names {
		if p, ok := parseCkptName(n); ok && p < pos || strings.HasSuffix(n, ".ckpt.tmp") && path.Join(dir, n) != tmp {
			fs.Remove(path.Join(dir, n))
		}
	}
	return nil
}

// LoadCheckpoint returns the newest checkpoint (pos 0 and nil when there is
// none). A damaged newest checkpoint is a *CorruptionError: the segments
// before it may already be gone, so an older one cannot stand in.
func (j *Journal) LoadCheckpoint() (uint64, []byte, error) {
	fs, dir := j.opts.FS, j.opts.Dir
	names, err := fs.List(dir)
	if err != nil {
		return 0, nil, fmt.Errorf("list journal dir: %w", err)
	}
	var best uint64
	var bestName string
	for _, n := range names {
		if p, ok := parseCkptName(n); ok && (bestName == "" || p > best) {
			best, bestName = p, n
		}
	}
	if bestName == "" {
		return 0, nil, nil
	}
	name := path.Join(dir, bestName)
	f, err := fs.Open(name)
	if err != nil {
		return 0, nil, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint size: %w", err)
	}
	bad := func(reason string) error { return &CorruptionError{File: name, Reason: reason} }
	if size < ckptHeader+4 {
		return 0, nil, bad("short checkpoint")
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		return 0, nil, fmt.Errorf("read checkpoint: %w", err)
	}
	body := buf[:len(buf)-4]
	switch {
	case string(buf[:8]) != ckptMagic:
		return 0, nil, bad("bad magic")
	case binary.LittleEndian.Uint32(buf[len(buf)-4:]) != crc32.Checksum(body, castagnoli):
		return 0, nil, bad("checksum mismatch")
	case binary.LittleEndian.Uint32(buf[8:]) != ckptVersion:
		return 0, nil, bad(fmt.Sprintf("version %d", binary.LittleEndian.Uint32(buf[8:])))
	case binary.LittleEndian.Uint64(buf[12:]) != best:
		return 0, nil, bad("position does not match the name")
	case binary.LittleEndian.Uint64(buf[20:]) != uint64(len(body)-ckptHeader):
		return 0, nil, bad("length mismatch")
	}
	return best, body[ckptHeader:], nil
}
