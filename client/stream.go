package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/wire"
)

// publishStream multiplexes many publishes on one PublishStream: each
// request gets an id, a reader goroutine hands each response to the caller
// waiting for that id. When the stream breaks, every waiting publish fails
// with the stream's error (their outcome is unknown: the producer retries
// them with the same IDs) and the next publish opens a new stream.
type publishStream struct {
	c *Client

	sendMu sync.Mutex // serialises Send; never held with mu

	mu      sync.Mutex
	stream  *connect.BidiStreamForClient[chutev1.PublishStreamRequest, chutev1.PublishStreamResponse]
	cancel  context.CancelFunc
	pending map[uint64]chan streamAnswer // guarded by mu
	nextID  uint64                       // guarded by mu
	closed  bool
	wg      sync.WaitGroup
}

type streamAnswer struct {
	res []chute.PublishResult
	err error
}

var errStreamClosed = errors.New("publish stream closed")

func newPublishStream(c *Client) *publishStream {
	return &publishStream{c: c, pending: make(map[uint64]chan streamAnswer)}
}

// submit sends one batch and returns the function that waits for its
// confirmation. Batches submitted one after another are published in that
// order (the server applies a stream's requests in order).
func (p *publishStream) submit(target string, msgs []chute.Message) (func(ctx context.Context) ([]chute.PublishResult, error), error) {
	req, err := wire.PublishStreamRequest(0, target, msgs)
	if err != nil {
		return nil, err
	}
	answer := make(chan streamAnswer, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errStreamClosed
	}
	if p.stream == nil {
		p.openLocked()
	}
	p.nextID++
	id, stream := p.nextID, p.stream
	p.pending[id] = answer
	p.mu.Unlock()
	// Send may block on flow control: the reader must stay free to take
	// responses meanwhile, so mu is not held here.
	req.Id = id
	p.sendMu.Lock()
	err = stream.Send(req)
	p.sendMu.Unlock()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.breakLocked(stream, err)
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errStreamBroken, wire.FromConnect(err))
	}
	return func(ctx context.Context) ([]chute.PublishResult, error) {
		select {
		case a := <-answer:
			return a.res, a.err
		case <-ctx.Done():
			p.mu.Lock()
			delete(p.pending, id)
			p.mu.Unlock()
			return nil, ctx.Err()
		}
	}, nil
}

func (p *publishStream) openLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	p.stream = p.c.msg.PublishStream(ctx)
	p.cancel = cancel
	stream := p.stream
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.read(stream)
	}()
}

// read dispatches responses until the stream ends.
func (p *publishStream) read(stream *connect.BidiStreamForClient[chutev1.PublishStreamRequest, chutev1.PublishStreamResponse]) {
	for {
		resp, err := stream.Receive()
		if err != nil {
			p.mu.Lock()
			p.breakLocked(stream, err)
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		answer := p.pending[resp.GetId()]
		delete(p.pending, resp.GetId())
		p.mu.Unlock()
		if answer == nil {
			continue // the caller gave up
		}
		if e := resp.GetError(); e != nil {
			answer <- streamAnswer{err: wire.FromStatus(e)}
		} else {
			answer <- streamAnswer{res: wire.ResultsFromPB(resp.GetResults())}
		}
	}
}

// breakLocked forgets a broken stream and fails its waiting publishes.
func (p *publishStream) breakLocked(stream *connect.BidiStreamForClient[chutev1.PublishStreamRequest, chutev1.PublishStreamResponse], err error) {
	if p.stream != stream {
		return
	}
	p.stream = nil
	p.cancel()
	// Cancelling the context does not always wake a Receive blocked on an
	// HTTP/2 response body; closing the response does.
	go stream.CloseResponse()
	if err == nil || errors.Is(err, context.Canceled) {
		err = errStreamClosed
	}
	err = fmt.Errorf("%w: %w", errStreamBroken, wire.FromConnect(err))
	for id, answer := range p.pending {
		answer <- streamAnswer{err: err}
		delete(p.pending, id)
	}
}

// errStreamBroken marks publishes whose stream broke: their outcome is
// unknown, so they are retried.
var errStreamBroken = errors.New("stream broken")

// close ends the stream gracefully: the server confirms what is in flight
// and ends its side; after 5 s the stream is aborted.
func (p *publishStream) close() {
	p.mu.Lock()
	p.closed = true
	stream := p.stream
	p.mu.Unlock()
	if stream != nil {
		closeGracefully(&p.sendMu, stream.CloseRequest, &p.wg, func() {
			p.mu.Lock()
			p.breakLocked(stream, errStreamClosed)
			p.mu.Unlock()
		})
	}
	p.wg.Wait()
}

// closeGracefully half-closes a stream (under the lock that serialises its
// sends) and waits for its reader to see the server end the stream; if
// that takes more than 5 s it aborts.
func closeGracefully(sendMu *sync.Mutex, closeRequest func() error, reader *sync.WaitGroup, abort func()) {
	sendMu.Lock()
	closeRequest()
	sendMu.Unlock()
	done := make(chan struct{})
	go func() { reader.Wait(); close(done) }()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		abort()
	}
}
