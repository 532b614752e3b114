// Package vfs is the small filesystem interface the journal is written
// against, so that tests can run it in memory, simulate a crash (MemFS
// CrashClone) and inject I/O errors (Faulty). The OS implementation is a
// thin layer over package os.
package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// FS is what the journal needs of a filesystem. Paths are slash-separated.
type FS interface {
	// Create creates or truncates a file for reading and writing.
	Create(name string) (File, error)
	// Open opens an existing file for reading and writing.
	Open(name string) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	MkdirAll(dir string) error
	// SyncDir makes creations, removals and renames in dir durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, creating it if it is
	// missing, without waiting: if anyone else (another process, or another
	// Lock call in this one) holds it, it fails with an error that matches
	// ErrLocked. Closing the result releases the lock; so does the death of
	// the process. See lock.go for what a data directory's lock holds.
	Lock(name string) (io.Closer, error)
	// Free reports the bytes an unprivileged writer may still use on the
	// volume that holds dir (statfs f_bavail, GetDiskFreeSpaceEx's
	// caller-available bytes), and the volume's size. It fails with an
	// error matching errors.ErrUnsupported where the platform cannot tell
	// (see free_*.go). It is a system call: callers sample it, not call it
	// per operation.
	Free(dir string) (free, total int64, err error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes every completed write durable (fdatasync).
	Sync() error
	// Size is the file's current length.
	Size() (int64, error)
	Truncate(size int64) error
	// Preallocate reserves space up to size without changing what reads
	// return (zeros past the written data); it may be a no-op.
	Preallocate(size int64) error
	Close() error
}

// IsNoSpace reports whether err means the volume is full: ENOSPC, or a
// quota exceeded (EDQUOT), or on Windows ERROR_DISK_FULL and
// ERROR_HANDLE_DISK_FULL. A write that fails so has written at most a
// prefix of its buffer and made nothing else worse; the journal undoes
// the batch and carries on (internal/journal/nospace.go). An fsync that
// fails so is another matter: see journal.go.
func IsNoSpace(err error) bool { return err != nil && isNoSpace(err) }

// ErrNotExist is returned (wrapped) for a missing file.
var ErrNotExist = os.ErrNotExist

// IsNotExist reports whether err means a file is missing.
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// SyncSlice is how many bytes WriteFileSynced writes between syncs.
const SyncSlice = 4 << 20

// WriteFileSynced replaces name with data (its pieces, written one after
// another, not copied together) durably: written to tmp (a name in the
// same directory; one a crash leaves behind is truncated by the next
// write, or cleaned up by its owner, as repair does), synced, renamed
// over name, and the directory synced, so that a crash leaves the old
// file or the new one, never a torn one.
//
// A large file is synced every SyncSlice bytes on the way, not once at
// the end: one sync of a whole large file (a cluster node's checkpoint of
// 141 MB) holds the disk for as long as its write takes, and every other
// sync behind it — a journal's, which a confirm waits for, on the same
// disk. (Seen on a 3-node cluster on one disk: a leader's log sync of
// 506 ms while the three nodes wrote checkpoints of 141 MB. The slices
// were not measured on their own; docs/replication.md, "A checkpoint off
// the loop".)
func WriteFileSynced(fs FS, name, tmp string, data ...[]byte) error {
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	var at, synced int64
	for _, p := range data {
		for len(p) > 0 && err == nil {
			n := min(int64(len(p)), synced+SyncSlice-at)
			_, err = f.WriteAt(p[:n], at)
			p, at = p[n:], at+n
			if err == nil && at-synced >= SyncSlice {
				err, synced = f.Sync(), at
			}
		}
	}
	if err == nil && (at > synced || at == 0) {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, name)
	}
	if err != nil {
		fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}
