package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// A data directory belongs to one process at a time: every program that
// opens one (the broker, and the offline `chute journal` commands) first
// takes an exclusive lock on DIR/LOCK (FS.Lock), and only then reads
// anything. Without it, two brokers on one directory would both append to
// the last segment and each would checkpoint a state that omits the
// other's records: silent loss, found only at the next restart.
//
// After taking the lock, the holder writes who it is into the file
// (WriteHolder), so that the next process to try can say who is in the
// way (ReadHolder). The content is advice, never the lock itself: a holder
// that died left its line behind, and the next holder overwrites it.
//
//	LOCK:  byte 0 unused (Windows locks it) | "pid 4242\nhost db1\nsince 2026-11-29T10:00:00Z\n"

// LockFile is the name of the lock file in a data directory.
const LockFile = "LOCK"

// ErrLocked is returned (wrapped) by FS.Lock when someone else holds the
// lock.
var ErrLocked = errors.New("locked by another holder")

// Holder says who holds (or last held) a data directory's lock.
type Holder struct {
	PID   int
	Host  string
	Since time.Time
}

// Me describes this process as a holder since now.
func Me() Holder {
	host, _ := os.Hostname()
	return Holder{PID: os.Getpid(), Host: host, Since: time.Now()}
}

// holderOffset is where the holder's text starts in the lock file.
const holderOffset = 1

// WriteHolder records h in the lock file name, which the caller has
// locked.
func WriteHolder(fs FS, name string, h Holder) error {
	f, err := fs.Open(name)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("pid %d\nhost %s\nsince %s\n", h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))
	_, err = f.WriteAt([]byte(text), holderOffset)
	if err == nil {
		err = f.Truncate(int64(holderOffset + len(text)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write lock holder to %s: %w", name, err)
	}
	return nil
}

// ReadHolder reads what the lock file name says about its holder; ok is
// false when it says nothing usable (an empty file: the holder died before
// writing, or is writing right now).
func ReadHolder(fs FS, name string) (h Holder, ok bool) {
	f, err := fs.Open(name)
	if err != nil {
		return h, false
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := f.ReadAt(buf, holderOffset)
	for line := range strings.Lines(string(bytes.TrimRight(buf[:n], "\x00"))) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "host":
			h.Host = v
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, v)
		}
	}
	return h, h.PID > 0
}

// LockedError is LockDir's error when another holder has the directory.
type LockedError struct {
	Dir    string
	Holder Holder // zero when the lock file names nobody
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h.PID == 0 {
		return fmt.Sprintf("data directory %s is in use by another process: stop it, or point --data elsewhere", e.Dir)
	}
	since := ""
	if !h.Since.IsZero() {
		since = " since " + h.Since.Local().Format(time.DateTime)
	}
	return fmt.Sprintf("data directory %s is in use by process %d on host %s%s: stop it, or point --data elsewhere",
		e.Dir, h.PID, h.Host, since)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockDir takes dir's lock and records this process as its holder. The
// directory must exist: LockDir creates nothing but the lock file. If
// someone else holds the lock, the error is a *LockedError naming them,
// and nothing was changed.
func LockDir(fs FS, dir string) (io.Closer, error) {
	name := path.Join(dir, LockFile)
	l, err := fs.Lock(name)
	if errors.Is(err, ErrLocked) {
		h, _ := ReadHolder(fs, name)
		return nil, &LockedError{Dir: dir, Holder: h}
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	// The holder's line is advice; the lock is the lock. On a full volume
	// (a broker restarting after its disk filled) it may not fit: go on
	// without it rather than refuse to start.
	if err := WriteHolder(fs, name, Me()); err != nil && !IsNoSpace(err) {
		l.Close()
		return nil, err
	}
	return l, nil
}
