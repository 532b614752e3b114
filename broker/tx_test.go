package broker_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// A committed transaction survives a restart, and so does its ID: a retry
// after the restart returns the original result and applies nothing
// (through the checkpoint Close writes, and through a replay of the
// journal).
func TestTxSurvivesRestart(t *testing.T) {
	for _, ckpt := range []bool{true, false} {
		const dir = "data"
		ctx := context.Background()
		opts, fs := chutetest.MemOptions(nil)
		opts.CheckpointBytes = -1
		b, err := broker.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"in", "out"} {
			if err := b.CreateQueue(ctx, q, chute.QueueConfig{Group: "g"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Publish(ctx, "in", chute.Message{Body: []byte("x")}, chute.Message{Body: []byte("y")}); err != nil {
			t.Fatal(err)
		}
		ds, err := b.Receive(ctx, "in", chute.ReceiveOptions{Max: 2, Wait: -1})
		if err != nil || len(ds) != 2 {
			t.Fatalf("receive: %v %v", ds, err)
		}
		tx := chute.Tx{ID: "tx-1", Ack: []chute.TxAck{{Queue: "in", Receipts: []string{ds[0].Receipt}}},
			Publish: []chute.TxPublish{{Target: "out", Messages: []chute.Message{{Body: []byte("o")}}}}}
		first, err := b.Commit(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		if ckpt {
			if err := b.Close(); err != nil { // a final checkpoint
				t.Fatal(err)
			}
		} else { // a crash: no Close, the journal is replayed
			crashed := fs.CrashClone(nil)
			defer b.Close()
			opts = &broker.Options{FS: crashed, CheckpointBytes: -1}
		}
		b, err = broker.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		again, err := b.Commit(ctx, tx)
		if err != nil || !slices.Equal(again.Published[0], first.Published[0]) {
			t.Fatalf("checkpoint %v: retry after restart: %v, %v; first %v", ckpt, again, err, first)
		}
		for q, want := range map[string]int64{"in": 1, "out": 1} {
			s, err := b.QueueStats(ctx, q)
			if err != nil || s.Ready != want {
				t.Fatalf("checkpoint %v: %s: %+v %v", ckpt, q, s, err)
			}
		}
		tx.ID = ""
		if _, err := b.Commit(ctx, tx); !errors.Is(err, chute.ErrStaleReceipt) {
			t.Fatalf("checkpoint %v: the same tx without an ID: %v", ckpt, err)
		}
		b.Close()
	}
}
