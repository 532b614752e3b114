package vfs

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// MemFS is an in-memory filesystem that remembers what was made durable:
// the bytes of a file as of its last Sync, and the directory entries as of
// the last SyncDir. CrashClone returns what a machine would find after
// power loss at this instant. It is safe for concurrent use.
//
// With SetCapacity it is also a volume of that size: every byte a file
// holds (its length, or what Preallocate reserved past it) counts, and a
// write, Truncate, Preallocate or Allocate that needs more than is left
// fails with ENOSPC, a write after storing the prefix that fits, as a
// real file system does. Free reports what is left. A removed file's
// space comes back at once (as on POSIX once the last descriptor is
// closed; MemFS does not wait for the close).
type MemFS struct {
	mu       sync.Mutex
	files    map[string]*memNode // current names
	durable  map[string]*memNode // names as of the last SyncDir of their dir
	dirs     map[string]bool
	locks    map[string]bool // names held by Lock; a crash (CrashClone) drops them all
	capacity atomic.Int64    // bytes; 0: unlimited
	used     atomic.Int64    // bytes held by the files in files (see memNode.usage)
}

// memUnlimited is the size Free reports for a MemFS without a capacity.
const memUnlimited = 1 << 50

type memNode struct {
	mu         sync.RWMutex
	fs         *MemFS // whose capacity the node's bytes count against
	data       []byte
	hole       int64  // zero bytes after data, allocated by Allocate but not stored
	synced     []byte // content as of the last Sync
	syncedHole int64  // hole as of the last Sync
	dirty      int    // lowest offset changed since the last Sync
	prealloc   int64  // bytes reserved by Preallocate (KEEP_SIZE): usage, not length
	detached   bool   // removed or replaced: no longer counted in fs.used
}

// size is the file's length.
func (n *memNode) size() int64 { return int64(len(n.data)) + n.hole }

// usage is the space the node takes on the volume.
func (n *memNode) usage() int64 { return max(n.size(), n.prealloc) }

// charge takes delta bytes of the volume for the node (gives them back
// when negative). With partial it takes what is left when that is less,
// else nothing; it returns what it took. Callers hold n.mu.
func (n *memNode) charge(delta int64, partial bool) int64 {
	if n.detached || n.fs == nil || delta == 0 {
		return delta
	}
	m := n.fs
	for {
		used := m.used.Load()
		got := delta
		if limit := m.capacity.Load(); delta > 0 && limit > 0 && used+delta > limit {
			got = 0
			if partial {
				got = max(limit-used, 0)
			}
		}
		if m.used.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

// materialise turns the hole into stored zeros, before a write or a
// truncation changes the bytes around it.
func (n *memNode) materialise() {
	if n.hole > 0 {
		n.touch(len(n.data))
		n.data = append(n.data, make([]byte, n.hole)...)
		n.hole = 0
	}
}

// detachLocked stops counting a node that leaves the namespace (callers
// hold m.mu).
func (m *MemFS) detachLocked(n *memNode) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if !n.detached {
		m.used.Add(-n.usage())
		n.detached = true
	}
	n.mu.Unlock()
}

// SetCapacity makes the MemFS a volume of n bytes (0: unlimited). Files
// already over it stay; only growth is refused.
func (m *MemFS) SetCapacity(n int64) { m.capacity.Store(max(n, 0)) }

// Free reports the bytes left under the capacity (for any dir), and the
// capacity; without one, a volume of 1 PiB.
func (m *MemFS) Free(dir string) (free, total int64, err error) {
	total = m.capacity.Load()
	if total == 0 {
		total = memUnlimited
	}
	return max(total-m.used.Load(), 0), total, nil
}

// Used is the bytes the files hold, as counted against the capacity.
func (m *MemFS) Used() int64 { return m.used.Load() }

func (n *memNode) touch(off int) {
	if off < n.dirty {
		n.dirty = off
	}
}

// NewMemFS returns an empty in-memory filesystem.
func NewMemFS() *MemFS {
	return &MemFS{files: map[string]*memNode{}, durable: map[string]*memNode{}, dirs: map[string]bool{".": true, "/": true}}
}

func clean(name string) string { return path.Clean(name) }

func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if !m.dirs[path.Dir(name)] {
		return nil, &os.PathError{Op: "create", Path: name, Err: os.ErrNotExist}
	}
	m.detachLocked(m.files[name])
	n := &memNode{fs: m}
	m.files[name] = n
	return &memFile{n: n, name: name}, nil
}

func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	n := m.files[name]
	if n == nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	return &memFile{n: n, name: name}, nil
}

func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if m.files[name] == nil {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	m.detachLocked(m.files[name])
	delete(m.files, name)
	return nil
}

