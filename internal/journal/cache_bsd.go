//go:build freebsd || netbsd || openbsd || dragonfly || solaris

package journal

import "golang.org/x/sys/unix"

// releasePages uses MADV_FREE, as the Go runtime does on the BSDs
// (runtime/mem_bsd.go): their MADV_DONTNEED only lowers the pages'
// priority and frees nothing, while MADV_FREE lets the kernel reclaim them
// without writing them to swap. The contents may be lost, which is fine:
// lowering the limit empties the cache. The error is ignored: giving
// memory back is advice.
func releasePages(b []byte) { _ = unix.Madvise(b, unix.MADV_FREE) }

// reusePages has nothing to do: a write to a freed page simply keeps it.
func reusePages([]byte) {}
