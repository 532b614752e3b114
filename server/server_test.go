package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// TestShutdownBeforeServe: a Shutdown that comes before Serve wins: Serve
// returns at once instead of serving on.
func TestShutdownBeforeServe(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, server.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve after Shutdown kept serving")
	}
}
