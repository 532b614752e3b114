// Package server serves a chute broker over the network: one port speaking
// gRPC, gRPC-Web and the Connect protocol (JSON or binary, HTTP/1.1 or
// HTTP/2) from the same handlers, plus /healthz.
//
// The handlers only translate: every call goes to a chute.API (the
// embedded broker), and every error goes through one table
// (internal/wire) that maps chute's errors to status codes. In front of
// them a guard (guard.go) settles, before a byte of a call's body is
// read, who is calling (auth.go), whether their role allows the call (the
// table in roles.go), and whether the request fits the size limit and
// the in-flight byte budgets (limits.go); interceptors then apply publish
// quotas (quota.go) and write the audit log of admin actions (audit.go).
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
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
	"github.com/chutemq/chute/internal/wire"
)

// Options configure a Server. The zero value works.
type Options struct {
	// Token, if set, is a bearer token with the admin role ("Authorization:
	// Bearer TOKEN"), named "token" in logs; /healthz needs none. With
	// neither Token nor Tokens every call is allowed.
	Token string
	// Tokens are further tokens, each with a name, a role and optional
	// publish quotas (see Token). Check them with ValidateTokens: an
	// invalid one matches nothing.
	Tokens []Token
	// AuthTimeout closes a connection on which no call has authenticated
	// within it (only when the server has tokens); default 10 s.
	AuthTimeout time.Duration
	// Logger gets one line per connection event and per failed call (not
	// per message), all at debug level except server faults and failed
	// authentications (warn, at most one line per second per client
	// address); default: discarded.
	Logger *slog.Logger
	// AuditLogger gets one line per admin action (message "audit"; see
	// audit.go); default: Logger.
	AuditLogger *slog.Logger
	// MaxRequestBytes bounds one decoded request message; default 64 MiB.
	// A unary request whose stated length is beyond it is refused before
	// it is read.
	MaxRequestBytes int
	// MaxInflightBytes bounds the request bytes the server holds at once,
	// all calls together, each byte counted twice for the buffer it is
	// read into (limits.go); default 128 MiB (chute serve: twice the
	// broker's memory budget, at least 64 MiB). MaxConnInflightBytes
	// bounds those of one connection; default a quarter of
	// MaxInflightBytes. A request that does not fit waits up to
	// InflightWait (default 1 s), then is refused with ResourceExhausted
	// (retryable).
	MaxInflightBytes     int64
	MaxConnInflightBytes int64
	InflightWait         time.Duration
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
	// Clock is the time source of quotas, of the consumer and producer
	// counts (activity.go) and of alert evaluation; default the system
	// clock.
	Clock chute.Clock
	// Alerts, if set, makes the server evaluate alert rules over the
	// broker's statistics every second, from Serve until Shutdown
	// (alerts.go); nil: no alerts (chute serve --alerts-off).
	Alerts *AlertOptions
	// Metrics, if set, makes the handler served at GET /metrics (the
	// metrics package's Handler): it is given the server, whose Stats it
	// may read on each scrape. /metrics needs a token of any role, or none
	// when the server has no tokens.
	Metrics func(*Server) http.Handler
	// Reflection serves gRPC server reflection (v1 and v1alpha) so that
	// grpcurl and similar tools work without the .proto files; it needs a
	// token with the read role, like the API's read calls (health.go).
	Reflection bool
	// Tracing puts OpenTelemetry's interceptor (otelconnect) in front of
	// the API handlers: a span per call, with the global TracerProvider
	// and propagator as they are when New runs (see TracingFromEnv, which
	// installs them); false: no interceptor at all.
	Tracing bool
	// Dashboard, if set, serves the web dashboard at / (dashboard.go,
	// docs/dashboard.md): the page, cookie sessions made from the tokens,
	// and a live feed sampled by a goroutine from Serve until Shutdown;
	// nil: no dashboard (chute serve --dashboard=false).
	Dashboard *DashboardOptions
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AuditLogger == nil {
		o.AuditLogger = o.Logger
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 10 * time.Second
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 64 << 20
	}
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = 128 << 20
	}
	if o.MaxConnInflightBytes <= 0 {
		o.MaxConnInflightBytes = max(o.MaxInflightBytes/4, 1)
	}
	if o.InflightWait <= 0 {
		o.InflightWait = inflightWaitDefault
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
	if o.Clock == nil {
		o.Clock = chute.SystemClock()
	}
	return o
}

