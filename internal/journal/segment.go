package journal

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/chutemq/chute/internal/vfs"
)

// segment is one segment file. Readers hold a reference while they read;
// a released segment's file is closed and removed when the last reference
// goes, never from inside a read.
type segment struct {
	id   uint32
	name string // path

	mu       sync.Mutex
	f        vfs.File // nil until the writer creates it
	refs     int      // readers inside ReadAt
	released bool     // no longer needed: remove when refs reaches 0
	gone     bool     // removed
}

func segName(dir string, id uint32) string {
	return path.Join(dir, fmt.Sprintf("%08x.seg", id))
}

// parseSegName returns the id of a segment file name.
func parseSegName(name string) (uint32, bool) {
	hex, ok := strings.CutSuffix(name, ".seg")
	if !ok || len(hex) != 8 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 32)
	return uint32(id), err == nil && id > 0
}

// acquire takes a reader reference; false if the segment is gone.
func (s *segment) acquire() (vfs.File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || s.f == nil {
		return nil, false
	}
	s.refs++
	return s.f, true
}

func (s *segment) releaseRef(rm func(name string) error) error {
	s.mu.Lock()
	s.refs--
	remove := s.refs == 0 && s.released && !s.gone
	if remove {
		s.gone = true
	}
	s.mu.Unlock()
	if remove {
		return s.remove(rm)
	}
	return nil
}

// release marks the segment unneeded and removes it once unreferenced.
func (s *segment) release(rm func(name string) error) error {
	s.mu.Lock()
	s.released = true
	remove := s.refs == 0 && !s.gone
	if remove {
		s.gone = true
	}
	s.mu.Unlock()
	if remove {
		return s.remove(rm)
	}
	return nil
}

func (s *segment) remove(rm func(name string) error) error {
	var err error
	if s.f != nil {
		err = s.f.Close()
	}
	if rerr := rm(s.name); rerr != nil && !vfs.IsNotExist(rerr) && err == nil {
		err = rerr
	}
	return err
}

func (s *segment) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil || s.gone {
		return nil
	}
	s.gone = true
	return s.f.Close()
}

// discard closes and removes the file of a segment whose writes a rewind
// undoes, reporting whether there was one. With gone the segment is done
// for; without, it stays as the tail, to be created again. A reader
// inside it would read bytes that were never confirmed: that fails the
// journal rather than pull the file from under it (no reader should be
// there: nothing refers to an unconfirmed record but the undone state).
func (s *segment) discard(fs vfs.FS, gone bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refs > 0 {
		return false, fmt.Errorf("segment %d is being read", s.id)
	}
	s.gone = gone
	if s.f == nil {
		return false, nil
	}
	s.f.Close()
	s.f = nil
	if err := fs.Remove(s.name); err != nil && !vfs.IsNotExist(err) {
		return true, fmt.Errorf("remove segment %d: %w", s.id, err)
	}
	return true, nil
}
