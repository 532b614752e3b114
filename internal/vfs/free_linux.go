package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// Free is statfs(2). f_bavail, not f_bfree: the blocks root keeps back
// (5% by default on ext4) are not ours to count on. Block counts are in
// units of f_frsize where the file system sets it (as statvfs does),
// else f_bsize.
func (osFS) Free(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	for {
		err = unix.Statfs(dir, &st)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	bs := int64(st.Frsize)
	if bs <= 0 {
		bs = int64(st.Bsize)
	}
	return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
}
