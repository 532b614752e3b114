package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chutemq/chute/broker"

	"go.uber.org/goleak"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dial serves a fresh in-memory broker and returns a client for it.
func dial(t *testing.T, opts server.Options, copts ...client.Option) (*client.Client, *broker.Broker) {
	t.Helper()
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, opts)
	c, err := client.Dial(addr, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, b
}

// protocols are the client's four ways of talking to a server, for tests
// that run over each.
var protocols = []struct {
	name string
	opt  client.Option
}{{"connect", client.WithProtocol(client.ProtocolConnect)}, {"grpc", client.WithProtocol(client.ProtocolGRPC)},
	{"grpc-web", client.WithProtocol(client.ProtocolGRPCWeb)}, {"connect-json", client.WithJSON()}}

func TestRoundTrip(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c, _ := dial(t, server.Options{}, p.opt)
			ctx := context.Background()
			if err := c.CreateQueue(ctx, "q", chute.QueueConfig{MaxDeliveries: 2}); err != nil {
				t.Fatal(err)
			}
			res, err := c.Publish(ctx, "q", chute.Message{Body: []byte("hi"), Headers: map[string]string{"a": "b"}, ID: "x"})
			if err != nil || len(res) != 1 || res[0].Seq == 0 {
				t.Fatalf("publish: %v %v", res, err)
			}
			ds, err := c.Receive(ctx, "q", chute.ReceiveOptions{Max: 5})
			if err != nil || len(ds) != 1 || string(ds[0].Body) != "hi" || ds[0].Headers["a"] != "b" || ds[0].ID != "x" {
				t.Fatalf("receive: %+v %v", ds, err)
			}
			if err := c.Ack(ctx, "q", ds[0].Receipt); err != nil {
				t.Fatal(err)
			}
			err = c.Ack(ctx, "q", ds[0].Receipt)
			var re *chute.ReceiptErrors
			if !errors.Is(err, chute.ErrStaleReceipt) || !errors.As(err, &re) || len(re.Failed) != 1 {
				t.Fatalf("second ack: %v", err)
			}
			// A Consume stream (its own decoding over protobuf, wire.ProtoCodec).
			if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("streamed"), Headers: map[string]string{"k": "v"},
				ID: "y", Key: "order-1", Priority: 7}); err != nil {
				t.Fatal(err)
			}
			cons := client.NewConsumer(c, "q", client.ConsumerOptions{Prefetch: 4})
			got, err := cons.Receive(ctx, 4)
			if err != nil || len(got) != 1 {
				t.Fatalf("consume: %+v %v", got, err)
			}
			if d := got[0]; string(d.Body) != "streamed" || d.Headers["k"] != "v" || len(d.Headers) != 1 || d.ID != "y" ||
				d.Key != "order-1" || d.Priority != 7 || d.Queue != "q" || d.Seq != res[0].Seq+1 || d.Deliveries != 1 ||
				d.Receipt == "" || d.Published.IsZero() || !d.LeaseDeadline.After(d.Published) {
				t.Fatalf("consumed %+v", d)
			}
			if err := cons.Ack(ctx, got[0].Receipt); err != nil {
				t.Fatal(err)
			}
			if err := cons.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, "nope", chute.Message{}); !errors.Is(err, chute.ErrNotFound) {
				t.Fatalf("publish to nowhere: %v", err)
			}
			if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); !errors.Is(err, chute.ErrExists) {
				t.Fatalf("create twice: %v", err)
			}
			s, err := c.QueueStats(ctx, "q")
			if err != nil || s.Totals.Acked != 2 || s.Config.MaxDeliveries != 2 {
				t.Fatalf("stats %+v %v", s, err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	c, _ := dial(t, server.Options{Token: "s3cret"})
	if _, err := c.Queues(context.Background()); !client.IsUnauthenticated(err) {
		t.Fatalf("without a token: %v", err)
	}
	c2, _ := dial(t, server.Options{Token: "s3cret"}, client.WithToken("s3cret"))
	if _, err := c2.Queues(context.Background()); err != nil {
		t.Fatalf("with the token: %v", err)
	}
}
