package vfs

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// Free is GetDiskFreeSpaceEx: the bytes available to this caller (which
// honours per-user quotas) and the volume's size.
func (osFS) Free(dir string) (free, total int64, err error) {
	p, err := windows.UTF16PtrFromString(filepath.Clean(dir))
	if err != nil {
		return 0, 0, &os.PathError{Op: "GetDiskFreeSpaceEx", Path: dir, Err: err}
	}
	var avail, size, all uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &size, &all); err != nil {
		return 0, 0, &os.PathError{Op: "GetDiskFreeSpaceEx", Path: dir, Err: err}
	}
	return int64(avail), int64(size), nil
}
