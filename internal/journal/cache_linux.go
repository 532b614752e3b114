package journal

import "golang.org/x/sys/unix"

// releasePages uses MADV_DONTNEED, which on a private anonymous mapping
// drops the pages at once, so resident memory falls as soon as the limit
// does; a later write faults in a fresh zero page. MADV_FREE would defer
// the drop until the kernel is short of memory, and RSS (what operators
// and cgroup limits watch) would not follow the limit. The error is
// ignored: giving memory back is advice, and the cache is correct either
// way.
func releasePages(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }

// reusePages has nothing to do: pages dropped with MADV_DONTNEED come back
// on first touch.
func reusePages([]byte) {}
