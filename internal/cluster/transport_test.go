package cluster

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/replica"
)

// TestStreamDirect: between clear-text peers, with the node's default
// HTTP client, the Raft streams are written straight to their
// connections (connStream), and the cluster commits over them; a node
// given an HTTP client of its own (a Transport) streams through it
// (pipeStream), and the two kinds of stream work side by side: with the
// third node stopped, the cluster commits only over both.
func TestStreamDirect(t *testing.T) {
	c := newTestCluster(t, 3)
	c.do(replica.Command{Op: replica.OpCreateQueue, Queue: "q", Visibility: time.Minute})
	for i := range 20 {
		if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte{byte(i)}}}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	c.converge(nil)
	if n := c.direct.Load(); n < 4 { // the leader to each follower, each follower to the leader
		t.Fatalf("%d streams written straight to their connections, want 4 at least", n)
	}

	// Node 3 again, through a client of its own.
	c.stop(3)
	c.client = &http.Client{Transport: &http.Transport{}}
	c.start(3)
	c.client = nil
	for i := range 20 {
		if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte{byte(i)}}}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	c.converge(&replica.Command{Op: replica.OpReceive, Queue: "q", Max: 1})
	// Node 3's answers (through its pipe) now make the quorum: without
	// node 2, nothing commits unless they arrive.
	c.stop(2)
	for i := range 5 {
		if res := c.do(replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{Body: []byte{byte(i)}}}}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if p := c.members[3].node.peers[1]; p.direct != nil {
		t.Fatal("a node with an HTTP client of its own streams straight to its peers")
	}
	if p := c.members[1].node.peers[3]; p.direct == nil {
		t.Fatal("node 1 streams to node 3 through its HTTP client")
	}
}

// streamPeer is a peer of a node that is never started, to open streams
// to addr with.
func streamPeer(t *testing.T, addr, token string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n := &Node{cfg: Config{HTTP: &http.Client{Timeout: 10 * time.Second}, Token: token, MaxVersion: 2,
		Logger: slog.New(slog.DiscardHandler)}}
	p := &peer{n: n, id: 2, url: addr + RaftPath, client: n.cfg.HTTP, ctx: ctx, cancel: cancel}
	p.direct = p.directTo(p.url)
	if p.direct == nil {
		t.Fatalf("no direct stream to %s", p.url)
	}
	return p
}

// TestStreamRequest: a connStream's request is one a node's handler
// takes: its head (method, path, headers, the token) and its chunks
// arrive as written, each batch one read of the body.
func TestStreamRequest(t *testing.T) {
	type got struct {
		r      *http.Request
		chunks [][]byte
	}
	gotc := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := got{r: r}
		br := bufio.NewReader(r.Body)
		for {
			m, err := readMessage(br, 2)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				break
			}
			g.chunks = append(g.chunks, m.Data)
			if len(g.chunks) == 3 {
				break
			}
		}
		gotc <- g
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	p := streamPeer(t, srv.URL, "tok\r\nX-Injected: 1")
	s := p.open()
	want := []string{"one", strings.Repeat("b", 100<<10), ""}
	for _, w := range want {
		if err := s.write(appendMessage(nil, consensus.Message{From: 1, To: 2, Data: []byte(w)})); err != nil {
			t.Fatal(err)
		}
	}
	g := <-gotc
	if err := s.close(); err == nil || !strings.Contains(err.Error(), "peer ended the stream") && !strings.Contains(err.Error(), "closed") {
		t.Fatalf("close: %v", err)
	}
	if g.r.Method != http.MethodPost || g.r.URL.Path != RaftPath || g.r.Header.Get(versionHeader) != "2" ||
		g.r.Header.Get(shardHeader) != "0" || g.r.Header.Get("X-Injected") != "" ||
		!strings.HasPrefix(g.r.Header.Get("Authorization"), "Bearer tok") {
		t.Fatalf("request %s %s, header %v", g.r.Method, g.r.URL, g.r.Header)
	}
	if len(g.chunks) != len(want) {
		t.Fatalf("%d messages, want %d", len(g.chunks), len(want))
	}
	for i, w := range want {
		if string(g.chunks[i]) != w {
			t.Fatalf("message %d: %d bytes, want %d", i, len(g.chunks[i]), len(w))
		}
	}
}

// TestStreamRefused: a peer that refuses the stream (the wrong token)
// fails the next writes, and close returns its answer; a peer that is
// not there fails the first write.
func TestStreamRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "the cluster's token is required", http.StatusUnauthorized)
	}))
	defer srv.Close()
	p := streamPeer(t, srv.URL, "wrong")
	s := p.open()
	msg := appendMessage(nil, consensus.Message{From: 1, To: 2, Data: make([]byte, 1<<10)})
	var err error
	for i := 0; err == nil; i++ {
		if i == 100000 {
			t.Fatal("writes go on after the peer refused the stream")
		}
		err = s.write(msg)
	}
	if err := s.close(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("close: %v, want the peer's 401", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p = streamPeer(t, "http://"+addr, "")
	s = p.open()
	if err := s.write(msg); err == nil {
		t.Fatal("a write to a closed port went through")
	}
	if err := s.close(); err == nil {
		t.Fatal("a stream to a closed port closed without an error")
	}
}

// TestStreamStuckPeer: a write to a peer that stopped reading (its
// buffers full) ends when the peer's context does, as a node's Close
// ends it, long before the write's deadline.
func TestStreamStuckPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c // never read
		}
	}()
	p := streamPeer(t, "http://"+l.Addr().String(), "")
	s := p.open()
	c := <-accepted
	defer c.Close()
	big := make([]byte, 64<<20) // more than the sockets hold
	werr := make(chan error, 1)
	go func() { werr <- s.write(big) }()
	// The write is blocked: the peer reads nothing. (If it were not, it
	// would have failed or gone through; either is caught below.)
	p.cancel()
	select {
	case err := <-werr:
		if err == nil {
			t.Fatal("64 MiB went through to a peer that reads nothing")
		}
	case <-time.After(writeTimeout):
		t.Fatalf("the write was still blocked %v after the peer's context ended", writeTimeout)
	}
	if err := s.close(); err == nil {
		t.Fatal("a cancelled stream closed without an error")
	}
}
