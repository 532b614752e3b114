//go:build !linux && !darwin && !freebsd && !windows

package vfs

import (
	"errors"
	"os"
)

// Free is not implemented here (the other BSDs, Solaris and illumos name
// their statfs/statvfs fields differently; nobody runs chute there yet):
// the broker then keeps no free-space floor and relies on the journal
// undoing a batch that hits ENOSPC.
func (osFS) Free(dir string) (free, total int64, err error) {
	return 0, 0, &os.PathError{Op: "statfs", Path: dir, Err: errors.ErrUnsupported}
}
