package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// stallBody is a request body that hands out prefix bytes and then
// blocks until it is closed (prefix < 0: it never ends). It counts what
// the HTTP transport took from it: what the server could have read, give
// or take the sockets' buffers.
type stallBody struct {
	prefix int64
	n      atomic.Int64
	stop   chan struct{}
	once   sync.Once
}

func newStallBody(t *testing.T, prefix int64) *stallBody {
	b := &stallBody{prefix: prefix, stop: make(chan struct{})}
	t.Cleanup(b.close)
	return b
}

var errStopped = errors.New("body stopped by the test")

func (b *stallBody) Read(p []byte) (int, error) {
	select {
	case <-b.stop:
		return 0, errStopped
	default:
	}
	k := int64(len(p))
	if b.prefix >= 0 {
		k = min(k, b.prefix-b.n.Load())
		if k <= 0 {
			<-b.stop
			return 0, errStopped
		}
	}
	for i := range p[:k] {
		p[i] = 'A'
	}
	b.n.Add(k)
	return int(k), nil
}

func (b *stallBody) close() { b.once.Do(func() { close(b.stop) }) }

// Close lets the HTTP transport stop the body when the answer has come
// (as a real client's body would).
func (b *stallBody) Close() error {
	b.close()
	return nil
}

// rawCall posts body to an API path with headers, with a client of its
// own (h2c: HTTP/2 without TLS, as gRPC clients speak it), and returns
// the response with its body read.
func rawCall(t *testing.T, addr, path string, h2c bool, length int64, body io.Reader, header map[string]string) (*http.Response, string) {
	t.Helper()
	// Keep-alive: net/http lingers before it closes the connection of a
	// keep-alive client whose body it did not read, so that the answer is
	// not lost to a reset.
	tr := &http.Transport{}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read the answer: %v", path, err)
	}
	return resp, string(raw)
}

// connectCode is the code of a Connect JSON error body.
func connectCode(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code
}

const publishPath = "/chute.v1.MessageService/Publish"

// TestRefusedBeforeBody: a call without a token is refused before a byte
// of its body is read (the body here stalls after 1 KiB and never ends:
// a server that read it would never answer), in its protocol's shape:
// Connect JSON 401, gRPC and gRPC-Web grpc-status 16; and the connection
// is closed.
func TestRefusedBeforeBody(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens()})

	resp, body := rawCall(t, addr, publishPath, false, -1, newStallBody(t, 1<<10), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusUnauthorized || connectCode(t, body) != "unauthenticated" || !resp.Close {
		t.Errorf("connect: HTTP %d %q (close %v), want 401 unauthenticated and Connection: close", resp.StatusCode, body, resp.Close)
	}

	resp, _ = rawCall(t, addr, publishPath, true, -1, newStallBody(t, 1<<10), map[string]string{"Content-Type": "application/grpc", "Te": "trailers"})
	if got := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status"); resp.StatusCode != http.StatusOK || got != "16" {
		t.Errorf("gRPC: HTTP %d, grpc-status %q (header %v, trailer %v), want 200 and 16", resp.StatusCode, got, resp.Header, resp.Trailer)
	}

	resp, _ = rawCall(t, addr, publishPath, false, -1, newStallBody(t, 1<<10), map[string]string{"Content-Type": "application/grpc-web+proto"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Status") != "16" {
		t.Errorf("gRPC-Web: HTTP %d, header %v, want 200 and grpc-status 16", resp.StatusCode, resp.Header)
	}

	// A wrong token too, and with a body of any stated length.
	resp, body = rawCall(t, addr, publishPath, false, 60<<20, newStallBody(t, 1<<10),
		map[string]string{"Content-Type": "application/json", "Authorization": "Bearer guess"})
	if resp.StatusCode != http.StatusUnauthorized || connectCode(t, body) != "unauthenticated" {
		t.Errorf("wrong token: HTTP %d %q", resp.StatusCode, body)
	}
	if n := srv.Stats().AuthFailures; n != 4 {
		t.Errorf("AuthFailures %d, want 4", n)
	}
}

