package vfs

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
)

// Op names a filesystem operation, for fault injection.
type Op int

const (
	OpCreate Op = iota
	OpOpen
	OpWrite
	OpSync
	OpRead
	OpRemove
	OpRename
	OpSyncDir
	OpTruncate
	OpLock
	OpPreallocate // File.Preallocate and vfs.Allocate: fallocate
	OpFree        // FS.Free: statfs
	numOps
)

var opNames = [numOps]string{"create", "open", "write", "sync", "read", "remove", "rename", "syncdir", "truncate", "lock", "fallocate", "statfs"}

func (op Op) String() string {
	if op >= 0 && op < numOps {
		return opNames[op]
	}
	return fmt.Sprintf("op(%d)", int(op))
}

// WriteFault is what an inject function returns to fail a write after
// storing part of it: the first Keep (0 to 1) of the buffer is written,
// then Err is returned. Any other error fails a write after storing the
// first half, as a device that fills up part-way does.
type WriteFault struct {
	Keep float64
	Err  error
}

func (w *WriteFault) Error() string {
	return fmt.Sprintf("%v (after a %.0f%% short write)", w.Err, w.Keep*100)
}

func (w *WriteFault) Unwrap() error { return w.Err }

// ErrInjected is the error Faulty returns by default.
var ErrInjected = errors.New("injected I/O error")

// ErrNoSpace is ENOSPC, for tests of a full disk.
var ErrNoSpace = syscall.ENOSPC

// Faulty wraps an FS and fails the operations its Inject function picks.
// A short write (OpWrite failing) writes the first half of the buffer, as
// a real device that fills up part-way does, unless the error is a
// *WriteFault that says how much. A Schedule (schedule.go) is an inject
// function that fails the Nth call of an operation, from a seed.
type Faulty struct {
	FS
	mu     sync.Mutex
	inject func(op Op, name string) error
}

// NewFaulty wraps fs; inject may be nil (no faults until SetInject).
func NewFaulty(fs FS, inject func(op Op, name string) error) *Faulty {
	return &Faulty{FS: fs, inject: inject}
}

// SetInject replaces the fault function.
func (f *Faulty) SetInject(inject func(op Op, name string) error) {
	f.mu.Lock()
	f.inject = inject
	f.mu.Unlock()
}

func (f *Faulty) fault(op Op, name string) error {
	f.mu.Lock()
	inject := f.inject
	f.mu.Unlock()
	if inject == nil {
		return nil
	}
	return inject(op, name)
}

func (f *Faulty) Create(name string) (File, error) {
	if err := f.fault(OpCreate, name); err != nil {
		return nil, err
	}
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

func (f *Faulty) Open(name string) (File, error) {
	if err := f.fault(OpOpen, name); err != nil {
		return nil, err
	}
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, fs: f, name: name}, nil
}

func (f *Faulty) Remove(name string) error {
	if err := f.fault(OpRemove, name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *Faulty) Rename(oldname, newname string) error {
	if err := f.fault(OpRename, oldname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

func (f *Faulty) SyncDir(dir string) error {
	if err := f.fault(OpSyncDir, dir); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

// Free passes through to the wrapped FS unless OpFree is injected.
func (f *Faulty) Free(dir string) (int64, int64, error) {
	if err := f.fault(OpFree, dir); err != nil {
		return 0, 0, err
	}
	return f.FS.Free(dir)
}

// Lock passes through to the wrapped FS unless OpLock is injected.
func (f *Faulty) Lock(name string) (io.Closer, error) {
	if err := f.fault(OpLock, name); err != nil {
		return nil, err
	}
	return f.FS.Lock(name)
}

type faultyFile struct {
	File
	fs   *Faulty
	name string
}

func (f *faultyFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(OpWrite, f.name); err != nil {
		keep := len(p) / 2
		var wf *WriteFault
		if errors.As(err, &wf) {
			keep = min(max(int(float64(len(p))*wf.Keep), 0), len(p))
		}
		n := 0
		if keep > 0 {
			n, _ = f.File.WriteAt(p[:keep], off)
		}
		return n, err
	}
	return f.File.WriteAt(p, off)
}

func (f *faultyFile) Preallocate(size int64) error {
	if err := f.fs.fault(OpPreallocate, f.name); err != nil {
		return err
	}
	return f.File.Preallocate(size)
}

// Allocate is vfs.Allocate's fast path, failed by OpPreallocate; where
// the wrapped file has none, vfs.Allocate writes through WriteAt, and
// OpWrite faults apply.
func (f *faultyFile) Allocate(size int64) error {
	if err := f.fs.fault(OpPreallocate, f.name); err != nil {
		return err
	}
	if a, ok := f.File.(allocator); ok {
		return a.Allocate(size)
	}
	return errors.ErrUnsupported
}

func (f *faultyFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fault(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *faultyFile) Sync() error {
	if err := f.fs.fault(OpSync, f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if err := f.fs.fault(OpTruncate, f.name); err != nil {
		return err
	}
	return f.File.Truncate(size)
}
