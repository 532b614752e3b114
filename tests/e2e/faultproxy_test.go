package e2e

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// faultProxy forwards TCP connections from its own port on 127.0.0.1 to
// a target, and can hold or delay what they carry: a link between two
// cluster nodes that a nemesis cuts or slows. A cut link stops moving
// bytes (both ways, new connections too) without closing anything, as a
// network that drops packets does: senders' writes back up until they
// time out, and when the link heals what was held flows on.
type faultProxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	delay  time.Duration
	healed chan struct{} // closed when a cut ends
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l, target: target, healed: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.healed)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.l.Addr().String() }

// setCut cuts the link or heals it.
func (p *faultProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cut == p.cut {
		return
	}
	p.cut = cut
	if cut {
		p.healed = make(chan struct{})
	} else {
		close(p.healed)
	}
}

// setDelay delays every chunk by d (0: none).
func (p *faultProxy) setDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// wait blocks while the link is cut and returns the delay to apply;
// false once the proxy is closed.
func (p *faultProxy) wait() (time.Duration, bool) {
	for {
		p.mu.Lock()
		healed, delay, closed := p.healed, p.delay, p.closed
		p.mu.Unlock()
		if closed {
			return 0, false
		}
		select {
		case <-healed:
			return delay, true
		case <-time.After(10 * time.Millisecond): // to notice close
		}
	}
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if _, ok := p.wait(); !ok {
				c.Close()
				return
			}
			d, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			if !p.track(c, d) {
				return
			}
			var pipes sync.WaitGroup
			pipes.Add(2)
			go func() { defer pipes.Done(); p.pipe(d, c) }()
			go func() { defer pipes.Done(); p.pipe(c, d) }()
			pipes.Wait()
			p.untrack(c, d)
		}()
	}
}

func (p *faultProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *faultProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

// pipe copies src to dst chunk by chunk, each after the link allows it;
// the end of either closes both.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			delay, ok := p.wait()
			if !ok {
				return
			}
			if delay > 0 {
				time.Sleep(delay) // the link's latency
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or a closed connection: the other side ends too
			return
		}
	}
}

func (p *faultProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
	p.wg.Wait()
}

// TestFaultProxy: bytes pass, wait while cut, flow on when healed.
func TestFaultProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // an echo server
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := newFaultProxy(t, l.Addr().String())
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(s string) (string, error) {
		if _, err := c.Write([]byte(s)); err != nil {
			return "", err
		}
		buf := make([]byte, len(s))
		_, err := io.ReadFull(c, buf)
		return string(buf), err
	}
	if got, err := echo("one"); err != nil || got != "one" {
		t.Fatalf("through the proxy: %q %v", got, err)
	}
	p.setCut(true)
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if got, err := echo("two"); err == nil {
		t.Fatalf("a cut link echoed %q", got)
	}
	p.setCut(false)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "two" {
		t.Fatalf("after the cut healed: %q %v (what was held flows on)", buf, err)
	}
}
