package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := chutetest.SelfSignedCert(t)
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, server.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, certFile, keyFile) }()
	defer func() {
		srv.Shutdown(context.Background())
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	for _, p := range []client.Protocol{client.ProtocolConnect, client.ProtocolGRPC} {
		c, err := client.Dial(ln.Addr().String(), client.WithTLS(&tls.Config{RootCAs: pool}), client.WithProtocol(p))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		q := "q" + string(rune('a'+p))
		if err := c.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
			t.Fatalf("over TLS (protocol %d): %v", p, err)
		}
		if _, err := c.Publish(ctx, q, chute.Message{Body: []byte("secret")}); err != nil {
			t.Fatal(err)
		}
		ds, err := c.Receive(ctx, q, chute.ReceiveOptions{Wait: -1})
		if err != nil || len(ds) != 1 || string(ds[0].Body) != "secret" {
			t.Fatalf("receive over TLS: %v %v", ds, err)
		}
		c.Close()
	}
	// A client that does not trust the certificate is refused.
	c, _ := client.Dial(ln.Addr().String(), client.WithTLS(&tls.Config{}))
	defer c.Close()
	if _, err := c.Queues(context.Background()); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
}
