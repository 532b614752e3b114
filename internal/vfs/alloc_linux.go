package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Allocate is fallocate mode 0: blocks allocated (as unwritten extents,
// which read as zeros and cost no write) and the length set to size.
// Unlike Preallocate (KEEP_SIZE) the length changes, so `ls -l` shows
// what the file holds back.
func (o osFile) Allocate(size int64) error {
	for {
		err := unix.Fallocate(int(o.f.Fd()), 0, 0, size)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EOPNOTSUPP, unix.ENOSYS:
			return errors.ErrUnsupported
		}
		return &os.PathError{Op: "fallocate", Path: o.f.Name(), Err: err}
	}
}
