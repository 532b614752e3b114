package chutetest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

// StartServer serves api on 127.0.0.1 at a free port until the test ends,
// and returns the address.
func StartServer(t testing.TB, api chute.API, opts server.Options) string {
	t.Helper()
	_, addr := Serve(t, api, opts)
	return addr
}

// Serve is StartServer that also returns the server (for Stats,
// EvaluateAlerts and the like).
func Serve(t testing.TB, api chute.API, opts server.Options) (*server.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(api, opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}
