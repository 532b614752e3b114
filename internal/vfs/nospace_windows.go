package vfs

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// isNoSpace: Windows reports a full volume as ERROR_DISK_FULL (112) or
// ERROR_HANDLE_DISK_FULL (39); syscall.ENOSPC is Go's invented errno,
// which MemFS returns on every platform.
func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, syscall.ENOSPC)
}
