package chutetest

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/fakeclock"
	"github.com/chutemq/chute/internal/vfs"
)

// MustOpen opens a broker in dir (on fs, when given) and closes it when the
// test ends.
func MustOpen(t testing.TB, dir string, opts *broker.Options) *broker.Broker {
	t.Helper()
	b, err := broker.Open(dir, opts)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	return b
}

// MemOptions returns options for a broker on an in-memory filesystem that
// survives Close (so a test can reopen it) and can be crash-cloned.
func MemOptions(clock chute.Clock) (*broker.Options, *vfs.MemFS) {
	fs := vfs.NewMemFS()
	return &broker.Options{FS: fs, Clock: clock}, fs
}

// Eventually polls cond every millisecond until it holds or 10 s pass.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Ctx returns a context that ends with the test (or after 30 s).
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// FakeClock is fakeclock.FakeClock: a chute.Clock that moves only when
// told to.
type FakeClock = fakeclock.FakeClock

// NewFakeClock starts a fake clock at a fixed, arbitrary instant.
func NewFakeClock() *FakeClock { return fakeclock.New() }
