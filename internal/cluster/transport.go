package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/chutemq/chute/internal/consensus"
)

// The transport: a node POSTs batches of Raft messages to a peer's
// RaftPath, one request at a time per peer, from a goroutine of its own
// (a slow or dead peer holds up nobody else). Messages queued beyond
// peerQueue are dropped, as a lossy network would: the library resends.
//
//	body    := message*
//	message := from to flags(1 byte: bit 0 snapshot) len data   (uvarints)

// RaftPath is where a node takes Raft messages from its peers.
const RaftPath = "/chute.cluster.v1/raft"

// maxBody bounds a request's body (a snapshot travels in one).
const maxBody = 256 << 20

const peerQueue = 4096

type peer struct {
	n      *Node
	id     uint64
	url    string
	out    chan consensus.Message
	ctx    context.Context // cancelled by close: ends a request in flight
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

func newPeer(n *Node, id uint64, addr string) *peer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{n: n, id: id, url: addr + RaftPath, out: make(chan consensus.Message, peerQueue),
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

func (p *peer) run() {
	defer close(p.done)
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
		err := p.post(batch)
		for _, m := range batch {
			if m.Snapshot {
				p.report(err == nil)
			}
		}
		if err != nil {
			p.n.cfg.Logger.Debug("raft messages not delivered", "peer", p.id, "n", len(batch), "err", err)
		}
	}
}

func (p *peer) post(batch []consensus.Message) error {
	var buf []byte
	for _, m := range batch {
		buf = binary.AppendUvarint(buf, m.From)
		buf = binary.AppendUvarint(buf, m.To)
		var flags byte
		if m.Snapshot {
			flags = 1
		}
		buf = append(buf, flags)
		buf = binary.AppendUvarint(buf, uint64(len(m.Data)))
		buf = append(buf, m.Data...)
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.url, bytes.NewReader(buf))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if p.n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.n.cfg.Token)
	}
	resp, err := p.n.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("peer %d answered %s", p.id, resp.Status)
	}
	return nil
}

// Handler takes Raft messages from peers (POST RaftPath).
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if !n.authorized(w, r) {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err == nil && len(body) > maxBody {
			err = errors.New("body too large")
		}
		var msgs []consensus.Message
		if err == nil {
			msgs, err = decodeMessages(body, n.cfg.ID)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case n.inbox <- msgs:
			w.WriteHeader(http.StatusNoContent)
		case <-n.stop:
			http.Error(w, "closed", http.StatusServiceUnavailable)
		case <-r.Context().Done():
		}
	})
}

func decodeMessages(b []byte, to uint64) ([]consensus.Message, error) {
	var msgs []consensus.Message
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	for len(b) > 0 {
		from, ok1 := next()
		dst, ok2 := next()
		if !ok1 || !ok2 || len(b) == 0 {
			return nil, errors.New("truncated message")
		}
		flags := b[0]
		b = b[1:]
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return nil, errors.New("truncated message")
		}
		if dst != to {
			return nil, fmt.Errorf("a message for node %d at node %d", dst, to)
		}
		msgs = append(msgs, consensus.Message{From: from, To: dst, Snapshot: flags&1 != 0, Data: append([]byte(nil), b[:n]...)})
		b = b[n:]
	}
	return msgs, nil
}
