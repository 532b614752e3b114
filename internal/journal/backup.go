package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"path"
)

// The journal's part of a backup (broker/backup.go tells the whole story)
// is bytes: keeping the files of the segments a backup copies from being
// removed while it reads them (Pin), and producing a checkpoint file as a
// stream instead of writing it into the data directory (CheckpointReader).

// Format versions of the files a backup carries, for its manifest.
const (
	SegmentVersion    = segVersion
	CheckpointVersion = ckptVersion
)

// SegmentFile is the name (not the path) of segment id's file.
func SegmentFile(id uint32) string { return path.Base(segName("", id)) }

// CheckpointFile is the name (not the path) of the checkpoint at pos.
func CheckpointFile(pos uint64) string { return path.Base(ckptName("", pos)) }

// ParseSegmentFile returns the id of a segment file name.
func ParseSegmentFile(name string) (uint32, bool) { return parseSegName(name) }

// ParseCheckpointFile returns the position of a checkpoint file name.
func ParseCheckpointFile(name string) (uint64, bool) { return parseCkptName(name) }

// CheckpointReader returns the bytes of the checkpoint file that
// WriteCheckpoint would write for snapshot at pos, as a reader, and their
// number. The snapshot's pieces are read in place, not copied.
func CheckpointReader(pos uint64, snapshot [][]byte) (io.Reader, int64) {
	hdr, size, crc := ckptFrame(pos, snapshot)
	readers := make([]io.Reader, 0, len(snapshot)+2)
	readers = append(readers, bytes.NewReader(hdr))
	for _, p := range snapshot {
		readers = append(readers, bytes.NewReader(p))
	}
	readers = append(readers, bytes.NewReader(binary.LittleEndian.AppendUint32(nil, crc)))
	return io.MultiReader(readers...), ckptHeader + size + 4
}

// Pinned holds segments for a backup: their files stay in place, even if
// Release is called on them meanwhile, until Unpin (the reference counts
// that readers use; see segment.go).
type Pinned struct {
	j    *Journal
	segs map[uint32]*segment
}

// Pin takes a reference on each of the segments ids. Every one must still
// be in the journal: the caller keeps them from being released until Pin
// returns (the broker holds the lock its checkpoints take). Pin segments
// once they are written up to where they will be read (Sync first): a
// disk-full rewind removes the files of the segments its batch created,
// and fails the journal if one of them is held (nospace.go).
func (j *Journal) Pin(ids []uint32) (*Pinned, error) {
	p := &Pinned{j: j, segs: make(map[uint32]*segment, len(ids))}
	j.mu.Lock()
	for _, id := range ids {
		s := j.segs[id]
		if s == nil {
			j.mu.Unlock()
			p.Unpin()
			return nil, fmt.Errorf("pin segment %d: released or missing", id)
		}
		p.segs[id] = s
	}
	j.mu.Unlock()
	for id, s := range p.segs {
		s.mu.Lock()
		ok := !s.gone
		if ok {
			s.refs++
		}
		s.mu.Unlock()
		if !ok {
			delete(p.segs, id)
			p.Unpin()
			return nil, fmt.Errorf("pin segment %d: %w", id, ErrClosed)
		}
	}
	return p, nil
}

// Section returns a reader of the first n bytes of pinned segment id, or
// of the whole file when n < 0, and its length. The bytes must have been
// written (Sync) and must not change while they are read: a sealed
// segment, or the tail up to a position synced before.
func (p *Pinned) Section(id uint32, n int64) (*io.SectionReader, int64, error) {
	s := p.segs[id]
	if s == nil {
		return nil, 0, fmt.Errorf("segment %d is not pinned", id)
	}
	s.mu.Lock()
	f, gone := s.f, s.gone
	s.mu.Unlock()
	switch {
	case gone:
		return nil, 0, fmt.Errorf("read segment %d: %w", id, ErrClosed)
	case f == nil:
		return nil, 0, fmt.Errorf("read segment %d: not written yet", id)
	}
	size, err := f.Size()
	if err != nil {
		return nil, 0, fmt.Errorf("size of segment %d: %w", id, err)
	}
	if n < 0 {
		n = size
	}
	if n > size {
		return nil, 0, fmt.Errorf("segment %d holds %d bytes, %d expected", id, size, n)
	}
	return io.NewSectionReader(f, 0, n), n, nil
}

// Unpin drops the references: a segment released meanwhile is removed now
// (the last reference gone). It is safe to call more than once.
func (p *Pinned) Unpin() error {
	var err error
	for id, s := range p.segs {
		if rerr := s.releaseRef(p.j.removeSegment); rerr != nil && err == nil {
			err = rerr
		}
		delete(p.segs, id)
	}
	return err
}
