package vfs

import (
	"fmt"
	"io"
	"os"

	"github.com/gofrs/flock"
)

// Lock uses github.com/gofrs/flock: flock(2) with LOCK_EX|LOCK_NB on the
// unixes (fcntl F_SETLK where flock is missing, as on Solaris and AIX),
// LockFileEx with LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY on
// Windows. Both are held by an open file and dropped by the kernel when the
// process dies, however it dies, so a crash never leaves a stale lock for an
// operator to clean up; the file itself stays, and its content (the last
// holder, see WriteHolder) is only ever advice.
//
// flock locks belong to the open file description, so a second Lock of the
// same path in the same process conflicts too: two brokers in one process
// cannot share a directory either. On Windows the lock covers byte 0 of the
// file only, which is why the holder is written from byte 1 on (LockFileEx
// forbids other handles, even our own, to read or write a locked range).
func (osFS) Lock(name string) (io.Closer, error) {
	l := flock.New(name, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o644))
	ok, err := l.TryLock()
	if err != nil {
		l.Close()
		return nil, &os.PathError{Op: "lock", Path: name, Err: err}
	}
	if !ok {
		l.Close()
		return nil, &os.PathError{Op: "lock", Path: name, Err: ErrLocked}
	}
	return osLock{l}, nil
}

type osLock struct{ l *flock.Flock }

// Close releases the lock and closes the file.
func (o osLock) Close() error {
	if err := o.l.Close(); err != nil {
		return fmt.Errorf("unlock %s: %w", o.l.Path(), err)
	}
	return nil
}
