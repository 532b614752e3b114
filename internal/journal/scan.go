package journal

import (
	"fmt"
	"io"

	"github.com/chutemq/chute/internal/vfs"
)

// ScanReport is what Scan found.
type ScanReport struct {
	Segments   int
	Records    int64
	Bytes      int64  // frame bytes of valid records
	Checkpoint uint64 // position of the newest checkpoint (0: none)
	// TornTail describes damage at the end of the last segment that Open
	// would cut off (nil when the journal ends cleanly).
	TornTail *CorruptionError
}

// Scan reads a journal directory without changing it and calls fn with
// every valid record of every segment, in order. Damage that Open would
// report is returned as a *CorruptionError; a torn tail (which Open would
// cut) is put in the report instead. Unlike Open, it reads every segment,
// including those before the checkpoint: it is the deep check behind
// `chute journal verify`.
func Scan(fs vfs.FS, dir string, fn func(pos uint64, payload []byte) error) (ScanReport, error) {
	var rep ScanReport
	if fs == nil {
		fs = vfs.OS
	}
	names, err := fs.List(dir)
	if err != nil {
		return rep, fmt.Errorf("list %s: %w", dir, err)
	}
	var ids []uint32
	for _, n := range names {
		if id, ok := parseSegName(n); ok {
			ids = append(ids, id)
		}
		if p, ok := parseCkptName(n); ok && p > rep.Checkpoint {
			rep.Checkpoint = p
		}
	}
	sortIDs(ids)
	var buf []byte
	for i, id := range ids {
		rep.Segments++
		last := i == len(ids)-1
		name := segName(dir, id)
		f, err := fs.Open(name)
		if err != nil {
			return rep, fmt.Errorf("open %s: %w", name, err)
		}
		size, err := f.Size()
		if err == nil {
			if cap(buf) < int(size) {
				buf = make([]byte, size)
			}
			buf = buf[:size]
			_, err = f.ReadAt(buf, 0)
			if err == io.EOF {
				err = nil
			}
		}
		f.Close()
		if err != nil {
			return rep, fmt.Errorf("read %s: %w", name, err)
		}
		if err := checkSegHeader(buf, id); err != nil {
			return rep, &CorruptionError{File: name, Reason: err.Error()}
		}
		minCut := 0
		if id == uint32(rep.Checkpoint>>32) {
			minCut = int(rep.Checkpoint & 0xffffffff)
		}
		res, err := walkFrames(buf, name, id, last, 0, minCut, func(off int, payload []byte) error {
			rep.Records++
			rep.Bytes += int64(frameSize(len(payload)))
			if fn != nil {
				if err := fn(uint64(id)<<32|uint64(off+frameHeaderSize), payload); err != nil {
					return &CorruptionError{File: name, Offset: int64(off), Reason: err.Error()}
				}
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		if c := res.cut; c != nil && c.Reason != "no frame" {
			rep.TornTail = &CorruptionError{File: name, Offset: c.Off, Reason: c.Reason}
		}
	}
	return rep, nil
}

// ReadCheckpoint loads the newest checkpoint of a journal directory
// without opening the journal (for verify and dump).
func ReadCheckpoint(fs vfs.FS, dir string) (uint64, []byte, error) {
	if fs == nil {
		fs = vfs.OS
	}
	j := &Journal{opts: Options{FS: fs, Dir: dir}}
	return j.LoadCheckpoint()
}
