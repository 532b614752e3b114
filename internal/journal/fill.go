package journal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Writing zeros ahead of the tail (Options.FillAhead).
//
// A new segment's blocks are reserved (Preallocate: fallocate with
// KEEP_SIZE) but not written, so every append grows the file and turns
// reserved blocks into written ones: each fdatasync then has the file's
// size and its extents to commit as well as the data, which on ext4 is a
// commit of the file system's own journal (jbd2), one at a time for the
// whole volume. Into blocks already written and inside the file's length,
// an append changes data only and its sync writes data only. Measured on
// this project's machine (docs/replication.md, "Zeros ahead of the
// tail"): three loops of a 3 KB write + fdatasync side by side, p50 about
// 490 µs into written zeros against 570–660 µs into reserved blocks; a
// 3-node cluster's W3 end-to-end p99 dropped by about a sixth with its
// segments written with zeros first.
//
// So a goroutine of the journal's keeps the tail segment written with
// zeros FillAhead bytes past its last record (up to the segment's size),
// fillSlice at a time, a fillGap apart, each slice synced by itself. A
// slice is written holding wmu (no chunk is written meanwhile) and only
// at or past tailOff, which no frame has reached: what it overwrites
// later is a frame written after it. The zeros are what a reader already
// takes as the end of the records (an all-zero frame header), so nothing
// of the format changes, and a crash leaves what a preallocated segment
// would read as: zeros after the last record. A sync of the zeros that
// fails fails the journal, as a failed sync of the writer's does: the same
// file's dirty pages are at stake (journal.go, fail).
//
// Slices are small (64 KiB) because the writer's own sync, when it comes
// between a slice's write and the goroutine's sync of it, writes the
// slice too, and the file's new size: with 1 MiB slices a 3-node W3's
// p99.9 reached 70 ms in one run of four, and the p99 gained less
// (docs/replication.md).
//
// The writer wakes the goroutine once its writes come within half of
// FillAhead of what is filled (or of the segment's end). While the volume
// is short of space nothing is filled; a journal whose sync policy is not
// SyncAlways has no such goroutine (Open).

const (
	fillSlice = 64 << 10
	fillGap   = time.Millisecond
)

// DefaultFillAhead is the FillAhead the broker and cluster nodes use.
const DefaultFillAhead = 4 << 20

// filler is the goroutine's state; nil when FillAhead is 0.
type filler struct {
	ahead int64
	size  int64 // the segments' size: nothing is filled past it
	zeros []byte
	kick  chan struct{} // buffered, 1
	stop  chan struct{} // closed by Close
	once  sync.Once     // closes stop
	done  chan struct{} // closed when the goroutine exits
	// mark is the position (segment id << 32 | offset) up to which the
	// tail is known filled; the writer compares its own with it.
	mark atomic.Uint64
	// passed, when set (tests), is signalled after every pass.
	passed chan struct{}
}

func newFiller(ahead, segSize int64) *filler {
	return &filler{ahead: ahead, size: segSize, zeros: make([]byte, min(fillSlice, ahead)),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// wrote is the writer's note that it wrote up to end in segment seg:
// the goroutine is woken when that comes within half of FillAhead of
// the mark, unless the mark is the segment's end already.
func (f *filler) wrote(seg uint32, end int64) {
	if uint64(seg)<<32|uint64(min(end+f.ahead/2, f.size)) <= f.mark.Load() {
		return
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// runFill is the goroutine: a pass of slices on every kick.
func (j *Journal) runFill() {
	f := j.fill
	defer close(f.done)
	for {
		select {
		case <-f.kick:
		case <-f.stop:
			return
		}
		for j.fillStep() {
			if !pause(fillGap, f.stop) {
				return
			}
		}
		if f.passed != nil {
			select {
			case f.passed <- struct{}{}:
			default:
			}
		}
	}
}

// fillStep writes and syncs one slice of zeros past the tail if the tail
// is not filled far enough; true when it wrote one and more may be due.
func (j *Journal) fillStep() bool {
	f := j.fill
	if j.shortOfSpace() {
		return false
	}
	j.wmu.Lock()
	j.mu.Lock()
	s, tail, stopped := j.tail, j.tailOff, j.closed || j.err != nil || j.full != nil
	j.mu.Unlock()
	if stopped || s == nil {
		j.wmu.Unlock()
		return false
	}
	file, ok := s.acquire()
	if !ok { // not created yet: the writer's first write to it kicks again
		j.wmu.Unlock()
		return false
	}
	defer s.releaseRef(j.removeSegment)
	size, err := file.Size()
	if err != nil {
		j.wmu.Unlock()
		j.log.Warn("journal: size of the tail segment, to fill it", "segment", s.id, "err", err)
		return false
	}
	from := max(size, tail) // never before the tail: frames go there
	target := max(min(tail+f.ahead, j.segSize), from)
	if from == target {
		j.wmu.Unlock()
		f.mark.Store(uint64(s.id)<<32 | uint64(from))
		return false
	}
	n := min(int64(len(f.zeros)), target-from)
	_, err = file.WriteAt(f.zeros[:n], from)
	j.wmu.Unlock()
	if err != nil {
		// Zeros past the tail are harmless where they got to; a disk that
		// is full is the writer's to find.
		j.log.Debug("journal: write zeros ahead of the tail", "segment", s.id, "offset", from, "err", err)
		return false
	}
	if err := file.Sync(); err != nil {
		j.fail(fmt.Errorf("sync zeros ahead of segment %d's tail: %w", s.id, err))
		return false
	}
	j.stats.filled.Add(n)
	f.mark.Store(uint64(s.id)<<32 | uint64(from+n))
	return from+n < target
}

// closeFill stops the goroutine (Close).
func (j *Journal) closeFill() {
	if j.fill == nil {
		return
	}
	j.fill.once.Do(func() { close(j.fill.stop) })
	<-j.fill.done
}
