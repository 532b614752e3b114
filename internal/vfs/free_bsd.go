//go:build darwin || freebsd

package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// Free is statfs(2): f_bavail (what an unprivileged writer may use; on
// FreeBSD it goes negative once root dips into its reserve) times
// f_bsize, the unit of the block counts on these systems.
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
	bs := int64(st.Bsize)
	return max(int64(st.Bavail), 0) * bs, int64(st.Blocks) * bs, nil
}
