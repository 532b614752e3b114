package journal

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/chutemq/chute/internal/vfs"
)

// Offline repair, the byte half: what a damaged journal still holds, and
// the file operations that set it right. The message half (which records
// still apply, which queued messages lost their body, the new checkpoint)
// is broker.Repair; docs/operations.md says how an operator uses it.

// SegmentInfo is what Survey found in one segment file.
type SegmentInfo struct {
	ID        uint32
	File      string
	Size      int64
	HeaderErr string   // the header is damaged: every frame is resynchronised
	Regions   []Region // damaged regions, in order (a torn tail included)
	// Torn: this is the last segment and its damage is a torn tail or a
	// torn write (damage.go), which Open would cut: nothing confirmed is
	// lost there.
	Torn bool
	// Keep is where the intact prefix ends: the start of the first
	// damaged region, 0 when the header is damaged, Size when sound.
	Keep int64
}

// Damaged reports whether the segment needs repair.
func (s *SegmentInfo) Damaged() bool { return s.HeaderErr != "" || len(s.Regions) > 0 }

// Survey reads every segment of dir in id order, damage and all: it calls
// fn with every valid frame (resynchronising after damage, see
// nextValidFrame; in the last segment, frames after a torn tail or torn
// write are not passed, as Open would cut them) and returns what it found
// in each segment. It changes nothing. An error from fn stops it.
func Survey(fs vfs.FS, dir string, fn func(pos uint64, payload []byte) error) ([]SegmentInfo, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var ids []uint32
	for _, n := range names {
		if id, ok := parseSegName(n); ok {
			ids = append(ids, id)
		}
	}
	sortIDs(ids)
	var ckpt uint64
	for _, n := range names {
		if p, ok := parseCkptName(n); ok && p > ckpt {
			ckpt = p
		}
	}
	var out []SegmentInfo
	var buf []byte
	for i, id := range ids {
		info := SegmentInfo{ID: id, File: segName(dir, id)}
		data, err := readWhole(fs, info.File, &buf)
		if err != nil {
			return out, err
		}
		info.Size = int64(len(data))
		last := i == len(ids)-1
		if err := checkSegHeader(data, id); err != nil {
			info.HeaderErr = err.Error()
			if last && !anyValidFrameAfter(data, 0, id) {
				info.Torn = true // a crash right after creating it: Open removes it
			}
		}
		cutAt := len(data)
		if last && info.HeaderErr == "" {
			minCut := 0
			if id == uint32(ckpt>>32) {
				minCut = int(ckpt & 0xffffffff)
			}
			if res, err := walkFrames(data, info.File, id, true, 0, minCut, nil); err == nil && res.cut != nil && res.cut.Reason != "no frame" {
				info.Torn, cutAt = true, int(res.cut.Off)
			}
		}
		var ferr error
		info.Regions = resyncFrames(data, id, func(off int, payload []byte) {
			if ferr == nil && off < cutAt {
				ferr = fn(uint64(id)<<32|uint64(off+frameHeaderSize), payload)
			}
		})
		if ferr != nil {
			return out, ferr
		}
		if info.Torn && info.HeaderErr == "" {
			// Everything from the cut on is the torn tail, one region.
			info.Regions = append(clipRegions(info.Regions, int64(cutAt)), Region{Off: int64(cutAt), End: info.Size, Reason: "torn tail"})
		}
		info.Keep = info.Size
		switch {
		case info.HeaderErr != "":
			info.Keep = 0
		case len(info.Regions) > 0:
			info.Keep = info.Regions[0].Off
		}
		out = append(out, info)
	}
	return out, nil
}

func clipRegions(rs []Region, at int64) []Region {
	var out []Region
	for _, r := range rs {
		if r.Off < at {
			r.End = min(r.End, at)
			out = append(out, r)
		}
	}
	return out
}

func readWhole(fs vfs.FS, name string, buf *[]byte) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("size of %s: %w", name, err)
	}
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	data := (*buf)[:size]
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

// ReadFrom reads n bytes at position pos of the journal in dir without
// opening it (repair reads bodies with it).
func ReadFrom(fs vfs.FS, dir string, pos uint64, n int) ([]byte, error) {
	name := segName(dir, uint32(pos>>32))
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(pos&0xffffffff)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s at %d: %w", name, pos&0xffffffff, err)
	}
	return b, nil
}

// SegmentName is the path of segment id in dir.
func SegmentName(dir string, id uint32) string { return segName(dir, id) }

// NewSegment lays out segment id holding payloads, one frame each, and
// returns its bytes, the position of each payload and the position after
// the last frame (where a checkpoint taken after them goes).
func NewSegment(id uint32, created int64, payloads [][]byte) ([]byte, []uint64, uint64) {
	data := segHeader(id, created)
	pos := make([]uint64, len(payloads))
	for i, p := range payloads {
		pos[i] = uint64(id)<<32 | uint64(len(data)+frameHeaderSize)
		data = appendFrame(data, id, p)
	}
	return data, pos, uint64(id)<<32 | uint64(len(data))
}

// WriteNewFile durably creates name with data: written to
// NAME.repair (which repair cleans up), synced, renamed, and the
// directory synced.
func WriteNewFile(fs vfs.FS, name string, data []byte) error {
	if err := vfs.WriteFileSynced(fs, name, name+".repair", data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// QuarantineDir is where repair moves damaged files: DIR/quarantine/STAMP.
func QuarantineDir(dir, stamp string) string { return path.Join(dir, "quarantine", stamp) }

// Quarantine moves segment file name into qdir (never deleting it) and, if
// keep covers more than the header, puts back a copy of its first keep
// bytes: the intact prefix, which ends on a frame boundary.
func Quarantine(fs vfs.FS, dir, qdir, name string, keep int64) error {
	var prefix []byte
	if keep > segHeaderSize {
		b, err := ReadFrom(fs, dir, uint64(mustID(name))<<32, int(keep))
		if err != nil {
			return err
		}
		prefix = b
	}
	if err := fs.MkdirAll(qdir); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if err := fs.Rename(name, path.Join(qdir, path.Base(name))); err != nil {
		return fmt.Errorf("quarantine %s: %w", name, err)
	}
	if err := fs.SyncDir(qdir); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if prefix != nil {
		return WriteNewFile(fs, name, prefix)
	}
	return fs.SyncDir(dir)
}

func mustID(name string) uint32 {
	id, _ := parseSegName(path.Base(name))
	return id
}

// WriteCheckpointTo writes a checkpoint into dir without an open journal
// (repair), removing older ones.
func WriteCheckpointTo(fs vfs.FS, dir string, pos uint64, snapshot [][]byte) error {
	j := &Journal{opts: Options{FS: fs, Dir: dir}}
	return j.WriteCheckpoint(pos, snapshot)
}

// RemoveRepairLeftovers deletes the temporary files of an interrupted
// repair (NAME.repair), which nothing reads.
func RemoveRepairLeftovers(fs vfs.FS, dir string) {
	names, _ := fs.List(dir)
	for _, n := range names {
		if strings.HasSuffix(n, ".repair") {
			fs.Remove(path.Join(dir, n))
		}
	}
}