func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldname, newname = clean(oldname), clean(newname)
	n := m.files[oldname]
	if n == nil {
		return &os.PathError{Op: "rename", Path: oldname, Err: os.ErrNotExist}
	}
	if old := m.files[newname]; old != n {
		m.detachLocked(old)
	}
	delete(m.files, oldname)
	m.files[newname] = n
	return nil
}

func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "list", Path: dir, Err: os.ErrNotExist}
	}
	var names []string
	for name := range m.files {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := clean(dir); ; d = path.Dir(d) {
		m.dirs[d] = true
		if d == "." || d == "/" {
			return nil
		}
	}
}

// SyncDir makes the current set of names in dir durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	for name := range m.durable {
		if path.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, n := range m.files {
		if path.Dir(name) == dir {
			m.durable[name] = n
		}
	}
	return nil
}

// Lock holds name in this MemFS until the returned closer is closed, like
// an OS file lock held by a process: two brokers on one MemFS conflict as
// two processes on one directory do. The file is created if missing.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if !m.dirs[path.Dir(name)] {
		return nil, &os.PathError{Op: "lock", Path: name, Err: os.ErrNotExist}
	}
	if m.locks[name] {
		return nil, &os.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	if m.files[name] == nil {
		m.files[name] = &memNode{fs: m}
	}
	if m.locks == nil {
		m.locks = make(map[string]bool)
	}
	m.locks[name] = true
	return &memLock{m: m, name: name}, nil
}

// Locked reports whether name is locked (for tests).
func (m *MemFS) Locked(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.locks[clean(name)]
}

type memLock struct {
	m    *MemFS
	name string
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.m.mu.Lock()
		delete(l.m.locks, l.name)
		l.m.mu.Unlock()
	})
	return nil
}

// CrashClone returns the filesystem as power loss now would leave it: the
// durable names, each with its synced bytes. With rng non-nil, each file
// also keeps a random part of its unsynced tail, and some of that may be
// garbage, as a write cut short by the crash leaves it.
func (m *MemFS) CrashClone(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemFS()
	c.capacity.Store(m.capacity.Load())
	for d := range m.dirs {
		c.dirs[d] = true
	}
	// In name order: the same rng then tears the same files the same way
	// (a deterministic simulation replays a crash exactly).
	for _, name := range slices.Sorted(maps.Keys(m.durable)) {
		n := m.durable[name]
		n.mu.RLock()
		data := slices.Clone(n.synced)
		if rng != nil && len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
			extra := n.data[len(n.synced):]
			keep := rng.IntN(len(extra) + 1)
			data = append(data, extra[:keep]...)
			if keep > 0 && rng.IntN(3) == 0 { // a torn sector: garbage at the end
				for i := max(len(data)-rng.IntN(64)-1, len(n.synced)); i < len(data); i++ {
					data[i] = byte(rng.IntN(256))
				}
			}
		}
		hole := n.syncedHole
		n.mu.RUnlock()
		c.adopt(name, data, hole)
	}
	return c
}

// adopt adds a durable file to a fresh clone.
func (c *MemFS) adopt(name string, data []byte, hole int64) {
	cn := &memNode{fs: c, data: data, synced: slices.Clone(data), dirty: len(data), hole: hole, syncedHole: hole}
	c.files[name] = cn
	c.durable[name] = cn
	c.used.Add(cn.usage())
}

// CrashCloneReordered is CrashClone for a power loss during writeback
// that reached the disk out of order: each file keeps its whole unsynced
// tail (its size was updated), but every 512-byte sector of that tail,
// independently and with even odds, holds what it held at the last sync —
// zeros — as on ext4 (data=ordered) or XFS when some pages of a write
// were not written back before the power went.
func (m *MemFS) CrashCloneReordered(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemFS()
	c.capacity.Store(m.capacity.Load())
	for d := range m.dirs {
		c.dirs[d] = true
	}
	const sector = 512
	for name, n := range m.durable {
		n.mu.RLock()
		data := slices.Clone(n.synced)
		if len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
			data = slices.Clone(n.data)
			for s := len(n.synced) &^ (sector - 1); s < len(data); s += sector {
				if rng.IntN(2) == 0 {
					clear(data[max(s, len(n.synced)):min(s+sector, len(data))])
				}
			}
		}
		hole := n.syncedHole
		n.mu.RUnlock()
		c.adopt(name, data, hole)
	}
	return c
}

// Usage is the bytes written to the files in dir (for tests of disk use):
// space taken by Allocate (the broker's RESERVE) or Preallocate is not
// counted; Used and Free count everything against the capacity.
func (m *MemFS) Usage(dir string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for name, f := range m.files {
		if path.Dir(name) == clean(dir) {
			f.mu.RLock()
			n += int64(len(f.data))
			f.mu.RUnlock()
		}
	}
	return n
}

