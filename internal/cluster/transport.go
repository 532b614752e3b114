package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/chutemq/chute/internal/consensus"
)

// The transport: a node streams Raft messages to each peer in one
// long-lived POST to the peer's RaftPath, its body an endless sequence
// of messages, written by a goroutine of the peer's own (a slow or dead
// peer holds up nobody else). A batch of messages is one chunk of the
// body: one write on the sender (straight to the connection between
// clear-text peers: connStream), one read on the receiver. (It was one
// POST per batch, answered before the next: measured, the HTTP exchanges
// were a third of a 3-node cluster's CPU in BenchmarkCommit.) A stream
// that fails is opened again after streamRetry; messages queued beyond
// peerQueue, or while no stream is open, are dropped, as a lossy network
// would: the library resends.
//
//	body    := message*
//	message := from to flags(1 byte: bit 0 snapshot) len data   (uvarints)

// RaftPath is where a node takes Raft messages from its peers.
const RaftPath = "/chute.cluster.v1/raft"

// ShardPath is where shard's endpoint at path (RaftPath, StatusPath,
// MembersPath, BackupPath) is: path itself for shard 0 (as before there
// were shards, so that a node of an older binary and a newer one reach
// each other's), path/SHARD for the others.
func ShardPath(path string, shard uint32) string {
	if shard == 0 {
		return path
	}
	return path + "/" + strconv.FormatUint(uint64(shard), 10)
}

// shardHeader names, on each stream, the shard its messages are for; a
// node refuses a stream for another shard (a request that reached the
// wrong path). None: shard 0 (a node from before shards).
const shardHeader = "Chute-Shard"

// Routes are the node's endpoints by path (ShardPath of RaftPath,
// StatusPath, MembersPath, BackupPath and CarryPath; PlacePath for
// shard 0), for
// the server's mux: a
// process serves every shard's node on one port.
func (n *Node) Routes() map[string]http.Handler {
	r := map[string]http.Handler{
		ShardPath(RaftPath, n.cfg.Shard):    n.Handler(),
		ShardPath(StatusPath, n.cfg.Shard):  n.StatusHandler(),
		ShardPath(MembersPath, n.cfg.Shard): n.MembersHandler(),
		ShardPath(BackupPath, n.cfg.Shard):  n.BackupHandler(),
		ShardPath(CarryPath, n.cfg.Shard):   n.CarryHandler(),
	}
	if n.cfg.Shard == 0 {
		r[PlacePath] = n.PlaceHandler() // the directory (place.go)
	}
	return r
}

// versionHeader carries, on each stream, the latest command version the
// sending node reads (replica.Command.Version); a node without it reads
// version 1 (it came before the header). A leader moves the cluster to a
// version once every member advertised it.
const versionHeader = "Chute-Command-Version"

// maxMessage bounds one message (a snapshot travels in one).
const maxMessage = 256 << 20

const (
	peerQueue = 4096
	// streamRetry is the pause before a failed stream is opened again.
	streamRetry = 50 * time.Millisecond
	// writeTimeout ends a stream whose write has not gone through in
	// time: a peer that stopped reading (stopped, or a link that
	// drops everything) is written to on a new stream once it answers.
	writeTimeout = 5 * time.Second
)

type peer struct {
	n      *Node
	id     uint64
	url    string
	client *http.Client // the node's, without its timeout: a stream lasts
	out    chan consensus.Message
	ctx    context.Context // cancelled by close: ends the stream
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	direct *directPeer // nil: through client (a pipeStream)
}

func newPeer(n *Node, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	client := *n.cfg.HTTP
	client.Timeout = 0
	p := &peer{n: n, id: id, url: addr + ShardPath(RaftPath, n.cfg.Shard), client: &client, out: make(chan consensus.Message, peerQueue),
		ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	p.direct = p.directTo(p.url)
	go p.run()
	return p
}

// send queues m, or drops it when the queue is full; a dropped snapshot
// is reported as not arrived.
func (p *peer) send(m consensus.Message) {
	select {
	case p.out <- m:
	default:
		if m.Snapshot {
			p.report(false)
		}
	}
}

func (p *peer) report(arrived bool) {
	select {
	case p.n.reports <- snapReport{to: p.id, arrived: arrived}:
	case <-p.stop:
	}
}

func (p *peer) close() {
	close(p.stop)
	p.cancel()
	<-p.done
}

// stream is one open POST to the peer: a connStream of the peer's own
// (clear-text peers, the node's default HTTP client), else a pipeStream
// through the node's HTTP client (TLS: HTTP/2, or a client a test or an
// embedder set).
type stream interface {
	// write writes one batch, or fails within writeTimeout (and a second
	// per 8 MiB more: a large snapshot takes its time).
	write(b []byte) error
	// close ends the stream and returns the POST's outcome.
	close() error
}

// writeDeadline is how long a write of n bytes may take.
func writeDeadline(n int) time.Duration {
	return writeTimeout + time.Duration(n>>23)*time.Second
}

func (p *peer) open() stream {
	if p.direct != nil {
		return p.dial()
	}
	return p.openPipe()
}

// pipeStream is a POST whose body is a pipe: the HTTP client's writer
// goroutine takes each batch from it and writes it as one chunk.
type pipeStream struct {
	w      *io.PipeWriter
	cancel context.CancelFunc
	done   chan error // the POST's outcome, once it ended
	timer  *time.Timer
}

func (p *peer) openPipe() stream {
	ctx, cancel := context.WithCancel(p.ctx)
	r, w := io.Pipe()
	s := &pipeStream{w: w, cancel: cancel, done: make(chan error, 1)}
	s.timer = time.AfterFunc(time.Hour, cancel)
	s.timer.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, r)
	if err != nil {
		s.done <- err
		w.CloseWithError(err)
		return s
	}
	req.Header = p.header()
	go func() {
		resp, err := p.client.Do(req)
		if err == nil {
			err = answered(resp)
		}
		r.CloseWithError(err) // the next write fails
		s.done <- err
	}()
	return s
}

