//go:build unix

package workload

import (
	"io/fs"
	"syscall"
)

// allocated is the disk space fi takes: its blocks, which a preallocated
// or sparse file does not fill to its size.
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
