package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// TestIOFaults: when a write or sync fails, the publishes waiting on it
// fail with that error, nothing unsynced was confirmed, and a reopen has
// every confirmed message. A failed fsync, whatever its errno, and a
// failed write for any reason but a full disk fail the broker closed:
// every later call fails until it is reopened (never trust a retried
// fsync). A write that finds the disk full fails its publishes with
// ErrDiskFull, stores none of them, and the broker carries on once space
// is back.
func TestIOFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		op    vfs.Op
		err   error
		fatal bool
	}{
		{"write error", vfs.OpWrite, vfs.ErrInjected, true},
		{"sync error", vfs.OpSync, vfs.ErrInjected, true},
		{"sync finds the disk full", vfs.OpSync, syscall.ENOSPC, true},
		{"write finds the disk full", vfs.OpWrite, syscall.ENOSPC, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			// (Injected ENOSPC is a full disk statfs does not show: the
			// broker tries again after 100 sampling intervals.)
			b, err := broker.Open("data", &broker.Options{FS: faulty, DiskCheckInterval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			mustCreate(t, b, "q", chute.QueueConfig{})
			var mu sync.Mutex
			confirmed, refused := map[string]bool{}, map[string]bool{}
			var wg sync.WaitGroup
			for p := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 200 {
						id := fmt.Sprintf("%d-%d", p, i)
						if p == 0 && i == 100 { // part-way through, the disk fails
							faulty.SetInject(func(op vfs.Op, _ string) error {
								if op == c.op {
									return c.err
								}
								return nil
							})
						}
						_, err := b.Publish(ctx, "q", chute.Message{ID: id, Body: []byte(id)})
						mu.Lock()
						switch {
						case err == nil:
							confirmed[id] = true
						case c.fatal && errors.Is(err, c.err):
						case !c.fatal && errors.Is(err, chute.ErrDiskFull):
							refused[id] = true
						default:
							t.Errorf("publish failed with %v, want %v", err, c.err)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(confirmed) == 0 || len(confirmed) == 1600 {
				t.Fatalf("%d confirmed: the fault did not hit mid-load", len(confirmed))
			}
			faulty.SetInject(nil)
			if c.fatal {
				// Failed closed: reads and writes alike, faults gone or not.
				if _, err := b.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); !errors.Is(err, c.err) {
					t.Fatalf("receive after the failure: %v", err)
				}
				if _, err := b.Publish(ctx, "q", chute.Message{}); !errors.Is(err, c.err) {
					t.Fatalf("publish after the failure: %v (must fail until reopened)", err)
				}
			} else {
				diskPublishEventually(t, b, "after")
				confirmed["after"] = true
				if ds := b.DiskStats(); ds.Rebuilds == 0 {
					t.Fatalf("disk stats: %+v", ds)
				}
			}
			b.Close()

			b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: mem.CrashClone(nil), MaxBatch: 10000})
			present := diskIDs(t, b2)
			for id := range confirmed {
				if !present[id] {
					t.Fatalf("confirmed message %s lost", id)
				}
			}
			for id := range refused {
				if present[id] {
					t.Fatalf("message %s refused with ErrDiskFull, but stored", id)
				}
			}
			t.Logf("%d confirmed, %d refused, %d present after reopen", len(confirmed), len(refused), len(present))
		})
	}
}
