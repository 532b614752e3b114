//go:build linux

package sysmon

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSetSlack sets the monitor thread's slack and reads it back, and
// checks that the thread it chose is none that runs goroutines: neither
// the main thread nor any thread seen running the test's goroutines,
// locked to new threads or not.
func TestSetSlack(t *testing.T) {
	ran := map[int]bool{os.Getpid(): true}
	var mu sync.Mutex
	seen := func() {
		mu.Lock()
		ran[unix.Gettid()] = true
		mu.Unlock()
	}
	// Threads made now come after the monitor's.
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			seen()
			<-release
		}()
	}
	// And goroutines on whatever threads the scheduler has.
	var busy sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for range 100 {
				seen()
				runtime.Gosched()
			}
		}()
	}
	busy.Wait()
	defer func() { close(release); wg.Wait() }()

	tid, err := Thread()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if ran[tid] {
		t.Fatalf("thread %d runs goroutines: it is not the monitor thread", tid)
	}
	mu.Unlock()
	before, err := Slack(tid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SetSlack(3 * time.Millisecond)
	if errors.Is(err, ErrNotPermitted) && os.Geteuid() != 0 {
		t.Skipf("not root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := setSlack(tid, before); err != nil {
			t.Error(err)
		}
	}()
	if got != tid {
		t.Fatalf("SetSlack set thread %d, Thread() named %d", got, tid)
	}
	if d, err := Slack(tid); err != nil || d != 3*time.Millisecond {
		t.Fatalf("slack after SetSlack = %v, %v; want 3ms", d, err)
	}
	if _, err := SetSlack(0); err == nil {
		t.Fatal("SetSlack(0) was taken: Linux reads 0 as the thread's default")
	}
}
