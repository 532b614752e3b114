// Package serveproc starts a `chute serve` process on a free port of
// 127.0.0.1 and stops it: the one launcher of the benchmarks that measure
// chute as users run it (cmd/chute's bench network, backlog --server and
// run --serve; the comparison's chute adapter in the bench module).
package serveproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ServingMsg is the message of serve's log line that says it is ready; its
// "addr" attribute is the URL it serves on.
const ServingMsg = "chute serving"

// startTimeout bounds how long serve may take to say where it listens, and
// stopTimeout how long it may take to stop before it is killed.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

// Proc is a running `chute serve`.
type Proc struct {
	// Addr is the host:port it serves on.
	Addr string

	cmd  *exec.Cmd
	logs sync.WaitGroup // the goroutine reading its log
	once sync.Once
	err  error // Stop's outcome
}

// Start runs `bin serve --listen 127.0.0.1:0 --log-format json` with args
// added and env as its environment (nil: this process's), and returns
// once serve's ServingMsg line says where it listens. Its other log lines
// from warn up go to this process's stderr, after prefix.
func Start(ctx context.Context, bin string, env []string, prefix string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	p := &Proc{cmd: cmd}
	addrs := make(chan string, 1)
	p.logs.Add(1)
	go func() {
		defer p.logs.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if addr, ok := ServingAddr(sc.Bytes()); ok {
				select {
				case addrs <- addr:
				default:
				}
			} else if !QuietLogLine(sc.Bytes()) {
				fmt.Fprintln(os.Stderr, prefix+sc.Text())
			}
		}
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case p.Addr = <-addrs:
		return p, nil
	case <-t.C:
		return nil, errors.Join(fmt.Errorf("chute serve did not start within %v", startTimeout), p.Stop())
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), p.Stop())
	}
}

// PID is the server's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stop interrupts the server and waits for it to exit, killing it after
// stopTimeout; it reports a server that did not stop cleanly. It is safe
// to call more than once.
func (p *Proc) Stop() error {
	p.once.Do(func() {
		proc := p.cmd.Process
		_ = proc.Signal(os.Interrupt)
		exited := make(chan error, 1)
		go func() {
			// Wait closes the log pipe: it must follow the last read,
			// which comes when the process exits and the pipe ends.
			p.logs.Wait()
			exited <- p.cmd.Wait()
		}()
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				p.err = err
			} else if err != nil && !ee.Exited() {
				// Ended by the signal without handling it: not a clean stop.
				p.err = fmt.Errorf("chute serve (pid %d): %w", proc.Pid, err)
			}
		case <-t.C:
			_ = proc.Kill()
			<-exited
			p.err = fmt.Errorf("chute serve (pid %d) did not stop within %v: killed", proc.Pid, stopTimeout)
		}
	})
	return p.err
}

// ServingAddr reads one line of serve's --log-format json output and, if
// it is the ServingMsg line, returns the host:port it serves on.
func ServingAddr(line []byte) (string, bool) {
	var l struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &l) != nil || l.Msg != ServingMsg {
		return "", false
	}
	u, err := url.Parse(l.Addr)
	if err != nil || u.Host == "" {
		return "", false
	}
	return u.Host, true
}

// QuietLogLine reports a line of serve's --log-format json output below
// warn level, which a launcher need not pass on.
func QuietLogLine(line []byte) bool {
	var l struct {
		Level slog.Level `json:"level"`
	}
	return json.Unmarshal(line, &l) == nil && l.Level < slog.LevelWarn
}
