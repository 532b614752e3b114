//go:build !linux && !darwin

package vfs

import "os"

// Sync is (*os.File).Sync: fsync on the BSDs and other unixes, whose
// fdatasync is missing or not exposed everywhere, and FlushFileBuffers on
// Windows, which flushes the file's data and metadata and the drive's
// write cache. Both are at least as strong as the fdatasync used on Linux,
// only slower.
func (o osFile) Sync() error {
	if err := o.f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: o.f.Name(), Err: unwrapPathError(err)}
	}
	return nil
}

// Preallocate is a no-op here: the file grows by writes alone. The
// journal reads a file's length as "how much was written", so space may
// only be reserved by a call that leaves the length alone, as Linux's
// fallocate KEEP_SIZE and macOS's F_PREALLOCATE do. The BSDs' and
// Solaris' posix_fallocate extends the length (and ZFS refuses it), so
// there is no equivalent to use. Windows could reserve blocks with
// SetFileInformationByHandle(FileAllocationInfo) without moving the end of
// file, but NTFS may hand them back at close and nobody has measured a
// gain; it is left for when someone does. Preallocation only spares a
// disk-full error in mid-segment and some fragmentation; correctness never
// depends on it.
func (o osFile) Preallocate(size int64) error { return nil }

// syncDir is a plain fsync of the directory. (SyncDir never calls it on
// Windows, where a directory cannot be flushed.)
func syncDir(d *os.File) error { return d.Sync() }

// unwrapPathError takes the cause out of the *os.PathError that
// (*os.File).Sync returns ("sync <name>: ..."), so that our own PathError
// names the operation without saying it twice.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
