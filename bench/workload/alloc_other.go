//go:build !unix

package workload

import "io/fs"

// allocated is fi's size where the system does not report blocks.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
