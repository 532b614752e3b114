package client_test

import (
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/apitest"
	"github.com/chutemq/chute/server"
)

// TestAPI runs the chute.API conformance suite through the client against
// an in-process server, over the default protocol (Connect) and gRPC.
func TestAPI(t *testing.T) {
	for _, p := range []struct {
		name string
		opts []client.Option
	}{
		{"connect", nil},
		{"grpc", []client.Option{client.WithProtocol(client.ProtocolGRPC)}},
	} {
		t.Run(p.name, func(t *testing.T) {
			apitest.Run(t, func(t *testing.T) chute.API {
				c, _ := dial(t, server.Options{}, p.opts...)
				return c
			})
		})
	}
}
