package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/chutemq/chute/broker"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

// TestIOFaults: when a write or sync fails (or the disk is full), the
// publishes waiting on it fail with that error, the broker fails closed
// (every later call fails until it is reopened), nothing unsynced was
// confirmed, and a reopen has every confirmed message.
func TestIOFaults(t *testing.T) {
	for _, c := range []struct {
		name string
		op   vfs.Op
		err  error
	}{
		{"write error", vfs.OpWrite, vfs.ErrInjected},
		{"sync error", vfs.OpSync, vfs.ErrInjected},
		{"disk full", vfs.OpWrite, vfs.ErrNoSpace},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			b, err := broker.Open("data", &broker.Options{FS: faulty})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			mustCreate(t, b, "q", chute.QueueConfig{})
			var mu sync.Mutex
			confirmed := map[string]bool{}
			failed := 0
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
						if err == nil {
							confirmed[id] = true
						} else {
							failed++
							if !errors.Is(err, c.err) {
								t.Errorf("publish failed with %v, want %v", err, c.err)
							}
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if failed == 0 || len(confirmed) == 0 {
				t.Fatalf("%d confirmed, %d failed: the fault did not hit mid-load", len(confirmed), failed)
			}
			// Failed closed: reads and writes alike.
			if _, err := b.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1}); !errors.Is(err, c.err) {
				t.Fatalf("receive after the failure: %v", err)
			}
			faulty.SetInject(nil)
			if _, err := b.Publish(ctx, "q", chute.Message{}); !errors.Is(err, c.err) {
				t.Fatalf("publish after the failure: %v (must fail until reopened)", err)
			}
			b.Close()

			b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: mem.CrashClone(nil), MaxBatch: 10000})
			ds, err := b2.Peek(ctx, "q", 10000)
			if err != nil {
				t.Fatal(err)
			}
			present := map[string]bool{}
			for _, d := range ds {
				present[d.ID] = true
			}
			for id := range confirmed {
				if !present[id] {
					t.Fatalf("confirmed message %s lost", id)
				}
			}
			t.Logf("%d confirmed, %d failed, %d present after reopen", len(confirmed), failed, len(present))
		})
	}
}
