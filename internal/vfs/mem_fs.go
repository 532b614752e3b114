package vfs

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sync"
)

// MemFS is an in-memory filesystem that remembers what was made durable:
// the bytes of a file as of its last Sync, and the directory entries as of
// the last SyncDir. CrashClone returns what a machine would find after
// power loss at this instant. It is safe for concurrent use.
type MemFS struct {
	mu      sync.Mutex
	files   map[string]*memNode // current names
	durable map[string]*memNode // names as of the last SyncDir of their dir
	dirs    map[string]bool
	locks   map[string]bool // names held by Lock; a crash (CrashClone) drops them all
}

type memNode struct {
	mu     sync.RWMutex
	data   []byte
	synced []byte // content as of the last Sync
	dirty  int    // lowest offset changed since the last Sync
}

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
	n := &memNode{}
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
		m.files[name] = &memNode{}
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
	for d := range m.dirs {
		c.dirs[d] = true
	}
	for name, n := range m.durable {
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
		n.mu.RUnlock()
		cn := &memNode{data: data, synced: slices.Clone(data), dirty: len(data)}
		c.files[name] = cn
		c.durable[name] = cn
	}
	return c
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
		n.mu.RUnlock()
		cn := &memNode{data: data, synced: slices.Clone(data), dirty: len(data)}
		c.files[name] = cn
		c.durable[name] = cn
	}
	return c
}

// Usage is the total size of the files in dir (for tests of disk use).
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
	return slices.Clone(n.data), nil
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
	n.data, n.synced, n.dirty = slices.Clone(b), slices.Clone(b), len(b)
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
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("write %s: negative offset", f.name)
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	f.n.touch(int(off))
	if end := int(off) + len(p); end > len(f.n.data) {
		if end > cap(f.n.data) {
			grown := make([]byte, end, max(end, 2*cap(f.n.data)))
			copy(grown, f.n.data)
			f.n.data = grown
		} else {
			f.n.data = f.n.data[:end]
		}
	}
	copy(f.n.data[off:], p)
	return len(p), nil
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
	n.dirty = len(n.data)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.n.mu.RLock()
	defer f.n.mu.RUnlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Truncate(size int64) error {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	f.n.touch(int(min(size, int64(len(f.n.data)))))
	if size < int64(len(f.n.data)) {
		clear(f.n.data[size:])
		f.n.data = f.n.data[:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, int(size)-len(f.n.data))...)
	}
	return nil
}

func (f *memFile) Preallocate(int64) error { return nil }

func (f *memFile) Close() error {
	f.closed = true
	return nil
}
