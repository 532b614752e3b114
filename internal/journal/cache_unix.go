//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly || solaris

package journal

import "golang.org/x/sys/unix"

// The build tag lists the unixes whose golang.org/x/sys/unix has Mmap,
// Madvise and a page-freeing advice (the solaris tag also matches illumos,
// linux android, darwin ios); the rest use cache_other.go.

// mapRing maps the ring as anonymous private memory. Outside the Go heap
// the garbage collector neither scans it nor counts it towards its goal,
// so a large cache does not make the broker's heap look twice its size to
// GOGC; and untouched pages cost no memory until written.
func mapRing(size int) ([]byte, error) {
	// MAP_ANON rather than MAP_ANONYMOUS: NetBSD defines only the former.
	return unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
}

func unmapRing(ring []byte) {
	// Munmap fails only for a slice Mmap did not return; nothing to do.
	_ = unix.Munmap(ring)
}

// trimRing hands the pages wholly inside ring[from:to] back to the kernel.
// madvise works on whole pages and wants a page-aligned start; the ring
// starts on a page (mmap), so rounding from up keeps the page that holds
// the new limit, whose first bytes are still in use. The end needs no
// rounding: the kernel rounds the length up, and the bytes past to in the
// last page are past the old limit, so not in use either.
func trimRing(ring []byte, from, to int) {
	page := unix.Getpagesize()
	if lo := (from + page - 1) &^ (page - 1); lo < to {
		releasePages(ring[lo:to])
	}
}

// untrimRing takes back ring[from:to] after the limit is raised, on the
// platforms whose accounting asks for it (see reusePages).
func untrimRing(ring []byte, from, to int) {
	page := unix.Getpagesize()
	if lo := from &^ (page - 1); lo < to {
		reusePages(ring[lo:to])
	}
}
