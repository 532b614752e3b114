package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The kinds of peer Start knows.
const (
	NATS     = "nats"
	Redis    = "redis"
	RabbitMQ = "rabbitmq"
	// NATSR3 is three clustered nats-server processes (JetStream, routes
	// on loopback): the adapter's streams have 3 replicas. Not in Kinds:
	// issue 12's comparison with a 3-node chute cluster asks for it.
	NATSR3 = "nats-r3"
)

// Kinds are the kinds of peer, in the order the comparison lists them.
var Kinds = []string{NATS, Redis, RabbitMQ}

// ErrUnknownKind is returned by Start for a kind other than NATS, Redis or
// RabbitMQ.
var ErrUnknownKind = errors.New("unknown peer kind")

// ErrNotReady is returned by Start when the server did not accept
// connections in time, or exited first; the error carries the tail of its
// log.
var ErrNotReady = errors.New("peer did not start")

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 10 * time.Second

// Peer is a running server started by Start. Its fields are set once by
// Start and only read afterwards.
type Peer struct {
	// Kind is NATS, Redis or RabbitMQ.
	Kind string
	// Addr is the client port's address, 127.0.0.1:port.
	Addr string
	// URL is what the system's usual client dials: nats://…, redis://…,
	// amqp://guest:guest@….
	URL string
	// PID is the server process's id (the Erlang VM for RabbitMQ), for
	// memory figures from /proc/PID.
	PID int
	// Dir holds the server's data, configuration and log (server.log).
	Dir string
	// DataDir is the part of Dir where the server stores messages, for disk
	// usage figures.
	DataDir string
	// Durability says in a few words whether the server fsyncs a message
	// before confirming it, with these settings.
	Durability string

	// procs are the processes Start started, in start order (for RabbitMQ,
	// epmd first, then the node); Stop ends them in reverse.
	procs []*proc

	stopOnce sync.Once
	stopErr  error // set once by stopOnce
}

// proc is one child process and the goroutine that waits for it. The
// goroutine is owned by the Peer: Stop always waits for done.
type proc struct {
	cmd  *exec.Cmd
	log  *os.File      // the child's stdout and stderr; closed after exit
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, set before done is closed
}

// Start installs (if missing) and starts a server of kind ("nats", "redis"
// or "rabbitmq") with its data under dir, bound to 127.0.0.1 only on free
// ports, and waits until its client port accepts connections (60 s at
// most; RabbitMQ takes seconds to boot). The caller must call Stop.
func Start(ctx context.Context, kind, dir string) (*Peer, error) {
	k, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("start %q: %w", kind, ErrUnknownKind)
	}
	bin, err := ensureInstalled(ctx, k.binary, k.pkg)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	ports, err := freePorts(k.ports)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	p := &Peer{Kind: kind, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Dir: dir}
	cmds, err := k.commands(bin, p, ports)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", kind, err)
	}
	for _, c := range cmds {
		pr, err := startProc(c, filepath.Join(dir, c.name+".log"))
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("start %s: %w", kind, err)
		}
		p.procs = append(p.procs, pr)
	}
	main := p.procs[len(p.procs)-1]
	p.PID = main.cmd.Process.Pid
	if err := waitAccepting(ctx, p.Addr, main, 60*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("start %s: %w; log %s: %s", kind, err, main.log.Name(), tail(main.log.Name()))
	}
	if kind == "rabbitmq" {
		// rabbitmq-server is a shell script that starts the Erlang VM as its
		// child: the VM's pid, which the node writes to its pid file, is
		// the one whose memory counts.
		pid, err := readPIDFile(filepath.Join(dir, "rabbitmq.pid"))
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("start %s: the Erlang VM's pid: %w", kind, err)
		}
		p.PID = pid
	}
	return p, nil
}

// command is one process a kind runs.
type command struct {
	name string   // log file name, without .log
	path string   // executable
	args []string // arguments, without the program name
	env  []string // added to (and overriding) the environment
}

// startProc starts c in its own process group (so that Stop can signal it
// and every child that stays in the group), with its output in logPath.
func startProc(c command, logPath string) (*proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.path, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("run %s: %w", c.path, err)
	}
	pr := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		log.Close()
		close(pr.done)
	}()
	return pr, nil
}

// exited reports whether the process has exited.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// stop ends the process's group gracefully, then forcibly after grace, and
// waits for the process to exit. Descendants that left the group are
// killed afterwards by Stop.
func (pr *proc) stop(grace time.Duration) {
	pgid := pr.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if !pr.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-pr.done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-pr.done
	}
}

// Stop ends the server and everything it started: each process Start ran,
// in reverse order, by process group (SIGTERM, then SIGKILL after 10 s),
// then by PID any descendant that had left its group. It waits until all
// have exited. Stop is idempotent and safe on a partly started Peer.
func (p *Peer) Stop() error {
	p.stopOnce.Do(func() {
		var tree []procID
		for _, pr := range p.procs {
			tree = append(tree, descendants(pr.cmd.Process.Pid)...)
		}
		for i := len(p.procs) - 1; i >= 0; i-- {
			p.procs[i].stop(stopGrace)
		}
		p.stopErr = killAll(tree, stopGrace)
	})
	return p.stopErr
}

// Processes returns the server's processes and their descendants running
// now (the test checks that none survives Stop).
func (p *Peer) Processes() []int {
	var pids []int
	for _, pr := range p.procs {
		if pr.exited() {
			continue
		}
		pids = append(pids, pr.cmd.Process.Pid)
		for _, d := range descendants(pr.cmd.Process.Pid) {
			pids = append(pids, d.pid)
		}
	}
	return pids
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment
// ago. Another process may take one before the server binds it; Start then
// fails with the server's own error in the log.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitAccepting dials addr until it accepts, pr exits, ctx ends or limit
// passes, polling every 50 ms.
func waitAccepting(ctx context.Context, addr string, pr *proc, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-pr.done:
			return fmt.Errorf("%w: exited (%v) before accepting on %s", ErrNotReady, pr.err, addr)
		case <-ctx.Done():
			return fmt.Errorf("%w: not accepting on %s after %v: %w", ErrNotReady, addr, limit, ctx.Err())
		case <-tick.C:
		}
	}
}

// tail returns the last 2 KiB of the file at path, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// readPIDFile reads a process id written to a file, as a server writes it.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a process id: %q", path, b)
	}
	return pid, nil
}
