package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
)

// clientFlags are the persistent flags of every command that talks to a
// server: where it is and how to reach it (TLS), the token, and --json
// output.
type clientFlags struct {
	server      string
	token       string
	json        bool
	tlsCA       string
	tlsInsecure bool

	// target is what dial resolved, for explaining a failed call.
	target serverAddr
}

// serverAddr is a --server value taken apart.
type serverAddr struct {
	hostport string // host:port (host only for a URL without a port)
	scheme   string // "http", "https", or "" when the address had none
	https    bool   // what dial uses: the scheme, or TLS implied by a flag
}

func (f *clientFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "", "server address: host:port, http://host:port or https://host:port; a cluster's nodes separated by commas (default $CHUTE_SERVER or "+client.DefaultAddr+")")
	pf.StringVar(&f.token, "token", "", "bearer token (default $CHUTE_TOKEN)")
	pf.BoolVar(&f.json, "json", false, "print JSON (for scripts) instead of tables; the shapes are in docs/cli.md")
	pf.StringVar(&f.tlsCA, "tls-ca", "", "PEM file of the CA that signed the server's certificate; implies https (default $CHUTE_TLS_CA)")
	pf.BoolVar(&f.tlsInsecure, "tls-insecure-skip-verify", false, "use TLS without checking the server's certificate (UNSAFE: for tests only); implies https")
}