// TestRequestTooLarge: a unary request that states a length beyond the
// limit is refused unread; one that does not state it is cut off once
// the limit is read, rather than read (and discarded) to its end.
func TestRequestTooLarge(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens(), MaxRequestBytes: 64 << 10})
	admin := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer admin-secret"}

	resp, body := rawCall(t, addr, publishPath, false, 100<<20, newStallBody(t, 1<<10), admin)
	if resp.StatusCode != http.StatusTooManyRequests || connectCode(t, body) != "resource_exhausted" || !strings.Contains(body, "limit") {
		t.Errorf("stated 100 MiB: HTTP %d %q, want 429 resource_exhausted", resp.StatusCode, body)
	}
	if srv.Stats().TooLarge != 1 {
		t.Errorf("stats %+v: want one request too large", srv.Stats())
	}

	endless := newStallBody(t, -1)
	resp, body = rawCall(t, addr, publishPath, false, -1, endless, admin)
	endless.close()
	if resp.StatusCode != http.StatusTooManyRequests || connectCode(t, body) != "resource_exhausted" {
		t.Errorf("endless body: HTTP %d %q, want 429 resource_exhausted", resp.StatusCode, body)
	}
	// The server reads 64 KiB and a little; the rest of what was taken
	// sits in the sockets' buffers.
	if n := endless.n.Load(); n > 32<<20 {
		t.Errorf("the server took %d bytes of an endless body with a 64 KiB limit", n)
	}
	chutetest.Eventually(t, "in-flight bytes back to 0", func() bool { return srv.Stats().InflightBytes == 0 })
}

// publishJSON is a Connect JSON publish of one message of n body bytes.
func publishJSON(n int) string {
	return `{"target":"q","messages":[{"body":"` + base64.StdEncoding.EncodeToString(make([]byte, n)) + `"}]}`
}

// TestInflightBudget: requests reserve their stated length (counted
// twice) from the in-flight budget; one that does not fit waits
// InflightWait, then is refused (ResourceExhausted, retryable); smaller
// ones that fit go on; the budget comes back when a request ends.
func TestInflightBudget(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens(), MaxRequestBytes: 4 << 20,
		MaxInflightBytes: 4 << 20, MaxConnInflightBytes: 4 << 20, InflightWait: 100 * time.Millisecond})
	if err := b.CreateQueue(chutetest.Ctx(t), "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	admin := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer admin-secret"}

	// A slow client holds 3 MiB: it said it sends 1.5 MiB, and sends 1 KiB.
	holder := newStallBody(t, 1<<10)
	held := make(chan struct{})
	go func() {
		defer close(held)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+publishPath, holder)
		req.ContentLength = 1536 << 10
		for k, v := range admin {
			req.Header.Set(k, v)
		}
		if resp, err := (&http.Client{Transport: tr}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	chutetest.Eventually(t, "3 MiB in flight", func() bool { return srv.Stats().InflightBytes == 3<<20 })

	big := publishJSON(600 << 10) // about 800 KiB of JSON, 1.6 MiB counted
	resp, body := rawCall(t, addr, publishPath, false, int64(len(big)), strings.NewReader(big), admin)
	if resp.StatusCode != http.StatusTooManyRequests || connectCode(t, body) != "resource_exhausted" || !strings.Contains(body, "retry") {
		t.Fatalf("a request beyond the budget: HTTP %d %.200q, want 429 resource_exhausted", resp.StatusCode, body)
	}
	if srv.Stats().InflightRefusals != 1 {
		t.Fatalf("stats %+v: want one in-flight refusal", srv.Stats())
	}
	small := publishJSON(100 << 10)
	if resp, body := rawCall(t, addr, publishPath, false, int64(len(small)), strings.NewReader(small), admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("a request that fits: HTTP %d %.200q", resp.StatusCode, body)
	}

	holder.close() // the slow client gives up: its reservation comes back
	<-held
	chutetest.Eventually(t, "in-flight bytes back to 0", func() bool { return srv.Stats().InflightBytes == 0 })
	if resp, body := rawCall(t, addr, publishPath, false, int64(len(big)), strings.NewReader(big), admin); resp.StatusCode != http.StatusOK {
		t.Fatalf("the large request once the budget is free: HTTP %d %.200q", resp.StatusCode, body)
	}
}

