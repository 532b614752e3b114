package vfs_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chutemq/chute/internal/vfs"
)

// TestLockDirOS: a second LockDir of a held directory fails with a
// *LockedError naming this process, in the same process (flock belongs to
// the open file, not the process); Close releases it.
func TestLockDirOS(t *testing.T) {
	dir := t.TempDir()
	l, err := vfs.LockDir(vfs.OS, dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = vfs.LockDir(vfs.OS, dir)
	var le *vfs.LockedError
	if !errors.Is(err, vfs.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second lock: %v", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != os.Getpid() || le.Holder.Host != host || le.Holder.Since.IsZero() || le.Dir != dir {
		t.Fatalf("holder %+v, want pid %d host %s", le, os.Getpid(), host)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := vfs.LockDir(vfs.OS, dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Close()
}

func TestLockDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, err := vfs.LockDir(vfs.OS, dir); err == nil || errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("lock of a missing directory: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("LockDir created the directory: %v", err)
	}
}

func TestLockMemFS(t *testing.T) {
	fs := vfs.NewMemFS()
	fs.MkdirAll("d")
	l, err := vfs.LockDir(fs, "d")
	if err != nil {
		t.Fatal(err)
	}
	var le *vfs.LockedError
	if _, err := vfs.LockDir(fs, "d"); !errors.As(err, &le) || le.Holder.PID != os.Getpid() {
		t.Fatalf("second lock on one MemFS: %v", err)
	}
	// A crash drops every lock, as the death of a process does.
	if _, err := vfs.LockDir(fs.CrashClone(nil), "d"); err != nil {
		t.Fatalf("lock on a crash clone: %v", err)
	}
	f := vfs.NewFaulty(fs, nil)
	if _, err := vfs.LockDir(f, "d"); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("lock through Faulty: %v", err)
	}
	l.Close()
	l.Close() // idempotent
	if fs.Locked("d/LOCK") {
		t.Fatal("still locked after Close")
	}
	l, err = vfs.LockDir(f, "d")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// TestLockHeldByAnotherProcess: the lock of a child process is seen, with
// its PID, and the kernel releases it when the child is killed.
func TestLockHeldByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("CHUTE_LOCK_CHILD"); dir != "" {
		if _, err := vfs.LockDir(vfs.OS, dir); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		bufio.NewReader(os.Stdin).ReadString('\n') // hold until killed
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), "CHUTE_LOCK_CHILD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	_, err = vfs.LockDir(vfs.OS, dir)
	var le *vfs.LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid {
		t.Errorf("lock held by the child (pid %d): %v", cmd.Process.Pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := vfs.LockDir(vfs.OS, dir)
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	l.Close()
}