// dial connects to the server named by the flags or the environment. A
// warning about --tls-insecure-skip-verify goes to warn.
//
// --server may name the nodes of a cluster, separated by commas: the
// client dials the first and tries the others when it cannot connect
// (client.WithEndpoints); leader hints it follows anyway.
func (f *clientFlags) dial(warn io.Writer) (*client.Client, error) {
	addr, token := f.serverAndToken()
	addrs := strings.Split(addr, ",")
	target, opts, err := f.tlsOptions(strings.TrimSpace(addrs[0]))
	if err != nil {
		return nil, usageError{err}
	}
	f.target = target
	if f.tlsInsecure {
		fmt.Fprintln(warn, "chute: warning: --tls-insecure-skip-verify: the server's certificate is not checked, so anyone on the path can read and change this traffic")
	}
	var others []string
	for _, a := range addrs[1:] {
		t, _, err := f.tlsOptions(strings.TrimSpace(a))
		if err != nil {
			return nil, usageError{err}
		}
		others = append(others, t.base())
	}
	if len(others) > 0 {
		opts = append(opts, client.WithEndpoints(others...))
	}
	c, err := client.Dial(target.base(), append(opts, client.WithToken(token))...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// base is the URL the client dials.
func (t serverAddr) base() string {
	if t.https {
		return "https://" + t.hostport
	}
	return "http://" + t.hostport
}

// serverAndToken are --server and --token, or their environment
// variables, or the default address and no token.
func (f *clientFlags) serverAndToken() (addr, token string) {
	addr, token = f.server, f.token
	if addr == "" {
		addr = os.Getenv("CHUTE_SERVER")
	}
	if addr == "" {
		addr = client.DefaultAddr
	}
	if token == "" {
		token = os.Getenv("CHUTE_TOKEN")
	}
	return addr, token
}

// tlsOptions takes --server apart and returns the client options for TLS.
//
//	host:port           plain HTTP/2, or TLS when --tls-ca, $CHUTE_TLS_CA
//	                    or --tls-insecure-skip-verify is given
//	http://host:port    plain HTTP/2 ($CHUTE_TLS_CA is ignored; the flags
//	                    are a usage error)
//	https://host:port   TLS, checked against the system's CAs or --tls-ca
func (f *clientFlags) tlsOptions(addr string) (serverAddr, []client.Option, error) {
	target, err := parseServerAddr(addr)
	if err != nil {
		return target, nil, err
	}
	ca := f.tlsCA
	if target.scheme == "http" {
		if f.tlsCA != "" || f.tlsInsecure {
			return target, nil, fmt.Errorf("--server %s is plain HTTP, but --tls-ca or --tls-insecure-skip-verify asks for TLS: use https://%s", addr, target.hostport)
		}
		return target, nil, nil
	}
	if ca == "" {
		ca = os.Getenv("CHUTE_TLS_CA")
	}
	target.https = target.scheme == "https" || ca != "" || f.tlsInsecure
	if !target.https {
		return target, nil, nil
	}
	opts := []client.Option{client.WithTLS(&tls.Config{})} // HTTP/2 over TLS with the system's CAs
	if ca != "" {
		pool, err := loadCA(ca)
		if err != nil {
			return target, nil, err
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	if f.tlsInsecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	return target, opts, nil
}

// parseServerAddr accepts host:port, http://host:port and https://host:port.
func parseServerAddr(addr string) (serverAddr, error) {
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return serverAddr{}, fmt.Errorf("--server %q: want host:port, http://host:port or https://host:port", addr)
		}
		return serverAddr{hostport: addr}, nil
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return serverAddr{}, fmt.Errorf("--server %q: want host:port, http://host:port or https://host:port", addr)
	}
	return serverAddr{hostport: u.Host, scheme: u.Scheme, https: u.Scheme == "https"}, nil
}

// loadCA reads a PEM file of CA certificates.
func loadCA(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// explain adds what to do to a call that failed because the client and
// the server disagree about TLS. A mismatch of schemes is a usage error
// (exit 2): retrying the same command line cannot help.
func (f *clientFlags) explain(err error) error {
	// A TLS listener's reset reaches the client as Unavailable, or —
	// when connect sees its call's context cancelled by the failed read
	// first — as Canceled with the reset inside (seen once in CI); a
	// Canceled of the user's own (an interrupt) has no reset in it.
	code := connect.CodeOf(err)
	if err == nil || code != connect.CodeUnavailable && !(code == connect.CodeCanceled && looksLikeTLS(err)) {
		return err
	}
	t := f.target
	msg := err.Error()
	switch {
	case !t.https && looksLikeTLS(err) && speaksTLS(t.hostport):
		or := " or --tls-ca FILE"
		if t.scheme == "http" {
			or = ""
		}
		return usageError{fmt.Errorf("the server speaks TLS: use https://%s%s (plain HTTP/2 got: %w)", t.hostport, or, err)}
	case t.https && strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return usageError{fmt.Errorf("the server does not speak TLS: use http://%s without --tls-ca (%w)", t.hostport, err)}
	case t.https && strings.Contains(msg, "x509:"):
		return fmt.Errorf("the server's certificate is not trusted: give its CA with --tls-ca FILE or $CHUTE_TLS_CA (%w)", err)
	}
	return err
}

// looksLikeTLS reports whether a plain HTTP/2 call failed the way it does
// against a TLS listener: the server drops the connection (a TLS alert,
// then EOF or a reset) instead of answering the HTTP/2 preface.
func looksLikeTLS(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"unexpected EOF", "connection reset", "malformed HTTP", "http2: "} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// speaksTLS confirms a guess of looksLikeTLS with a TLS handshake. It
// checks no certificate: it only asks whether the other side speaks TLS,
// and sends nothing after the handshake.
func speaksTLS(hostport string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // a probe: nothing is sent
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortReceiveError: sub --count got fewer messages than it asked for
// before --wait passed without one (exit status 9).
type shortReceiveError struct {
	queue     string
	got, want int
	wait      time.Duration
}

func (e *shortReceiveError) Error() string {
	return fmt.Sprintf("received %d of %d message(s) from %s: none arrived for --wait %s", e.got, e.want, e.queue, fmtDuration(e.wait))
}

// Exit statuses of client commands, for scripts (see exitCode; README.md
// and docs/cli.md list them too):
//
//	0 success · 1 failure · 2 bad usage (also: --server and the server
//	disagree about TLS) · 3 journal damaged
//	4 not found (queue, topic, subscription, message) · 5 refused (queue full,
//	invalid message, config or receipt, name in use, stale receipt, an
//	operation that does not fit the queue: redrive of a queue that is no
//	dead-letter queue, delete of a dead-letter queue in use, the server's
//	disk full, a producer session out of order, a cancel of an in-flight
//	message)
//	6 server unreachable or unavailable · 7 not authorised · 8 timed out
//	9 sub --count: fewer messages than asked arrived before --wait passed
func clientExitCode(err error) (int, bool) {
	var short *shortReceiveError
	switch {
	case errors.As(err, &short):
		return 9, true
	case errors.Is(err, chute.ErrJournalCorrupt):
		return 3, true
	case errors.Is(err, chute.ErrQueueNotFound), errors.Is(err, chute.ErrTopicNotFound),
		errors.Is(err, chute.ErrNotFound), errors.Is(err, chute.ErrNotSubscription),
		errors.Is(err, chute.ErrScheduleNotFound), errors.Is(err, chute.ErrMessageNotFound):
		return 4, true
	case errors.Is(err, chute.ErrQueueFull), errors.Is(err, chute.ErrInvalidMessage),
		errors.Is(err, chute.ErrInvalidConfig), errors.Is(err, chute.ErrInvalidName),
		errors.Is(err, chute.ErrExists), errors.Is(err, chute.ErrStaleReceipt),
		errors.Is(err, chute.ErrInvalidReceipt),
		errors.Is(err, chute.ErrMessageTooLarge), errors.Is(err, chute.ErrBatchTooLarge),
		errors.Is(err, chute.ErrDiskFull), errors.Is(err, chute.ErrOutOfOrder),
		errors.Is(err, chute.ErrMessageLeased):
		return 5, true
	case errors.Is(err, context.DeadlineExceeded):
		return 8, true
	}
	switch connect.CodeOf(err) {
	case connect.CodeUnavailable:
		return 6, true
	case connect.CodeUnauthenticated, connect.CodePermissionDenied:
		return 7, true
	case connect.CodeDeadlineExceeded:
		return 8, true
	}
	return 0, false
}

// addClientCommands registers the commands that talk to a server.
func addClientCommands(root *cobra.Command) {
	var f clientFlags
	cmds := clientCommands(&f)
	for _, c := range cmds {
		f.register(c)
		root.AddCommand(c)
	}
}

// clientCommands returns the commands that talk to a server (pub, sub,
// ack, nack, extend, queue, topic, subscription, dlq), each defined in its
// own file.
func clientCommands(f *clientFlags) []*cobra.Command {
	return []*cobra.Command{newPubCmd(f), newSubCmd(f), newAckCmd(f), newNackCmd(f), newExtendCmd(f),
		newQueueCmd(f), newTopicCmd(f), newSubscriptionCmd(f), newDLQCmd(f), newAlertsCmd(f), newTopCmd(f),
		newScheduleCmd(f),
		newMsgCmd(f)} // msg.go
}
