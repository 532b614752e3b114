package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"

	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// Request bytes in flight (issue 8: 24 concurrent 60 MiB publishes took
// the server from 13 MiB to 2.7 GB) are bounded twice: by a global budget
// (Options.MaxInflightBytes) and by one per connection
// (Options.MaxConnInflightBytes), so that one client cannot take it all.
//
//   - A request that states its length (Content-Length: Connect unary
//     calls, curl) reserves it from both budgets before a byte of it is
//     read, and holds it until its handler returns. A unary request longer
//     than the request limit is refused before it is read.
//   - A request that does not (gRPC, streams) has its body read through a
//     meter that reserves each chunk before reading it. A unary call holds
//     what it read until it returns; a stream holds what it read of one
//     message until it asks for the next one (by then the message is
//     decoded and handed over: the stream handlers bound how many they
//     keep, MaxStreamInFlight). The meter also cuts a body (or a stream's
//     message) off once it is longer than the request limit, so that a
//     refused request is not read to its end.
//
// Every byte counts twice (inflightWeight): Connect reads a message into a
// buffer that doubles as it grows, so a message of n bytes may hold 2n
// while it is read (and its decoded copy about n more). Measured (e2e,
// TestMemoryBoundedUnderFlood): eight 60 MiB Connect publishes without a
// stated length, cut off at a 16 MiB request limit, peaked at 380 MiB
// with bytes counted once, 270 MiB counted twice.
//
// A reservation that does not fit waits (Options.InflightWait, 1 s by
// default) and then fails with ResourceExhausted, reason INFLIGHT_LIMIT:
// retryable, the client backs off. A request larger than a whole budget
// reserves all of it (it then runs alone) rather than never fitting.

// Reasons carried in chute.v1.ErrorDetail by the refusals of this file
// and of quotas; the Go client retries QUOTA and INFLIGHT_LIMIT with
// back-off, not REQUEST_TOO_LARGE.
const (
	ReasonQuota           = "QUOTA"
	ReasonInflightLimit   = "INFLIGHT_LIMIT"
	ReasonRequestTooLarge = "REQUEST_TOO_LARGE"
)

// budget is a byte budget shared by requests.
type budget struct {
	sem  *semaphore.Weighted
	size int64
	used atomic.Int64 // for Stats
}

func newBudget(size int64) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size}
}

// acquire reserves n bytes (at most the budget's size), waiting while ctx
// lasts.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if b.tryAcquire(n) {
		return nil
	}
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	b.used.Add(n)
	return nil
}

// tryAcquire reserves n bytes if they are free now (and nobody waits).
func (b *budget) tryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.used.Add(n)
	return true
}

func (b *budget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
		b.sem.Release(n)
	}
}

// tryReserve takes g bytes of the server's budget and c of the
// connection's if both are free now, or nothing.
func (m *meter) tryReserve(g, c int64) bool {
	if m.conn != nil && !m.conn.tryAcquire(c) {
		return false
	}
	if !m.global.tryAcquire(g) {
		if m.conn != nil {
			m.conn.release(c)
		}
		return false
	}
	return true
}

// meter is one request's share of the budgets; as its body (when it
// replaces the request's body) it reserves bytes as they are read.
type meter struct {
	s      *Server
	ctx    context.Context // the request's
	body   io.ReadCloser   // the request's own
	global *budget
	conn   *budget // nil: not served by this server's http.Server
	limit  int64   // most bytes of one message (unary: of the body); 0: none

	mu         sync.Mutex
	heldGlobal int64 // guarded by mu
	heldConn   int64 // guarded by mu
	read       int64 // guarded by mu: bytes of the current message
	upfront    bool  // guarded by mu: the whole body was reserved at the start
	closed     bool  // guarded by mu: the request is over, everything released

	cutOff atomic.Bool // refused as too large (counted once)
}

type meterKey struct{}

func meterFrom(ctx context.Context) *meter {
	m, _ := ctx.Value(meterKey{}).(*meter)
	return m
}

// meterChunk is the most one Read reserves: the buffer Connect reads into
// may be far larger than what arrives.
const meterChunk = 64 << 10

// inflightWeight is what one request byte costs in the budgets (see the
// top of this file).
const inflightWeight = 2

