package journal

import (
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/chutemq/chute/internal/vfs"
)

// Giving a released segment's blocks back in slices (Options.ReclaimSlice).
//
// Unlinking a full 64 MiB segment frees all its extents in one file-system
// transaction, and every fdatasync on the volume waits behind it: measured
// on this project's ext4 machine, a sync loop beside the unlink of three
// written segments stalled 40–126 ms, where truncating them 256 KiB at a
// time, a millisecond apart, kept its worst sync to 12–20 ms (docs/
// replication.md, "The W3 stall"). A cluster node compacts on its Raft
// loop, and the first compaction after a heavy workload released hundreds
// of MiB there: a 270 ms stall of every commit.
//
// So a released segment's file is renamed to NAME.free at once (a cheap
// metadata change, where its release used to unlink it), and a goroutine
// of the journal's then syncs the directory (a crash must not bring the
// file back under its segment name with part of it gone), truncates it a
// slice at a time and removes it. A crash leaves either the whole segment
// under its old name (as an unlink not yet synced always could: it is
// older than the checkpoint, and Replay does not read it) or a NAME.free
// file, which the next Open gives back the same way.
//
// While the volume is short of space (a batch undone for lack of it, or
// preallocation turned off) the slices follow one another without a
// pause: the space is what the journal is waiting for.

// freeSuffix marks a released segment file being given back.
const freeSuffix = ".free"

// reclaimer is the journal's goroutine that gives back released segments.
// It starts with the first file and stops on Close, which removes what is
// left at once.
type reclaimer struct {
	fs    vfs.FS
	dir   string
	slice int64
	gap   time.Duration
	log   *slog.Logger
	hurry func() bool // the volume is short of space: no pause between slices

	mu      sync.Mutex
	queue   []string // paths of .free files to give back, in order
	running bool
	closed  bool
	wake    chan struct{} // buffered, 1
	stop    chan struct{} // closed by close
	done    chan struct{} // closed when the goroutine exits (if it ran)
	pending int           // files queued or being given back (Stats.Reclaiming)
}

func newReclaimer(fs vfs.FS, dir string, slice int64, gap time.Duration, log *slog.Logger, hurry func() bool) *reclaimer {
	if gap <= 0 {
		gap = time.Millisecond
	}
	return &reclaimer{fs: fs, dir: dir, slice: slice, gap: gap, log: log, hurry: hurry,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// release takes a released segment's file: renamed aside now, given back
// by the goroutine. If the rename fails the file is removed at once.
func (r *reclaimer) release(name string) error {
	free := name + freeSuffix
	if err := r.fs.Rename(name, free); err != nil {
		if vfs.IsNotExist(err) {
			return nil
		}
		r.log.Warn("journal: rename a released segment aside; removing it at once", "file", name, "err", err)
		if rerr := r.fs.Remove(name); rerr != nil && !vfs.IsNotExist(rerr) {
			return rerr
		}
		return nil
	}
	r.add(free)
	return nil
}

// add queues a .free file and starts the goroutine if it is not running.
func (r *reclaimer) add(free string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		if err := r.fs.Remove(free); err != nil && !vfs.IsNotExist(err) {
			r.log.Warn("journal: remove a released segment", "file", free, "err", err)
		}
		return
	}
	r.queue = append(r.queue, free)
	r.pending++
	if !r.running {
		r.running = true
		go r.run()
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run gives back the queued files until the queue is empty and close is
// called.
func (r *reclaimer) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		r.mu.Unlock()
		if len(batch) > 0 {
			// One directory sync makes every rename so far durable
			// before any of those files loses a block.
			if err := r.fs.SyncDir(r.dir); err != nil {
				r.log.Warn("journal: sync the directory of released segments", "dir", r.dir, "err", err)
			}
		}
		for _, name := range batch {
			r.give(name)
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-r.wake:
		case <-r.stop:
			r.mu.Lock()
			rest := r.queue
			r.queue = nil
			r.mu.Unlock()
			for _, name := range rest {
				r.removeNow(name)
			}
			return
		}
	}
}

// give truncates one file a slice at a time, then removes it. On close
// it stops pausing and removes the file whole.
func (r *reclaimer) give(name string) {
	f, err := r.fs.Open(name)
	if err == nil {
		size, serr := f.Size()
		for serr == nil && size > 0 {
			size = max(size-r.slice, 0)
			if serr = f.Truncate(size); serr != nil || size == 0 {
				break
			}
			if r.hurry() {
				continue
			}
			if !pause(r.gap, r.stop) {
				size = 0 // closing: remove the rest whole
			}
		}
		if serr != nil {
			r.log.Warn("journal: give back a released segment", "file", name, "err", serr)
		}
		f.Close()
	}
	r.removeNow(name)
}

func (r *reclaimer) removeNow(name string) {
	err := r.fs.Remove(name)
	if err != nil && !vfs.IsNotExist(err) {
		r.log.Warn("journal: remove a released segment", "file", name, "err", err)
	}
	r.mu.Lock()
	r.pending--
	r.mu.Unlock()
}

// reclaiming is the number of files still to give back.
func (r *reclaimer) reclaiming() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// close stops the goroutine, which first removes what is left.
func (r *reclaimer) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	running := r.running
	r.mu.Unlock()
	close(r.stop)
	if running {
		<-r.done
	}
}

// leftovers queues the .free files a crash left among names (dir's).
func (r *reclaimer) leftovers(names []string) {
	for _, n := range names {
		if isFree(n) {
			r.add(path.Join(r.dir, n))
		}
	}
}

// removeLeftovers removes, at once, the .free files a crash left among
// names (dir's), for a journal without a reclaimer.
func removeLeftovers(fs vfs.FS, dir string, names []string, log *slog.Logger) {
	for _, n := range names {
		if !isFree(n) {
			continue
		}
		if err := fs.Remove(path.Join(dir, n)); err != nil && !vfs.IsNotExist(err) {
			log.Warn("journal: remove a released segment", "file", n, "err", err)
		}
	}
}

// isFree says whether a file name is a released segment being given back.
func isFree(name string) bool { return strings.HasSuffix(name, ".seg"+freeSuffix) }

// pause waits d, or until stop is closed (false): the pace of the
// journal's background goroutines (the reclaimer's slices, the zeros
// ahead of the tail).
func pause(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
