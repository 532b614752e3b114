package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// Sync is fdatasync: the data and the size, not the timestamps, which
// saves the journal a metadata write per commit. The length is included
// (fdatasync flushes metadata needed to read the data back), which is what
// the journal needs, since it treats the file's length as its data.
//
// EINTR is retried: the Go runtime preempts goroutines with signals, and
// an interrupted fdatasync has not failed, it has not finished. Any other
// error is returned and not retried; after a failed fsync the kernel may
// already have dropped the dirty pages, so the caller must treat the file
// as broken (STYLE.md habit 6).
func (o osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(o.f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: o.f.Name(), Err: err}
			}
			return nil
		}
	}
}

// Preallocate uses fallocate with KEEP_SIZE, so that the blocks are
// reserved (a later write does not fail with ENOSPC half-way through a
// segment, and the segment is laid out contiguously) while the file's
// length stays the length of its data: the journal reads the length as
// "how much was written". Filesystems without fallocate (EOPNOTSUPP, e.g.
// some FUSE and network file systems) or kernels without it (ENOSYS) are
// left alone: preallocation is an optimisation, never needed for
// correctness.
func (o osFile) Preallocate(size int64) error {
	for {
		err := unix.Fallocate(int(o.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
		switch err {
		case nil, unix.EOPNOTSUPP, unix.ENOSYS:
			return nil
		case unix.EINTR:
			continue
		}
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
	}
}

// syncDir is a plain fsync of the directory.
func syncDir(d *os.File) error { return d.Sync() }