// reserve takes n request bytes (n × inflightWeight) from both budgets,
// waiting at most InflightWait. What the request already holds counts: a
// request never holds more than a whole budget (past that it reads on
// without reserving), so that a message larger than a budget is read
// alone rather than never.
func (m *meter) reserve(n int64) (g, c int64, err error) {
	n *= inflightWeight
	m.mu.Lock()
	g = min(n, m.global.size-m.heldGlobal)
	if m.conn != nil {
		c = min(n, m.conn.size-m.heldConn)
	}
	m.mu.Unlock()
	if !m.tryReserve(g, c) { // (the timer only when it waits: a message's hot path)
		ctx, cancel := context.WithTimeout(m.ctx, m.s.opts.InflightWait)
		defer cancel()
		if m.conn != nil {
			if err := m.conn.acquire(ctx, c); err != nil {
				return 0, 0, m.refuse(n, "this connection's")
			}
		}
		if err := m.global.acquire(ctx, g); err != nil {
			if m.conn != nil {
				m.conn.release(c)
			}
			return 0, 0, m.refuse(n, "the server's")
		}
	}
	m.mu.Lock()
	if m.closed { // the request ended meanwhile
		m.mu.Unlock()
		m.global.release(g)
		if m.conn != nil {
			m.conn.release(c)
		}
		return 0, 0, errRequestOver
	}
	m.heldGlobal += g
	m.heldConn += c
	m.mu.Unlock()
	return g, c, nil
}

var errRequestOver = errors.New("request over")

func (m *meter) refuse(n int64, whose string) error {
	if m.ctx.Err() != nil {
		return m.ctx.Err()
	}
	m.s.stats.inflightRefusals.Add(1)
	return reasonError(connect.CodeResourceExhausted, ReasonInflightLimit,
		fmt.Errorf("server busy: %s request bytes in flight stayed at their limit for %v (%d bytes wanted); retry later",
			whose, m.s.opts.InflightWait, n/inflightWeight))
}

// Read reserves a chunk, reads into it, and gives back what was not used.
func (m *meter) Read(p []byte) (int, error) {
	m.mu.Lock()
	upfront, read := m.upfront, m.read
	m.mu.Unlock()
	if upfront {
		return m.body.Read(p)
	}
	if m.limit > 0 && read > m.limit {
		return 0, m.tooLarge()
	}
	k := int64(min(len(p), meterChunk))
	if k == 0 {
		return 0, nil
	}
	g, c, err := m.reserve(k)
	if err != nil {
		return 0, err
	}
	n, err := m.body.Read(p[:k])
	unused := (k - int64(n)) * inflightWeight
	m.mu.Lock()
	m.read += int64(n)
	if !m.closed { // else everything was released already
		m.giveBackLocked(min(unused, g), min(unused, c))
	}
	m.mu.Unlock()
	return n, err
}

func (m *meter) tooLarge() error {
	if m.cutOff.CompareAndSwap(false, true) {
		m.s.stats.tooLarge.Add(1)
	}
	return reasonError(connect.CodeResourceExhausted, ReasonRequestTooLarge,
		fmt.Errorf("request message larger than the server's limit of %d bytes", m.s.opts.MaxRequestBytes))
}

// giveBackLocked releases g of what is held of the global budget and c
// of the connection's.
func (m *meter) giveBackLocked(g, c int64) {
	g, c = min(g, m.heldGlobal), min(c, m.heldConn)
	m.heldGlobal -= g
	m.heldConn -= c
	m.global.release(g)
	if m.conn != nil {
		m.conn.release(c)
	}
}

func (m *meter) Close() error { return m.body.Close() }

// messageDone is called when a stream asks for its next message: what
// was read of the previous one is released, and the size limit starts
// over. A body reserved up front keeps its reservation.
func (m *meter) messageDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.upfront || m.closed {
		return
	}
	m.giveBackLocked(m.heldGlobal, m.heldConn)
	m.read = 0
}

// finish releases everything when the request is over.
func (m *meter) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.giveBackLocked(m.heldGlobal, m.heldConn)
	m.closed = true
}

// maxBody is the longest request body (unary) or stream message the
// server reads, on the wire: the request limit, plus room for the 5-byte
// envelope of gRPC and Connect streams and for compression that grows
// incompressible data a little.
func (s *Server) maxBody() int64 {
	n := int64(s.opts.MaxRequestBytes)
	return n + n/64 + 64<<10
}

// meterRequest checks r's length and reserves its bytes: up front when it
// states its length, else through a meter that replaces r.Body. The
// caller calls finish on the meter when the request is over.
func (s *Server) meterRequest(r *http.Request, streaming bool) (*meter, error) {
	m := &meter{s: s, ctx: r.Context(), body: r.Body, global: s.inflight}
	if ci := connFrom(r.Context()); ci != nil {
		m.conn = ci.budget
	}
	if r.ContentLength > s.maxBody() && !streaming {
		return nil, m.tooLarge()
	}
	if r.ContentLength >= 0 {
		if _, _, err := m.reserve(r.ContentLength); err != nil {
			return nil, err
		}
		m.upfront = true
		return m, nil
	}
	m.limit = s.maxBody()
	r.Body = m
	return m, nil
}

// reasonError is a Connect error carrying a chute.v1.ErrorDetail reason.
func reasonError(code connect.Code, reason string, err error) *connect.Error {
	ce := connect.NewError(code, err)
	if d, derr := connect.NewErrorDetail(&chutev1.ErrorDetail{Reason: reason}); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}

// inflightWaitDefault is how long a request waits for room in the
// budgets before it is refused.
const inflightWaitDefault = time.Second