// Server serves one chute.API.
type Server struct {
	api     chute.API
	opts    Options
	log     *slog.Logger
	audit   *slog.Logger
	mux     *http.ServeMux
	started time.Time // when New ran, for GetServerInfo

	keys      *keyring             // the tokens; empty: no authentication
	failLog   *failLog             // rate-limits the log of failed authentications
	errWriter *connect.ErrorWriter // the guard's refusals, in each call's protocol
	inflight  *budget              // request bytes in flight, all connections
	conns     sync.Map             // net.Conn → *connInfo, while open (only with tokens)
	stats     stats
	activity  *activity    // consumers and producers per queue (activity.go)
	alerter   *alerter     // nil: alerts off (alerts.go)
	dash      *dashboard   // nil: dashboard off (dashboard.go)
	reqs      requests     // calls by procedure and code (metrics.go)
	open      atomic.Int64 // connections open now
	accepted  atomic.Uint64

	mu       sync.Mutex
	http     *http.Server // guarded by mu: set by Serve
	shutdown bool         // guarded by mu: Shutdown has begun

	// stop ends every stream on Shutdown; streams tracks them.
	stop    context.Context
	cancel  context.CancelFunc
	streams sync.WaitGroup
	// loops tracks the server's own goroutines (the alert loop, the
	// dashboard's hub): started by start through goFunc, stopped by stop,
	// waited for by Shutdown.
	loops sync.WaitGroup
}

// goFunc runs f on a goroutine that Shutdown waits for.
func (s *Server) goFunc(f func()) {
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		f()
	}()
}

// New builds a server for api.
func New(api chute.API, opts Options) *Server {
	o := opts.withDefaults()
	s := &Server{api: api, opts: o, log: o.Logger, audit: o.AuditLogger, mux: http.NewServeMux(), started: time.Now(),
		failLog: newFailLog(time.Second, 4096), inflight: newBudget(o.MaxInflightBytes)}
	tokens := o.Tokens
	if o.Token != "" {
		tokens = append([]Token{{Name: "token", Secret: o.Token, Role: RoleAdmin}}, tokens...)
	}
	s.keys = newKeyring(tokens, s.now)
	s.activity = newActivity(s.now)
	if o.Alerts != nil {
		s.alerter = s.newAlerter(o.Alerts)
	}
	s.stop, s.cancel = context.WithCancel(context.Background())
	handlerOpts := append([]connect.HandlerOption{
		connect.WithInterceptors(s.tracingInterceptors()...), // outermost: the span covers the call (tracing.go)
		connect.WithInterceptors(s.statsInterceptor(), s.auditInterceptor(), s.limitsInterceptor(), s.logInterceptor()),
		connect.WithReadMaxBytes(o.MaxRequestBytes),
		connect.WithRecover(s.recoverPanic),
	}, wire.HandlerCompression()...)
	handlerOpts = append(handlerOpts, jsonCodecs()...)
	s.errWriter = connect.NewErrorWriter(handlerOpts...)
	// Every API route goes through the guard (guard.go): authentication,
	// role, size and in-flight budget are settled before Connect reads
	// the request body.
	s.mux.Handle(s.guarded(chutev1connect.NewMessageServiceHandler(&messageService{s: s}, handlerOpts...)))
	s.mux.Handle(s.guarded(chutev1connect.NewAdminServiceHandler(&adminService{s: s}, handlerOpts...)))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	// health.go: /livez, /readyz, grpc.health.v1, reflection; counted, but
	// neither audited nor under quotas.
	s.handleHealth(append([]connect.HandlerOption{connect.WithInterceptors(s.statsInterceptor()),
		connect.WithRecover(s.recoverPanic)}, wire.HandlerCompression()...))
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", s.metricsHandler(o.Metrics(s)))
	}
	if o.Dashboard != nil {
		s.newDashboard(*o.Dashboard)
	}
	return s
}

func (s *Server) guarded(path string, h http.Handler) (string, http.Handler) { return path, s.guard(h) }

func (s *Server) now() time.Time { return s.opts.Clock.Now() }

// Handler is the server's HTTP handler (API and /healthz), for mounting
// elsewhere or adding routes (metrics, dashboard) in front of it.
func (s *Server) Handler() http.Handler { return s.mux }

// Handle serves h at pattern on the server's port, outside the API's
// authentication and limits (h does its own): a cluster node's Raft
// endpoint. A request's context ends when Shutdown starts, so that a
// handler that streams can end (Shutdown waits for it). Call it before
// serving.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.stop, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
}

// Authenticated tells the server that a request to a handler added with
// Handle authenticated its caller, so that AuthTimeout does not close its
// connection (a cluster peer's stream of Raft messages lasts).
func Authenticated(r *http.Request) {
	if ci := connFrom(r.Context()); ci != nil {
		ci.authenticated()
	}
}

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
		ConnContext: s.connContext,
		ConnState:   s.connState,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.open.Add(1)
		s.accepted.Add(1)
		s.log.Debug("connection opened", "remote", c.RemoteAddr().String())
	case http.StateClosed, http.StateHijacked:
		s.open.Add(-1)
		s.connClosed(c)
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
	if s.alerter != nil {
		s.goFunc(s.alertLoop)
	}
	if s.dash != nil {
		s.dash.hub.running.Store(true)
		s.goFunc(s.dash.hub.loop)
	}
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
// in-flight publishes are confirmed first), the dashboard's feeds and the
// alert and dashboard loops, waits for calls in progress, and returns. It
// does not close the broker. If ctx ends first it returns ctx's error.
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
	s.conns.Range(func(c, _ any) bool {
		s.connClosed(c.(net.Conn))
		return true
	})
	done := make(chan struct{})
	go func() { s.streams.Wait(); s.loops.Wait(); close(done) }()
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
