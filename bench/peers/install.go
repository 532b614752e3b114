package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ErrNotInstalled is returned by Start when a server's binary is missing
// and could not be installed (no apt-get, or apt-get failed).
var ErrNotInstalled = errors.New("peer not installed")

// sbinDirs are searched after $PATH: Debian installs nats-server and
// rabbitmq-server in /usr/sbin, which a non-login $PATH may lack.
var sbinDirs = []string{"/usr/sbin", "/usr/local/sbin", "/sbin"}

// Installed returns the path of the server binary of kind, or
// ErrNotInstalled; it installs nothing (tests use it to decide to skip).
func Installed(kindName string) (string, error) {
	k, ok := kinds[kindName]
	if !ok {
		return "", fmt.Errorf("%q: %w", kindName, ErrUnknownKind)
	}
	return lookBinary(k.binary)
}

// lookBinary finds binary in $PATH or sbinDirs.
func lookBinary(binary string) (string, error) {
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		if p := filepath.Join(d, binary); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", binary, ErrNotInstalled)
}

// aptMu serialises installs: dpkg takes a lock and two peers may be
// started at once.
var aptMu sync.Mutex

// ensureInstalled returns binary's path, installing Debian package pkg
// first if it is missing: apt-get install, and if that fails apt-get update
// and install again. Services the package would start are refused through
// a policy-rc.d for the install's duration (where none exists), so that no
// system instance listens on a public address.
func ensureInstalled(ctx context.Context, binary, pkg string) (string, error) {
	if p, err := lookBinary(binary); err == nil {
		return p, nil
	}
	aptMu.Lock()
	defer aptMu.Unlock()
	if p, err := lookBinary(binary); err == nil {
		return p, nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return "", fmt.Errorf("%s is missing and apt-get is unavailable to install Debian package %s: %w", binary, pkg, ErrNotInstalled)
	}
	const policy = "/usr/sbin/policy-rc.d"
	if !fileExists(policy) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %v: %w: %s", args, err, tailBytes(out))
		}
		return nil
	}
	if err := run("install", "-y", pkg); err != nil {
		if uerr := run("update"); uerr != nil {
			return "", fmt.Errorf("install %s: %w (%w)", pkg, uerr, ErrNotInstalled)
		}
		if err := run("install", "-y", pkg); err != nil {
			return "", fmt.Errorf("install %s: %w (%w)", pkg, err, ErrNotInstalled)
		}
	}
	return lookBinary(binary)
}

// tailBytes returns the last 1 KiB of b, for error messages.
func tailBytes(b []byte) string {
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return string(b)
}
