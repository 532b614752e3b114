package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"

	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// lazyBody is a request body of size bytes made as it is read (zeros
// after an optional prefix: a gRPC envelope's), so that two dozen 60 MiB
// requests cost the test nothing; taken counts what the transport took.
type lazyBody struct {
	prefix []byte
	left   int64
	taken  atomic.Int64
}

func (b *lazyBody) Read(p []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		b.taken.Add(int64(n))
		return n, nil
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	clear(p[:n])
	b.left -= int64(n)
	b.taken.Add(int64(n))
	return n, nil
}

// floodCall is one large publish sent as one of a flood.
type floodCall struct {
	grpc       bool   // gRPC over h2c (no Content-Length) rather than Connect over HTTP/1.1
	chunked    bool   // Connect without Content-Length
	token      string // "" for none
	status     int    // HTTP status expected
	grpcStatus string // grpc-status expected ("" for Connect)
}

// flood sends the calls at once, each a publish of size bytes, and checks
// that each is answered as expected before its body was read. It returns the
// most bytes any one call got out of the client before its answer.
func flood(t *testing.T, addr string, size int64, calls []floodCall) int64 {
	t.Helper()
	var wg sync.WaitGroup
	var most atomic.Int64
	for i, fc := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Keep-alive: net/http lingers before it closes the connection
			// of a keep-alive client whose body it did not read, so that the
			// answer is not lost to a reset (a client that sends
			// "Connection: close" gets no such grace).
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			body := &lazyBody{left: size}
			ctype, length := "application/proto", size
			if fc.grpc {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				tr.Protocols = &p
				body.prefix = []byte{0, byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}
				ctype, length = "application/grpc", -1
			}
			// A bound against a hang, not a measure: under -race, beside
			// the other packages' tests, the calls without a length were
			// answered after 12–16 s and four of eight after more than
			// 20 s (the former bound), with 6–11.5 s alone.
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/chute.v1.MessageService/Publish", body)
			if err != nil {
				t.Error(err)
				return
			}
			if fc.chunked {
				length = -1
			}
			req.ContentLength = length
			req.Header.Set("Content-Type", ctype)
			if fc.grpc {
				req.Header.Set("Te", "trailers")
			}
			if fc.token != "" {
				req.Header.Set("Authorization", "Bearer "+fc.token)
			}
			start := time.Now()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			grpcStatus := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
			if resp.StatusCode != fc.status || grpcStatus != fc.grpcStatus {
				t.Errorf("call %d (grpc %v): HTTP %d grpc-status %q, want %d %q", i, fc.grpc, resp.StatusCode, grpcStatus, fc.status, fc.grpcStatus)
			}
			// How long an answer takes depends on the machine's load; what
			// must hold is that it comes without the body being read,
			// which flood's result (bytes that left the client) shows.
			if took > 5*time.Second {
				t.Logf("call %d (grpc %v): answered after %v", i, fc.grpc, took)
			}
			for {
				m := most.Load()
				if n := body.taken.Load(); n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
		}()
	}
	wg.Wait()
	if n := most.Load(); n >= size {
		t.Errorf("a whole %d MiB body left the client before its answer", n/mib)
	}
	return most.Load()
}

// procMemory reads a process's peak and current resident set (VmHWM and
// VmRSS) from /proc.
func procMemory(t *testing.T, pid int) (peak, rss int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, val, ok := strings.Cut(s.Text(), ":")
		if !ok || key != "VmHWM" && key != "VmRSS" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", key, val, err)
		}
		if key == "VmHWM" {
			peak = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if peak == 0 {
		t.Fatalf("/proc/%d/status has no VmHWM", pid)
	}
	return peak, rss
}

const mib = 1 << 20

