package server_test

import (
	"testing"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestCommitRoles: a transaction needs the consume role; a consume token
// publishes in one only together with a settlement; a produce token may
// not commit.
func TestCommitRoles(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	_, addr := startServer(t, b, server.Options{Tokens: testTokens()})
	ctx := chutetest.Ctx(t)
	admin := dial(t, addr, client.WithToken("admin-secret"))
	for _, q := range []string{"in", "out"} {
		if err := admin.CreateQueue(ctx, q, chute.QueueConfig{Group: "g"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Publish(ctx, "in", chute.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	pub := []chute.TxPublish{{Target: "out", Messages: []chute.Message{{Body: []byte("y")}}}}

	_, err := dial(t, addr, client.WithToken("produce-secret")).Commit(ctx, chute.Tx{Publish: pub})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("produce token: %v, want PermissionDenied", err)
	}
	consumer := dial(t, addr, client.WithToken("consume-secret"))
	_, err = consumer.Commit(ctx, chute.Tx{Publish: pub})
	if connect.CodeOf(err) != connect.CodePermissionDenied || reason(err) != server.ReasonTxPublishNeedsSettle {
		t.Fatalf("consume token publishing alone: %v (%s)", err, reason(err))
	}
	ds, err := consumer.Receive(ctx, "in", chute.ReceiveOptions{Wait: -1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("receive: %v %v", ds, err)
	}
	if _, err := consumer.Commit(ctx, chute.Tx{Publish: pub, Ack: []chute.TxAck{{Queue: "in", Receipts: []string{ds[0].Receipt}}}}); err != nil {
		t.Fatalf("consume token, ack and publish: %v", err)
	}
}
