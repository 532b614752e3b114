package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestConsumeEveryCodec: a Consume stream's deliveries are pre-encoded
// for the binary codec (wire.ConsumeDeliveries); over Connect with
// protobuf and with JSON, over gRPC and over gRPC-Web they arrive whole —
// headers, ID, key, priority, times, delivery count — as the unary
// Receive path (protobuf messages) would give them.
func TestConsumeEveryCodec(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect+proto", nil},
		{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
		{"grpc-web+json", []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := "codec-" + c.name[:4] + "-" + c.name[len(c.name)-4:]
			if err := b.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			msgs := []chute.Message{
				{Body: []byte("first"), Headers: map[string]string{"b": "2", "a": "1", "c": ""}, ID: "id-1", Key: "k", Priority: 7},
				{Body: nil, Priority: 0},
				{Body: make([]byte, 3000)},
			}
			if _, err := b.Publish(ctx, q, msgs...); err != nil {
				t.Fatal(err)
			}
			mc := chutev1connect.NewMessageServiceClient(h2c(), "http://"+addr, c.opts...)
			stream := mc.Consume(ctx)
			if err := stream.Send(&chutev1.ConsumeRequest{Kind: &chutev1.ConsumeRequest_Start{
				Start: &chutev1.ConsumeStart{Queue: q, Credit: uint32(len(msgs))}}}); err != nil {
				t.Fatal(err)
			}
			var got []*chutev1.Delivery
			for len(got) < len(msgs) {
				resp, err := stream.Receive()
				if err != nil {
					t.Fatalf("after %d deliveries: %v", len(got), err)
				}
				got = append(got, resp.GetDeliveries()...)
			}
			stream.CloseRequest()
			stream.CloseResponse()
			// What the same messages look like through the protobuf
			// messages: Peek (no receipt, no lease) after the stream gave
			// them back unstarted.
			chutetest.Eventually(t, "the leases to come back", func() bool {
				st, err := b.QueueStats(ctx, q)
				return err == nil && st.Ready == int64(len(msgs))
			})
			peeked, err := mc.Peek(ctx, connect.NewRequest(&chutev1.PeekRequest{Queue: q, Max: int32(len(msgs))}))
			if err != nil {
				t.Fatal(err)
			}
			want := peeked.Msg.GetDeliveries()
			if len(want) != len(msgs) {
				t.Fatalf("peek: %d deliveries", len(want))
			}
			for i, d := range got {
				if d.GetReceipt() == "" || d.GetLeaseDeadline() == nil || d.GetDeliveries() != 1 {
					t.Fatalf("delivery %d: receipt %q, deadline %v, deliveries %d", i, d.GetReceipt(), d.GetLeaseDeadline(), d.GetDeliveries())
				}
				d = proto.Clone(d).(*chutev1.Delivery)
				d.Receipt, d.LeaseDeadline, d.Deliveries = "", nil, want[i].GetDeliveries()
				if !proto.Equal(d, want[i]) {
					t.Fatalf("delivery %d over %s:\n %v\nwant\n %v", i, c.name, d, want[i])
				}
			}
		})
	}
}