func (s *pipeStream) write(b []byte) error {
	s.timer.Reset(writeDeadline(len(b)))
	_, err := s.w.Write(b)
	s.timer.Stop()
	return err
}

func (s *pipeStream) close() error {
	s.w.Close()
	s.cancel()
	s.timer.Stop()
	return <-s.done
}

// header is a stream's request header.
func (p *peer) header() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set(versionHeader, strconv.Itoa(int(p.n.cfg.MaxVersion)))
	h.Set(shardHeader, strconv.FormatUint(uint64(p.n.cfg.Shard), 10))
	if p.n.cfg.Token != "" {
		h.Set("Authorization", "Bearer "+p.n.cfg.Token)
	}
	return h
}

// answered is the error a stream ended with, given the peer's answer
// (which comes only once the stream ended: 204, or an error status).
func answered(resp *http.Response) error {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("peer answered %s", resp.Status)
	}
	return errors.New("peer ended the stream")
}

// connStream is a POST written straight to a TCP connection of the
// peer's own: the request's head, then each batch as one chunk of its
// chunked body, in one writev by the peer's goroutine. Through the HTTP
// client (a pipeStream) a batch was handed from the peer's goroutine to
// the client's writer goroutine and back, two goroutine switches per
// batch, on the leader twice per round and peer (measured in
// docs/replication.md, "The Raft stream straight to its connection").
// It does not go through an HTTP proxy of the environment's (HTTP_PROXY),
// as the default client's did for peers not on loopback: a cluster's
// links are the nodes' own.
// A goroutine of the stream's reads the peer's answer, which comes only
// when the peer ends the stream (or refuses it: 400, 401, 503), and
// closes the connection, so that the next write fails with the answer.
type connStream struct {
	c     net.Conn // nil: the dial failed with err
	err   error
	head  []byte // the request's head, until the first write sends it
	done  chan error
	unctx func() bool // stops closing c when the peer's ctx ends
	size  [18]byte    // a chunk's size line
	iov   [4][]byte
}

// directPeer is where a connStream goes: the peer's address (host:port)
// and the request's head.
type directPeer struct {
	addr string
	head []byte
}

// directTo returns how to stream to url straight over TCP, or nil when the
// stream goes through the node's HTTP client: a TLS peer, or a client
// of the embedder's (its Transport set).
func (p *peer) directTo(raw string) *directPeer {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || p.n.cfg.HTTP.Transport != nil || u.User != nil {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: chute\r\nTransfer-Encoding: chunked\r\n", u.RequestURI(), u.Host)
	p.header().Write(&b) // (Header.Write takes CR and LF out of values)
	b.WriteString("\r\n")
	return &directPeer{addr: addr, head: b.Bytes()}
}

func (p *peer) dial() stream {
	s := &connStream{done: make(chan error, 1), head: p.direct.head}
	timeout := p.n.cfg.HTTP.Timeout
	if timeout <= 0 {
		timeout = writeTimeout
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(p.ctx, "tcp", p.direct.addr)
	if err != nil {
		s.err = err
		return s
	}
	s.c = c
	s.unctx = context.AfterFunc(p.ctx, func() { c.Close() })
	go func() {
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), nil)
		if err == nil {
			err = answered(resp)
		}
		c.Close() // the next write fails
		s.done <- err
	}()
	return s
}

func (s *connStream) write(b []byte) error {
	if s.c == nil {
		return s.err
	}
	iov := net.Buffers(s.iov[:0])
	if s.head != nil {
		iov = append(iov, s.head)
		s.head = nil
	}
	size := strconv.AppendUint(s.size[:0], uint64(len(b)), 16)
	iov = append(iov, append(size, '\r', '\n'), b, crlf)
	s.c.SetWriteDeadline(time.Now().Add(writeDeadline(len(b))))
	_, err := iov.WriteTo(s.c)
	return err
}

var crlf = []byte("\r\n")

