//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris)

package journal

// On Windows and every platform without mmap and madvise in
// golang.org/x/sys/unix, the ring is a plain byte slice on the Go heap
// there. It holds no pointers, so the garbage collector does not scan it,
// but it does count towards the heap goal: with the default GOGC a large
// cache lets the heap grow by as much again before the next collection.
// Nor can pages past a lowered limit be handed back, so trimming does
// nothing and resident memory stays at the most the ring has ever used
// until the journal is closed and the slice collected. An off-heap
// Windows ring (VirtualAlloc, with MEM_RESET / VirtualFree(MEM_DECOMMIT)
// to trim) would close both gaps if Windows deployments ever need it.

func mapRing(size int) ([]byte, error) { return make([]byte, size), nil }

// unmapRing does nothing: readCache.close drops the last reference and the
// garbage collector frees the slice.
func unmapRing([]byte) {}

func trimRing([]byte, int, int)   {}
func untrimRing([]byte, int, int) {}