// Bytes returns a copy of a file's current content (for tests).
func (m *MemFS) Bytes(name string) ([]byte, error) {
	m.mu.Lock()
	n := m.files[clean(name)]
	m.mu.Unlock()
	if n == nil {
		return nil, &os.PathError{Op: "read", Path: name, Err: os.ErrNotExist}
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return append(slices.Clone(n.data), make([]byte, n.hole)...), nil
}

// SetBytes replaces a file's content, durably (for tests that damage files).
func (m *MemFS) SetBytes(name string, b []byte) error {
	m.mu.Lock()
	n := m.files[clean(name)]
	m.mu.Unlock()
	if n == nil {
		return &os.PathError{Op: "write", Path: name, Err: os.ErrNotExist}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	before := n.usage()
	n.data, n.synced, n.dirty = slices.Clone(b), slices.Clone(b), len(b)
	n.hole, n.syncedHole, n.prealloc = 0, 0, 0
	n.charge(n.usage()-before, true)
	return nil
}

type memFile struct {
	n      *memNode
	name   string
	closed bool
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, os.ErrClosed
	}
	f.n.mu.RLock()
	defer f.n.mu.RUnlock()
	size := f.n.size()
	if off >= size {
		return 0, io.EOF
	}
	n := 0
	if off < int64(len(f.n.data)) {
		n = copy(p, f.n.data[off:])
	}
	if n < len(p) { // the hole reads as zeros
		z := min(int64(len(p)-n), size-off-int64(n))
		clear(p[n : n+int(z)])
		n += int(z)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt stores p at off. If the volume cannot hold it all, it stores
// the prefix that fits and fails with ENOSPC.
func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("write %s: negative offset", f.name)
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.materialise()
	before := n.usage()
	var full error
	if end := off + int64(len(p)); end > before {
		need := end - before
		got := n.charge(need, true)
		if got < need {
			keep := min(max(before+got-off, 0), int64(len(p)))
			p = p[:keep]
			full = &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
			defer func() { n.charge(n.usage()-before-got, true) }() // give back what was not used
		}
	}
	if len(p) == 0 {
		return 0, full
	}
	n.touch(int(off))
	if end := int(off) + len(p); end > len(n.data) {
		if end > cap(n.data) {
			grown := make([]byte, end, max(end, 2*cap(n.data)))
			copy(grown, n.data)
			n.data = grown
		} else {
			n.data = n.data[:end]
		}
	}
	copy(n.data[off:], p)
	return len(p), full
}

func (f *memFile) Sync() error {
	if f.closed {
		return os.ErrClosed
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	n := f.n
	d := min(n.dirty, len(n.synced), len(n.data))
	n.synced = append(n.synced[:d], n.data[d:]...)
	n.syncedHole = n.hole
	n.dirty = len(n.data)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.n.mu.RLock()
	defer f.n.mu.RUnlock()
	return f.n.size(), nil
}

// Truncate sets the length. Like ftruncate on Linux, it also gives back
// blocks Preallocate reserved past the new end. Growing stores zeros,
// and fails with ENOSPC, changing nothing, when the volume cannot hold
// them.
func (f *memFile) Truncate(size int64) error {
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	before := n.usage()
	var charged int64
	switch {
	case size <= int64(len(n.data)):
		n.touch(int(size))
		clear(n.data[size:])
		n.data, n.hole = n.data[:size], 0
	case size <= n.size(): // inside the hole
		n.hole = size - int64(len(n.data))
	default:
		if size > before {
			if n.charge(size-before, false) == 0 {
				return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.ENOSPC}
			}
			charged = size - before
		}
		n.materialise()
		n.touch(len(n.data))
		n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
	}
	n.prealloc = 0
	n.charge(n.usage()-before-charged, true)
	return nil
}

// Preallocate reserves space up to size without changing the length
// (fallocate KEEP_SIZE): it counts against the capacity, and fails with
// ENOSPC, reserving nothing, when the volume cannot hold it.
func (f *memFile) Preallocate(size int64) error {
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if before := n.usage(); size > before {
		if n.charge(size-before, false) == 0 {
			return &os.PathError{Op: "preallocate", Path: f.name, Err: syscall.ENOSPC}
		}
		n.prealloc = size
	}
	return nil
}

// Allocate (fallocate mode 0, see vfs.Allocate) extends the file to size
// with zeros that count against the capacity but are not stored, so that
// a test's reserve costs no memory; all or nothing, ENOSPC when the
// volume cannot hold it.
func (f *memFile) Allocate(size int64) error {
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if size <= n.size() {
		return nil
	}
	before := n.usage()
	if after := max(size, n.prealloc); after > before && n.charge(after-before, false) == 0 {
		return &os.PathError{Op: "allocate", Path: f.name, Err: syscall.ENOSPC}
	}
	n.touch(len(n.data))
	n.hole = size - int64(len(n.data))
	return nil
}

func (f *memFile) Close() error {
	f.closed = true
	return nil
}
