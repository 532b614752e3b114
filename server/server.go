// Package server serves a chute broker over the network: one port speaking
// gRPC, gRPC-Web and the Connect protocol (JSON or binary, HTTP/1.1 or
// HTTP/2) from the same handlers, plus /healthz.
//
// The handlers only translate: every call goes to a chute.API (the
// embedded broker), and every error goes through one table
// (internal/wire) that maps chute's errors to status codes.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
	"github.com/chutemq/chute/internal/wire"
)

// Options configure a Server. The zero value works.
type Options struct {
	// Token, if set, is the bearer token every API call must carry
	// ("Authorization: Bearer TOKEN"); /healthz needs none.
	Token string
	// Logger gets one line per connection event and per failed call (not
	// per message), all at debug level except server faults; default:
	// discarded.
	Logger *slog.Logger
	// MaxRequestBytes bounds one decoded request message; default 64 MiB.
	MaxRequestBytes int
	// MaxReceiveWait caps how long a unary Receive may wait; default 30 s.
	MaxReceiveWait time.Duration
	// MaxStreamInFlight bounds the publishes one PublishStream keeps in
	// progress at once (more wait: the stream is slowed, not failed), and
	// the settlements one Consume stream runs at once; default 1024.
	MaxStreamInFlight int
	// MaxConcurrentStreams bounds the calls in progress on one HTTP/2
	// connection; default 512.
	MaxConcurrentStreams uint32
	// ReadHeaderTimeout cuts off a client that does not send its request
	// headers in time (slow-loris); default 10 s. IdleTimeout closes idle
	// connections; default 5 minutes.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// Info is the build the server reports in GetServerInfo and /healthz;
	// default (zero): this binary's, from internal/version.
	Info Info
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 64 << 20
	}
	if o.MaxReceiveWait <= 0 {
		o.MaxReceiveWait = 30 * time.Second
	}
	if o.MaxStreamInFlight <= 0 {
		o.MaxStreamInFlight = 1024
	}
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = 512
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.Info == (Info{}) {
		o.Info = buildInfo()
	}
	return o
}

// Server serves one chute.API.
type Server struct {
	api     chute.API
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	started time.Time // when New ran, for GetServerInfo

	mu       sync.Mutex
	http     *http.Server // guarded by mu: set by Serve
	shutdown bool         // guarded by mu: Shutdown has begun

	// stop ends every stream on Shutdown; streams tracks them.
	stop    context.Context
	cancel  context.CancelFunc
	streams sync.WaitGroup
}

// New builds a server for api.
func New(api chute.API, opts Options) *Server {
	o := opts.withDefaults()
	s := &Server{api: api, opts: o, log: o.Logger, mux: http.NewServeMux(), started: time.Now()}
	s.stop, s.cancel = context.WithCancel(context.Background())
	handlerOpts := append([]connect.HandlerOption{
		connect.WithInterceptors(s.authInterceptor(), s.logInterceptor()),
		connect.WithReadMaxBytes(o.MaxRequestBytes),
		connect.WithRecover(s.recoverPanic),
	}, wire.HandlerCompression()...)
	handlerOpts = append(handlerOpts, jsonCodecs()...)
	s.mux.Handle(chutev1connect.NewMessageServiceHandler(&messageService{s: s}, handlerOpts...))
	s.mux.Handle(chutev1connect.NewAdminServiceHandler(&adminService{s: s}, handlerOpts...))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	return s
}

// Handler is the server's HTTP handler (API and /healthz), for mounting
// elsewhere or adding routes (metrics, dashboard) in front of it.
func (s *Server) Handler() http.Handler { return s.mux }

// Mux is the server's ServeMux, for adding routes.
func (s *Server) Mux() *http.ServeMux { return s.mux }

func (s *Server) httpServer(tlsConfig *tls.Config) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if tlsConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true) // h2c: gRPC without TLS
	}
	return &http.Server{
		Handler:           s.mux,
		Protocols:         &protocols,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(s.opts.MaxConcurrentStreams),
			MaxReadFrameSize:     1 << 20,
		},
		ConnState: s.connState,
		ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.log.Debug("connection opened", "remote", c.RemoteAddr().String())
	case http.StateClosed, http.StateHijacked:
		s.log.Debug("connection closed", "remote", c.RemoteAddr().String())
	}
}

// Serve accepts connections on ln (plaintext HTTP/1.1 and HTTP/2) until
// Shutdown; it then returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	h, err := s.start(nil)
	if err != nil {
		ln.Close()
		return err
	}
	return h.Serve(ln)
}

// start creates the HTTP server, unless Shutdown came first.
func (s *Server) start(tlsConfig *tls.Config) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown || s.http != nil {
		return nil, http.ErrServerClosed
	}
	s.http = s.httpServer(tlsConfig)
	return s.http, nil
}

// ServeTLS is Serve with TLS (HTTP/1.1 and HTTP/2 negotiated by ALPN).
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	h, err := s.start(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		ln.Close()
		return err
	}
	return h.ServeTLS(ln, "", "")
}

// Shutdown stops accepting connections, ends every stream (a consumer's
// unsettled leases go back to their queue at once; a publisher's
// in-flight publishes are confirmed first), waits for calls in progress,
// and returns. It does not close the broker. If ctx ends first it returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	s.shutdown = true
	h := s.http
	s.mu.Unlock()
	var err error
	if h != nil {
		err = h.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { s.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) recoverPanic(_ context.Context, spec connect.Spec, _ http.Header, p any) error {
	s.log.Error("panic in handler", "procedure", spec.Procedure, "panic", p)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