// TestMemoryBoundedUnderFlood (issue 8: 24 concurrent 60 MiB publishes
// without a token took the server from 13 MiB to 2.7 GB): a server with a
// 64 MiB memory budget and tokens stays under twice its budget, measured
// as the process's peak resident set, while two dozen 60 MiB publishes
// arrive without a token (each refused at once, unread), and while eight
// arrive with the admin token but beyond --max-request-size (refused
// unread too). Each call is answered within seconds. (Oversized
// publishes that do not state their length cost more: see below.)
//
// With -race the server binary carries the race detector's shadow memory
// (several times the heap), so the bound is then what the flood adds to
// the peak before it, not the peak itself; run without -race for the
// figures in docs/operations.md.
func TestMemoryBoundedUnderFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the server's peak memory from /proc")
	}
	const budget = 64 * mib
	sum := sha256.Sum256([]byte("e2e-admin"))
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(fmt.Sprintf(`tokens:
  - name: ops
    token_sha256: %s
    role: admin
  - name: feeder
    token: e2e-producer
    role: produce
    rate: 1000
`, hex.EncodeToString(sum[:]))), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	p := startData(t, t.TempDir(), "--memory-budget", "64MiB", "--tokens", tokens, "--max-request-size", "16MiB",
		"--audit-log", audit)
	pid := p.cmd.Process.Pid
	admin := p.dial(t, client.WithToken("e2e-admin"))
	ctx := chutetest.Ctx(t)
	if err := admin.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	before, _ := procMemory(t, pid)
	limit := int64(2 * budget)
	if raceEnabled() {
		limit = before + 2*budget
	}

	var noToken []floodCall
	for i := range 24 {
		if i%3 == 2 {
			noToken = append(noToken, floodCall{grpc: true, status: http.StatusOK, grpcStatus: "16"})
		} else {
			noToken = append(noToken, floodCall{status: http.StatusUnauthorized})
		}
	}
	sent := flood(t, p.addr, 60*mib, noToken)
	peak, rss := procMemory(t, pid)
	t.Logf("24 × 60 MiB without a token: peak RSS %d MiB (before %d MiB, now %d MiB, limit %d MiB); at most %.1f MiB of one body left the client",
		peak/mib, before/mib, rss/mib, limit/mib, float64(sent)/mib)
	if peak > limit {
		t.Errorf("peak RSS %d MiB under a flood without a token, want under %d MiB", peak/mib, limit/mib)
	}

	var tooLarge []floodCall
	for range 8 {
		tooLarge = append(tooLarge, floodCall{token: "e2e-admin", status: http.StatusTooManyRequests})
	}
	sent = flood(t, p.addr, 60*mib, tooLarge)
	peak2, rss := procMemory(t, pid)
	t.Logf("8 × 60 MiB with the admin token, beyond --max-request-size 16MiB: peak RSS %d MiB (now %d MiB); at most %.1f MiB of one body left the client",
		peak2/mib, rss/mib, float64(sent)/mib)
	if peak2 > limit {
		t.Errorf("peak RSS %d MiB under oversized publishes, want under %d MiB", peak2/mib, limit/mib)
	}

	// The same without Content-Length: each is read up to the request
	// limit (16 MiB) before Connect refuses it, and Connect's read buffer
	// doubles as it grows, so memory is bounded by the in-flight budget
	// (128 MiB here, each byte counted twice) and the garbage collector's
	// slack rather than by the memory budget: a looser bound.
	var chunked []floodCall
	for range 8 {
		chunked = append(chunked, floodCall{token: "e2e-admin", chunked: true, status: http.StatusTooManyRequests})
	}
	sent = flood(t, p.addr, 60*mib, chunked)
	peak3, rss := procMemory(t, pid)
	limit3 := int64(2*budget + 2*128*mib)
	t.Logf("8 × 60 MiB with the admin token, without Content-Length: peak RSS %d MiB (now %d MiB, limit %d MiB without -race); at most %.1f MiB of one body left the client",
		peak3/mib, rss/mib, limit3/mib, float64(sent)/mib)
	// Under -race the heap's shadow memory (measured: 960 MiB for this
	// load) says nothing about the server's own bound.
	if !raceEnabled() && peak3 > limit3 {
		t.Errorf("peak RSS %d MiB under oversized publishes without a length, want under %d MiB", peak3/mib, limit3/mib)
	}

	// The server serves on; the failures were logged, rate-limited.
	if _, err := p.dial(t, client.WithToken("e2e-producer")).Publish(ctx, "q", chute.Message{Body: []byte("after")}); err != nil {
		t.Fatalf("publish after the floods: %v", err)
	}
	if n := strings.Count(p.errOut.String(), `msg="authentication failed"`); n == 0 || n > 8 {
		t.Errorf("%d lines for 24 failed authentications from one address within seconds, want a few (one a second)", n)
	}
	if err := admin.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	p.stop()
	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 || lines[0]["action"] != "CreateQueue" || lines[1]["action"] != "DeleteQueue" || lines[1]["token"] != "ops" {
		t.Errorf("audit log:\n%s\nwant CreateQueue and DeleteQueue by ops", raw)
	}
}
