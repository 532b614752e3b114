package journal

import "golang.org/x/sys/unix"

// releasePages uses MADV_FREE_REUSABLE, as the Go runtime does for its own
// heap on darwin (runtime/mem_darwin.go). MADV_DONTNEED only deactivates
// pages there, keeping them resident; MADV_FREE lets the kernel take them
// but leaves them in the task's footprint, which is what Activity Monitor
// and memory pressure decisions read. MADV_FREE_REUSABLE makes them
// reclaimable and takes them off the footprint now. The contents may then
// be lost, which is fine: lowering the limit empties the cache. The error
// is ignored: giving memory back is advice.
func releasePages(b []byte) { _ = unix.Madvise(b, unix.MADV_FREE_REUSABLE) }

// reusePages pairs with releasePages: MADV_FREE_REUSE puts the pages back
// on the footprint before the ring writes to them again, keeping the
// kernel's accounting right. On pages never marked reusable it does
// nothing.
func reusePages(b []byte) { _ = unix.Madvise(b, unix.MADV_FREE_REUSE) }