func (s *connStream) close() error {
	if s.c == nil {
		return s.err
	}
	s.unctx()
	s.c.Close()
	return <-s.done
}

func (p *peer) run() {
	defer close(p.done)
	var s stream
	defer func() {
		if s != nil {
			s.close()
		}
	}()
	var buf []byte
	for {
		var batch []consensus.Message
		select {
		case m := <-p.out:
			batch = append(batch, m)
		case <-p.stop:
			return
		}
	more:
		for len(batch) < 512 {
			select {
			case m := <-p.out:
				batch = append(batch, m)
			default:
				break more
			}
		}
		buf = buf[:0]
		for _, m := range batch {
			buf = appendMessage(buf, m)
		}
		if s == nil {
			s = p.open()
		}
		err := s.write(buf)
		for _, m := range batch {
			if m.Snapshot {
				if err == nil {
					p.n.snapSends.Add(1)
				}
				p.report(err == nil)
			}
		}
		if err == nil {
			continue
		}
		if perr := s.close(); perr != nil {
			err = perr
		}
		s = nil
		p.n.cfg.Logger.Debug("raft stream failed", "peer", p.id, "dropped", len(batch), "err", err)
		if !p.pause() {
			return
		}
	}
}

// pause waits streamRetry, dropping what is queued meanwhile (reporting
// snapshots as not arrived); false once the peer is closed.
func (p *peer) pause() bool {
	t := time.NewTimer(streamRetry)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case m := <-p.out:
			if m.Snapshot {
				p.report(false)
			}
		case <-p.stop:
			return false
		}
	}
}

func appendMessage(buf []byte, m consensus.Message) []byte {
	buf = binary.AppendUvarint(buf, m.From)
	buf = binary.AppendUvarint(buf, m.To)
	var flags byte
	if m.Snapshot {
		flags = 1
	}
	buf = append(buf, flags)
	buf = binary.AppendUvarint(buf, uint64(len(m.Data)))
	return append(buf, m.Data...)
}

// Handler takes Raft messages from peers (POST RaftPath): a stream of
// them, handed to the node in the batches they arrive in. It answers once
// the stream ends: 204, or 400 with the first malformed message.
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodPost) {
			return
		}
		if n.cfg.Authenticated != nil {
			n.cfg.Authenticated(r)
		}
		// A read waiting for the peer ends when the request's context
		// does (a server shutting down) or the node stops.
		// (The watcher is done before the handler returns: w is not to
		// be used after.)
		finished, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-n.stop:
			case <-r.Context().Done():
			case <-finished:
				return
			}
			http.NewResponseController(w).SetReadDeadline(time.Now())
		}()
		defer func() { close(finished); <-watched }()
		if sh := r.Header.Get(shardHeader); sh != "" && sh != strconv.FormatUint(uint64(n.cfg.Shard), 10) || sh == "" && n.cfg.Shard != 0 {
			http.Error(w, fmt.Sprintf("a stream for shard %q at shard %d", sh, n.cfg.Shard), http.StatusBadRequest)
			return
		}
		br := bufio.NewReaderSize(r.Body, 64<<10)
		version := uint8(1)
		if v, err := strconv.ParseUint(r.Header.Get(versionHeader), 10, 8); err == nil && v > 1 {
			version = uint8(v)
		}
		var msgs []consensus.Message
		for first := true; ; first = false {
			m, err := readMessage(br, n.cfg.ID)
			if err == io.EOF && len(msgs) == 0 {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if first {
				n.vmu.Lock()
				n.versions[m.From] = version
				n.vmu.Unlock()
			}
			msgs = append(msgs, m)
			if br.Buffered() > 0 && len(msgs) < maxBatchEvents {
				continue // more of this chunk: one batch
			}
			select {
			case n.inbox <- msgs:
				msgs = nil
			case <-n.stop:
				http.Error(w, "closed", http.StatusServiceUnavailable)
				return
			case <-r.Context().Done():
				return
			}
		}
	})
}

// readMessage reads one message for node to; io.EOF only at a message's
// start.
func readMessage(br *bufio.Reader, to uint64) (consensus.Message, error) {
	from, err := binary.ReadUvarint(br)
	if err != nil {
		return consensus.Message{}, err // io.EOF: the stream's end
	}
	dst, err := binary.ReadUvarint(br)
	var flags byte
	if err == nil {
		flags, err = br.ReadByte()
	}
	var n uint64
	if err == nil {
		n, err = binary.ReadUvarint(br)
	}
	if err == nil && n > maxMessage {
		return consensus.Message{}, fmt.Errorf("a message of %d bytes (at most %d)", n, maxMessage)
	}
	var data []byte
	if err == nil {
		data = make([]byte, n)
		_, err = io.ReadFull(br, data)
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return consensus.Message{}, fmt.Errorf("truncated message: %w", err)
	}
	if dst != to {
		return consensus.Message{}, fmt.Errorf("a message for node %d at node %d", dst, to)
	}
	return consensus.Message{From: from, To: dst, Snapshot: flags&1 != 0, Data: data}, nil
}
