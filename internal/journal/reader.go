package journal

import (
	"fmt"
	"io"
	"slices"
)

func sortIDs(ids []uint32) { slices.Sort(ids) }

// Replay calls fn with every record from position from (0: the start) in
// order, then starts the writer; Append is refused until it has run.
// payload is only valid during the call. A torn tail of the last segment is
// cut off and logged; damage anywhere else stops the replay with a
// *CorruptionError. An error from fn stops the replay and is returned.
func (j *Journal) Replay(from uint64, fn func(payload []byte, pos uint64) error) error {
	j.mu.Lock()
	if j.replayed || j.closed {
		j.mu.Unlock()
		return fmt.Errorf("replay: journal already started or closed")
	}
	ids := make([]uint32, 0, len(j.segs))
	for id := range j.segs {
		ids = append(ids, id)
	}
	j.mu.Unlock()
	sortIDs(ids)
	fromSeg, fromOff := uint32(from>>32), int(from&0xffffffff)
	// Segments before the start position may have been released in any
	// order; from it on, every record is needed, so none may be missing.
	for i := 1; i < len(ids); i++ {
		if ids[i] > fromSeg && ids[i] != ids[i-1]+1 {
			return &CorruptionError{File: segName(j.opts.Dir, ids[i-1]+1), Reason: fmt.Sprintf("segment missing between %d and %d", ids[i-1], ids[i])}
		}
	}
	if fromSeg != 0 && (len(ids) == 0 || !slices.Contains(ids, fromSeg)) {
		return &CorruptionError{File: segName(j.opts.Dir, fromSeg), Reason: "the checkpoint's segment is missing"}
	}
	var buf []byte
	for i, id := range ids {
		s := j.segs[id]
		last := i == len(ids)-1
		f, err := j.opts.FS.Open(s.name)
		if err != nil {
			return fmt.Errorf("open segment %d: %w", id, err)
		}
		s.f = f
		if id < fromSeg && !last { // before the checkpoint: needed for bodies only
			var h [segHeaderSize]byte
			if _, err := f.ReadAt(h[:], 0); err != nil && err != io.EOF {
				return fmt.Errorf("read segment %d: %w", id, err)
			}
			if err := checkSegHeader(h[:], id); err != nil {
				return &CorruptionError{File: s.name, Reason: err.Error()}
			}
			continue
		}
		end, err := j.replaySegment(s, last, id >= fromSeg, fromSegOff(id, fromSeg, fromOff), &buf, fn)
		if err != nil {
			return err
		}
		if last {
			if end == 0 { // nothing usable: a crash right after creating it
				j.log.Warn("removing empty last segment", "segment", id)
				s.close()
				if err := j.opts.FS.Remove(s.name); err != nil {
					return fmt.Errorf("remove empty segment %d: %w", id, err)
				}
				delete(j.segs, id)
				if i > 0 {
					j.tail = j.segs[ids[i-1]]
					j.tailOff, err = j.segmentEnd(j.tail)
					if err != nil {
						return err
					}
				}
			} else {
				j.tail, j.tailOff = s, end
			}
		}
	}
	j.mu.Lock()
	j.replayed = true
	j.mu.Unlock()
	go j.writeLoop()
	if j.fill != nil {
		go j.runFill()
	}
	return nil
}

func fromSegOff(id, fromSeg uint32, fromOff int) int {
	if id == fromSeg {
		return fromOff
	}
	return segHeaderSize
}

// replaySegment validates segment s and, when replay is set, calls fn for
// its records from offset start. It returns the offset where valid data
// ends (0 if the segment has no valid header and is the last one). The
// rules for damage are in damage.go.
func (j *Journal) replaySegment(s *segment, last, replay bool, start int, buf *[]byte, fn func([]byte, uint64) error) (int64, error) {
	size, err := s.f.Size()
	if err != nil {
		return 0, fmt.Errorf("size of segment %d: %w", s.id, err)
	}
	if cap(*buf) < int(size) {
		*buf = make([]byte, size)
	}
	data := (*buf)[:size]
	if _, err := s.f.ReadAt(data, 0); err != nil && err != io.EOF {
		return 0, fmt.Errorf("read segment %d: %w", s.id, err)
	}
	if err := checkSegHeader(data, s.id); err != nil {
		if last && !anyValidFrameAfter(data, 0, s.id) {
			return 0, nil
		}
		return 0, &CorruptionError{File: s.name, Offset: 0, Reason: err.Error()}
	}
	skipBefore := 0
	if replay {
		skipBefore = start
	}
	res, err := walkFrames(data, s.name, s.id, last, skipBefore, skipBefore, func(off int, payload []byte) error {
		if !replay || off < start {
			return nil
		}
		pos := uint64(s.id)<<32 | uint64(off+frameHeaderSize)
		if err := fn(payload, pos); err != nil {
			return fmt.Errorf("segment %d offset %d: %w", s.id, off, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range res.skipped {
		d := Damage{File: s.name, Seg: s.id, Region: r}
		j.log.Warn("damage before the checkpoint position: its records are in the checkpoint; checking the bodies it may hold",
			"file", s.name, "offset", r.Off, "bytes", r.End-r.Off, "reason", r.Reason)
		j.mu.Lock()
		j.skipped = append(j.skipped, d)
		j.mu.Unlock()
	}
	if c := res.cut; c != nil {
		if err := j.cutTail(s, int(c.Off), int(c.End-c.Off), c.Reason); err != nil {
			return 0, err
		}
	}
	return int64(res.end), nil
}

// Damage is a damaged region of a segment file that Replay skipped
// because the checkpoint covers it.
type Damage struct {
	File string
	Seg  uint32
	Region
}

// Skipped returns the damaged regions Replay skipped (they lie before the
// checkpoint's position, so no record there is needed; the message bodies
// there may be).
func (j *Journal) Skipped() []Damage {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.skipped)
}

// cutTail truncates the last segment's torn tail: bytes that a crash left
// after the last whole frame, none of them ever confirmed.
func (j *Journal) cutTail(s *segment, off, n int, reason string) error {
	j.log.Warn("cutting torn tail of the last segment", "segment", s.id, "offset", off, "bytes", n, "reason", reason)
	if err := s.f.Truncate(int64(off)); err != nil {
		return fmt.Errorf("truncate torn tail of segment %d: %w", s.id, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", s.id, err)
	}
	return nil
}

// segmentEnd finds where valid data ends in a segment already replayed.
func (j *Journal) segmentEnd(s *segment) (int64, error) {
	var buf []byte
	return j.replaySegment(s, true, false, 0, &buf, nil)
}