// TestUnauthenticatedConnClosed: a connection on which no call
// authenticates within AuthTimeout is closed (long before
// ReadHeaderTimeout); one that authenticated stays open.
func TestUnauthenticatedConnClosed(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens(), AuthTimeout: 100 * time.Millisecond,
		ReadHeaderTimeout: time.Minute})
	call := func(conn net.Conn, r *bufio.Reader) error {
		_, err := io.WriteString(conn, "POST /chute.v1.AdminService/ListQueues HTTP/1.1\r\nHost: x\r\n"+
			"Authorization: Bearer read-secret\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		if err != nil {
			return err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
	authed, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer authed.Close()
	ar := bufio.NewReader(authed)
	if err := call(authed, ar); err != nil {
		t.Fatalf("authenticated call: %v", err)
	}
	// The same over HTTP/2 (h2c, as gRPC clients speak it).
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	h2 := &http.Client{Transport: tr}
	h2call := func() (reused bool, err error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/chute.v1.AdminService/ListQueues", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer read-secret")
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := h2.Do(req)
		if err != nil {
			return false, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			return false, fmt.Errorf("%s over HTTP/%d", resp.Status, resp.ProtoMajor)
		}
		return reused, nil
	}
	if _, err := h2call(); err != nil {
		t.Fatalf("authenticated HTTP/2 call: %v", err)
	}
	idle, err := net.Dial("tcp", addr) // after the others: its deadline is the last
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, idle); err != nil {
		t.Fatalf("the idle connection was not closed (read %d bytes): %v", n, err)
	}
	if n := srv.Stats().UnauthenticatedCloses; n != 1 {
		t.Fatalf("UnauthenticatedCloses %d, want 1", n)
	}
	if err := call(authed, ar); err != nil {
		t.Fatalf("the authenticated connection, later: %v", err)
	}
	if reused, err := h2call(); err != nil || !reused {
		t.Fatalf("the authenticated HTTP/2 connection, later: reused %v, %v", reused, err)
	}
}

// TestMessageLargerThanBudget: a message larger than a whole budget (here
// the connection's) is read on its own, through a unary gRPC call (no
// stated length: metered as it is read) and through a stream, rather than
// refused for ever; the budgets are whole again afterwards.
func TestMessageLargerThanBudget(t *testing.T) {
	b := chutetest.MustOpen(t, "", &broker.Options{MaxMessageSize: 4 << 20})
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens(), MaxRequestBytes: 8 << 20,
		MaxInflightBytes: 2 << 20, MaxConnInflightBytes: 1 << 20, InflightWait: 100 * time.Millisecond})
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 3<<20)
	for _, proto := range []client.Protocol{client.ProtocolGRPC, client.ProtocolConnect} {
		c := dial(t, addr, client.WithToken("produce-secret"), client.WithProtocol(proto), client.WithoutCompression())
		if _, err := c.Publish(ctx, "q", chute.Message{Body: body}); err != nil {
			t.Fatalf("unary (%v): %v", proto, err)
		}
		p := client.NewProducer(c, "q", client.ProducerOptions{})
		f, err := p.Publish(ctx, chute.Message{Body: body})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("stream (%v): %v", proto, err)
		}
		p.Close(ctx)
	}
	chutetest.Eventually(t, "in-flight bytes back to 0", func() bool { return srv.Stats().InflightBytes == 0 })
}
