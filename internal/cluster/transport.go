package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/chutemq/chute/internal/consensus"
)

// The transport: a node streams Raft messages to each peer in one
// long-lived POST to the peer's RaftPath, its body an endless sequence
// of messages, written by a goroutine of the peer's own (a slow or dead
// peer holds up nobody else). A batch of messages is one chunk of the
// body: one write on the sender, one read on the receiver. (It was one
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
}

func newPeer(n *Node, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	client := *n.cfg.HTTP
	client.Timeout = 0
	p := &peer{n: n, id: id, url: addr + ShardPath(RaftPath, n.cfg.Shard), client: &client, out: make(chan consensus.Message, peerQueue),
		ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
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

// stream is one open POST to the peer.
type stream struct {
	w      *io.PipeWriter
	cancel context.CancelFunc
	done   chan error // the POST's outcome, once it ended
	timer  *time.Timer
}

func (p *peer) open() *stream {
	ctx, cancel := context.WithCancel(p.ctx)
	r, w := io.Pipe()
	s := &stream{w: w, cancel: cancel, done: make(chan error, 1)}
	s.timer = time.AfterFunc(time.Hour, cancel)
	s.timer.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, r)
	if err != nil {
		s.done <- err
		w.CloseWithError(err)
		return s
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(versionHeader, strconv.Itoa(int(p.n.cfg.MaxVersion)))
	req.Header.Set(shardHeader, strconv.FormatUint(uint64(p.n.cfg.Shard), 10))
	if p.n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.n.cfg.Token)
	}
	go func() {
		resp, err := p.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("peer answered %s", resp.Status)
			} else {
				err = errors.New("peer ended the stream")
			}
		}
		r.CloseWithError(err) // the next write fails
		s.done <- err
	}()
	return s
}

// write writes one batch, or fails within writeTimeout (and a second per
// 8 MiB more: a large snapshot takes its time).
func (s *stream) write(b []byte) error {
	s.timer.Reset(writeTimeout + time.Duration(len(b)>>23)*time.Second)
	_, err := s.w.Write(b)
	s.timer.Stop()
	return err
}

// close ends the stream and returns the POST's outcome.
func (s *stream) close() error {
	s.w.Close()
	s.cancel()
	s.timer.Stop()
	return <-s.done
}

func (p *peer) run() {
	defer close(p.done)
	var s *stream
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
