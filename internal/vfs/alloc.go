package vfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// allocator is a File that can allocate real blocks for its first size
// bytes and set its length to size in one call (Linux fallocate mode 0;
// MemFS). Files without it are filled by writes.
type allocator interface {
	Allocate(size int64) error
}

// Allocate makes f size bytes long with every byte backed by a block of
// the volume, so that the space is really taken (not a sparse file, and
// not a reservation the file system may hand back at close, as APFS does
// with F_PREALLOCATE) and is given back when the file is removed or
// truncated. It is how the broker's disk-space reserve (DIR/RESERVE) is
// made.
//
// Where the file system cannot allocate (not Linux, or EOPNOTSUPP: ZFS,
// some FUSE and network file systems) the file is written, with
// pseudo-random bytes rather than zeros, because ZFS and btrfs with
// compression store a block of zeros as a hole. The caller syncs.
func Allocate(f File, size int64) error {
	if a, ok := f.(allocator); ok {
		err := a.Allocate(size)
		if !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	const chunk = 1 << 20
	buf := make([]byte, min(size, chunk))
	rng := rand.NewChaCha8([32]byte{'c', 'h', 'u', 't', 'e'})
	rng.Read(buf)
	for off := int64(0); off < size; off += chunk {
		n := min(size-off, chunk)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("allocate %d bytes: %w", size, err)
		}
	}
	return nil
}
