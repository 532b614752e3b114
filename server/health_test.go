package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// h2c is an HTTP client that speaks HTTP/2 without TLS, as gRPC does.
func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// TestHealthAndReflection asks grpc.health.v1 and reflection through gRPC
// clients (the gRPC protocol over h2c), on a server with a token: health
// needs none, reflection the read role.
func TestHealthAndReflection(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, server.Options{Reflection: true,
		Tokens: []server.Token{{Name: "r", Secret: "reader", Role: server.RoleRead}}})
	base := "http://" + addr
	ctx := chutetest.Ctx(t)

	hc := grpchealth.NewClient(h2c(), base, connect.WithGRPC())
	for _, svc := range []string{"", "chute.v1.MessageService"} {
		res, err := hc.Check(ctx, &grpchealth.CheckRequest{Service: svc})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Errorf("health of %q: %+v, %v", svc, res, err)
		}
	}
	if _, err := hc.Check(ctx, &grpchealth.CheckRequest{Service: "nope"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("health of an unknown service: %v", err)
	}

	rc := grpcreflect.NewClient(h2c(), base, connect.WithGRPC())
	if _, err := rc.NewStream(ctx).ListServices(); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("reflection without a token: %v, want unauthenticated", err)
	}
	hdr := http.Header{"Authorization": {"Bearer reader"}}
	stream := rc.NewStream(ctx, grpcreflect.WithRequestHeaders(hdr))
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, "chute.v1.MessageService") || !slices.Contains(names, "chute.v1.AdminService") {
		t.Errorf("services %v", names)
	}
	if files, err := stream.FileContainingSymbol("chute.v1.MessageService"); err != nil || len(files) == 0 {
		t.Errorf("descriptor of MessageService: %d files, %v", len(files), err)
	}
	stream.Close()
}

// TestReadyzShutdown checks /livez and /readyz, and that /readyz turns
// 503 once the server is shutting down (and grpc.health says not
// serving), while a broker that is closed makes it 503 too.
func TestReadyzShutdown(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv := server.New(b, server.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if c := get(t, base+"/livez"); c != 200 {
		t.Errorf("livez %d", c)
	}
	if c := get(t, base+"/readyz"); c != 200 {
		t.Errorf("readyz %d", c)
	}
	// Shutdown waits for streams; a handler that sees the state is the
	// check: serve /readyz from the handler while Shutdown has begun.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	rec := &recorder{header: http.Header{}}
	srv.Handler().ServeHTTP(rec, must(http.NewRequest("GET", "/readyz", nil)))
	if rec.code != http.StatusServiceUnavailable {
		t.Errorf("readyz after shutdown: %d, want 503", rec.code)
	}

	// A closed broker: not ready, though the server is not shutting down.
	srv2 := server.New(b, server.Options{})
	b.Close()
	rec = &recorder{header: http.Header{}}
	srv2.Handler().ServeHTTP(rec, must(http.NewRequest("GET", "/readyz", nil)))
	if rec.code != http.StatusServiceUnavailable {
		t.Errorf("readyz with a closed broker: %d, want 503", rec.code)
	}
	rec = &recorder{header: http.Header{}}
	srv2.Handler().ServeHTTP(rec, must(http.NewRequest("GET", "/livez", nil)))
	if rec.code != http.StatusOK {
		t.Errorf("livez with a closed broker: %d, want 200", rec.code)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return len(p), nil
}
func (r *recorder) WriteHeader(c int) { r.code = c }
