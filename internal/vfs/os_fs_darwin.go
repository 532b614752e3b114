package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// Sync is fcntl(F_FULLFSYNC). On macOS a plain fsync only hands the data
// to the drive, which may keep it in its volatile cache and write it late
// or out of order (fsync(2): "This is not a theoretical edge case");
// F_FULLFSYNC also asks the drive to flush that cache, and is the only call
// that gives the durability the commit loop promises. There is no
// fdatasync on macOS to save the metadata write.
//
// Some file systems do not implement F_FULLFSYNC: SMB mounts answer
// ENOTSUP (golang/go#64215), macFUSE volumes EINVAL (macfuse/macfuse#79).
// There we fall back to a plain fsync, the most those file systems can
// offer. We call unix.Fsync rather than (*os.File).Sync, because on darwin
// the latter is itself F_FULLFSYNC (with a fallback on ENOTSUP only) and
// would repeat the call that just failed. Any other error (EIO above all)
// is returned, never papered over by a second sync that might
// succeed on pages the kernel has already dropped (STYLE.md habit 6).
func (o osFile) Sync() error { return fullFsync(o.f) }

func fullFsync(f *os.File) error {
	fd := int(f.Fd())
	err := retryEINTR(func() error {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
		return err
	})
	switch err {
	case nil:
		return nil
	case unix.ENOTSUP, unix.EOPNOTSUPP, unix.EINVAL:
		if err := retryEINTR(func() error { return unix.Fsync(fd) }); err != nil {
			return &os.PathError{Op: "fsync", Path: f.Name(), Err: err}
		}
		return nil
	}
	return &os.PathError{Op: "fullfsync", Path: f.Name(), Err: err}
}

// Preallocate reserves blocks with fcntl(F_PREALLOCATE), macOS's nearest
// thing to Linux's fallocate KEEP_SIZE: it allocates space past the
// physical end of the file without changing the file's length, which the
// journal reads as "how much was written". (etcd and others follow it with
// ftruncate to make the space usable; we must not, for that reason.) Like
// fallocate it spares a segment a disk-full error half-way through and
// gives it contiguous blocks; on APFS the reservation may be given back
// when the file is closed, which costs nothing but the optimisation.
//
// F_PEOFPOSMODE counts from the physical end of file, i.e. from the blocks
// already allocated, so we ask only for what is missing. F_ALLOCATEALL
// makes it all or nothing, so that a full disk is reported now, as
// ENOSPC, instead of a partial reservation. File systems that cannot
// preallocate (ENOTSUP and friends, or EINVAL from FUSE) are left alone:
// preallocation is never needed for correctness.
func (o osFile) Preallocate(size int64) error {
	fd := int(o.f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: o.f.Name(), Err: err}
	}
	// st_blocks is in 512-byte units whatever the file system's block size.
	missing := size - st.Blocks*512
	if missing <= 0 {
		return nil
	}
	fstore := unix.Fstore_t{
		Flags:   unix.F_ALLOCATEALL,
		Posmode: unix.F_PEOFPOSMODE,
		Offset:  0,
		Length:  missing,
	}
	err := retryEINTR(func() error {
		return unix.FcntlFstore(uintptr(fd), unix.F_PREALLOCATE, &fstore)
	})
	switch err {
	case nil, unix.ENOTSUP, unix.EOPNOTSUPP, unix.EINVAL:
		return nil
	}
	return &os.PathError{Op: "preallocate", Path: o.f.Name(), Err: err}
}

// syncDir gives a directory the same F_FULLFSYNC as a file, so that a new
// segment's directory entry leaves the drive's cache too, with the same
// fallback where the file system lacks it.
func syncDir(d *os.File) error { return fullFsync(d) }

// retryEINTR calls fn until it is not interrupted by a signal, which the Go
// runtime sends to preempt goroutines.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
