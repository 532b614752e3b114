package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/replica"
	"github.com/chutemq/chute/internal/serveproc"
	"github.com/chutemq/chute/internal/sysmon"
	"github.com/chutemq/chute/internal/version"
	"github.com/chutemq/chute/metrics"
	"github.com/chutemq/chute/server"
)

type serveFlags struct {
	config         string
	printConfig    bool
	listen         string
	data           string
	token          string
	tokensFile     string
	auditLog       string
	insecure       bool
	tlsCert        string
	tlsKey         string
	sync           string
	syncInterval   time.Duration
	syncDelay      time.Duration
	segmentSize    int64
	compactEvery   uint64
	compactBytes   int64
	clusterRestore string
	clusterRebuild bool
	clusterShards  uint32
	// clusterMaxVersion: hidden, for tests of rolling upgrades.
	clusterMaxVersion uint8
	memBudget         int64
	maxMessage        int64
	maxBatch          int
	maxRequest        int64
	maxInflight       int64 // 0: auto, 2 × memory budget, at least 64 MiB
	maxConnIn         int64 // 0: auto, a quarter of maxInflight
	logFormat         string
	logLevel          string
	shutdownWait      time.Duration
	cpuProfile        string
	monitorSlack      time.Duration
	pprofAddr         string
	salvage           bool
	minFreeDisk       int64 // 0: auto; -1: none
	diskReserve       int64 // 0: auto; -1: none

	metrics     bool   // serve GET /metrics
	queueDetail string // comma-separated queues with detailed series; "all"
	reflection  bool   // serve gRPC reflection

	alerts        string   // rules file (YAML or JSON); "": the built-in rules
	alertWebhooks []string // Alertmanager-compatible webhook receivers
	alertsOff     bool     // evaluate no alerts

	dashboard      bool   // serve the web dashboard at /
	dashboardHosts string // comma-separated extra host names it answers to without a token

	// A replicated cluster (serve_cluster.go; issue 12).
	clusterID    string
	nodeID       uint64
	clusterPeers string // ID=URL,… every member, this node included
	join         bool
}

func newServeCmd() *cobra.Command { return serveCommand(runServe) }

// serveCommand builds the serve command around run, which gets the flags
// once the environment and the config file have filled them in, and the
// logger; tests pass their own run.
//
// From the moment the logger exists, serve prints nothing but log lines:
// an error that stops it is logged too (and main does not print it again),
// so that --log-format json gives JSON on every line.
func serveCommand(run func(*cobra.Command, *serveFlags, *slog.Logger) error) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker: the API (gRPC, gRPC-Web, Connect/JSON) and /healthz on one port",
		Long: `serve runs a chute broker with its journal in --data, serving the API on
--listen. Every flag can also come from the environment (CHUTE_ and the flag
name in capitals, '-' as '_', e.g. CHUTE_TOKEN) or from a config file
(--config chute.yaml, .yml, .toml or .json; keys are flag names). The command
line wins, then the environment, then the file. Sizes take units (64MiB,
1.5GB, or plain bytes) and durations take days and weeks (500ms, 90s, 7d).
--print-config shows the settings in force, as YAML, and exits.

Clients authenticate with a bearer token: --token is one with every right
(role admin); --tokens FILE adds named tokens with roles (read, produce,
consume, admin) and optional publish quotas (docs/operations.md,
"Authentication, roles and limits"). Admin actions are written to an audit
log (--audit-log FILE, JSON lines; by default the main log, msg "audit").
Without a token the server only listens on a loopback address, unless told
--insecure.

Request bytes the server holds at once are bounded: --max-inflight-bytes for
all connections (auto: twice --memory-budget, at least 64 MiB) and
--max-conn-inflight-bytes for one (auto: a quarter of that); a call that
does not fit within a second is refused as retryable (ResourceExhausted).
--max-request-size bounds one request message; a longer request is refused
before it is read.

SIGINT or SIGTERM shut it down gracefully: it stops accepting, finishes
confirmations in flight, returns the leases consumers hold, and closes the
journal with a checkpoint. Every line it prints is a log line
(--log-format text or json) on stderr; the first info line, "chute
serving", carries the address in addr.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd, f.config); err != nil {
				return err
			}
			if f.printConfig {
				if _, _, err := f.options(); err != nil {
					return err
				}
				return printConfig(cmd.OutOrStdout(), cmd.Flags())
			}
			log, err := newLogger(cmd.ErrOrStderr(), f.logFormat, f.logLevel)
			if err != nil {
				return err
			}
			if err := run(cmd, &f, log); err != nil {
				log.Error("chute serve failed", "err", err)
				return loggedError{err}
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func (f *serveFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.config, "config", "", "config file: .yaml, .yml, .toml or .json (keys are flag names)")
	fl.BoolVar(&f.printConfig, "print-config", false, "print the settings in force (flags, environment, file, defaults) as YAML, secrets masked, and exit")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7420", "address to listen on")
	fl.StringVar(&f.data, "data", "./chute-data", "journal directory")
	fl.StringVar(&f.token, "token", "", "bearer token clients must send (also CHUTE_TOKEN); it has the admin role")
	markSecret(fl, "token")
	fl.StringVar(&f.tokensFile, "tokens", "", "tokens file (YAML or JSON): named tokens with roles read, produce, consume or admin and optional publish quotas")
	markNotSecret(fl, "tokens")
	fl.StringVar(&f.auditLog, "audit-log", "", "append the audit log of admin actions to this file as JSON lines (default: the main log, msg \"audit\")")
	fl.BoolVar(&f.insecure, "insecure", false, "allow listening on a non-loopback address without a token")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fl.StringVar(&f.sync, "sync", "always", "journal sync policy: always (safe), interval or never (unsafe on power loss)")
	fl.Var(newDurationValue(&f.syncInterval, 100*time.Millisecond, false), "sync-interval", "longest time between syncs with --sync interval")
	fl.Var(newDurationValue(&f.syncDelay, broker.DefaultSyncDelay, true), "sync-delay", "with --sync always, the journal's commit delay: appends that come within this long of the last sync share the next one (none: sync at once)")
	fl.Var(newSizeValue(&f.segmentSize, 64<<20, false), "segment-size", "journal segment size (64KiB to 1GiB)")
	fl.Var(newSizeValue(&f.memBudget, 64<<20, true), "memory-budget", "memory for queued messages: index first, recent bodies with the rest; none caches no bodies")
	fl.Var(newSizeValue(&f.maxMessage, 1<<20, false), "max-message-size", "largest message (body, headers, ID, key), at most 64MiB")
	fl.IntVar(&f.maxBatch, "max-batch", 1000, "most messages per publish and receipts per ack")
	fl.Var(newSizeValue(&f.maxRequest, 64<<20, false), "max-request-size", "largest request message; a longer request is refused before it is read")
	fl.Var(newAutoSizeValue(&f.maxInflight), "max-inflight-bytes", "request bytes held at once, all connections (auto: 2 × --memory-budget, at least 64MiB)")
	fl.Var(newAutoSizeValue(&f.maxConnIn), "max-conn-inflight-bytes", "request bytes held at once for one connection (auto: a quarter of --max-inflight-bytes)")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.Var(newDurationValue(&f.shutdownWait, 30*time.Second, false), "shutdown-timeout", "how long a graceful shutdown may take")
	fl.Var(autoNoneSize{newSizeValue(&f.minFreeDisk, 0, true)}, "min-free-disk", "free-space floor of the data volume: publishes are refused below it, receives below half (auto: 5% of the volume, at most 256MiB; none: no floor)")
	fl.Var(autoNoneSize{newSizeValue(&f.diskReserve, 0, true)}, "disk-reserve", "space held in DATA/RESERVE and given up when the volume fills, so that acks and checkpoints go on (auto: sized from the index)")
	fl.BoolVar(&f.salvage, "salvage", false, "start on a journal whose only damage is in bodies of queued messages, dead-lettering those with reason damaged (docs/operations.md)")
	fl.BoolVar(&f.metrics, "metrics", true, "serve Prometheus metrics at GET /metrics (any valid token may read them)")
	fl.StringVar(&f.queueDetail, "metrics-queue-detail", "", "comma-separated queues whose detailed series /metrics exports (bytes by state, duplicates, rejections, dead letters by reason, latency histograms: 89 series), or all; a queue also opts in with the attribute metrics.detail=true")
	fl.StringVar(&f.queueDetail, "metrics-queue-histograms", "", "the old name of --metrics-queue-detail")
	_ = fl.MarkDeprecated("metrics-queue-histograms", "use --metrics-queue-detail")
	fl.BoolVar(&f.reflection, "reflection", true, "serve gRPC server reflection (grpcurl without .proto files; needs a token with the read role)")
	fl.StringVar(&f.alerts, "alerts", "", "alert rules file (YAML or JSON): overrides of the built-in rules and custom rules (docs/operations.md, \"Alerts\")")
	fl.Var((*urlList)(&f.alertWebhooks), "alert-webhook", "POST alerts that fire or resolve to this URL (Alertmanager webhook format); repeatable, or comma-separated")
	markSecret(fl, "alert-webhook") // receivers' URLs often carry a token
	fl.BoolVar(&f.alertsOff, "alerts-off", false, "evaluate no alert rules (the log shows none; chute alerts ls says so)")
	fl.BoolVar(&f.dashboard, "dashboard", true, "serve the web dashboard at / on the API port (docs/dashboard.md)")
	fl.StringVar(&f.dashboardHosts, "dashboard-hosts", "", "comma-separated host names the dashboard answers to when the server has no token, besides IP addresses and localhost (DNS rebinding protection)")
	fl.StringVar(&f.clusterPeers, "cluster-peers", "", "serve a replicated cluster: every member as ID=URL, comma-separated, this node included (docs/replication.md; every call of the API, one shard)")
	fl.StringVar(&f.clusterID, "cluster-id", "", "the cluster's name, kept in DATA/cluster-identity: a data directory of another cluster is refused")
	fl.Uint64Var(&f.nodeID, "node-id", 0, "this node's ID in --cluster-peers")
	fl.Uint64Var(&f.compactEvery, "cluster-compact-every", 10_000, "a cluster node replaces its log with a snapshot once it grew by this many entries (tests: small, for many snapshots)")
	fl.MarkHidden("cluster-compact-every")
	fl.Var(newSizeValue(&f.compactBytes, replica.DefaultCompactBytes, true), "cluster-compact-bytes", "a cluster node replaces its log with a snapshot, too, once the entries since the last one hold this many bytes, or as many as that snapshot if more (none: by count only)")
	fl.MarkHidden("cluster-compact-bytes")
	fl.Uint8Var(&f.clusterMaxVersion, "cluster-max-version", 0, "read and advertise replicated commands up to this version only, as an older binary would (tests of rolling upgrades; 0: this binary's)")
	fl.MarkHidden("cluster-max-version")
	fl.BoolVar(&f.clusterRebuild, "cluster-rebuild", true, "a cluster node whose log is damaged rebuilds itself from its peers under a new ID (false: it refuses to start, for the operator to look)")
	fl.StringVar(&f.clusterRestore, "cluster-restore", "", "start a new cluster from a backup directory (chute cluster backup): every new node gets the same one; a node that has its log ignores it")
	fl.Uint32Var(&f.clusterShards, "cluster-shards", 1, "a new cluster's number of shards, each a Raft group of every member with its own leader (a topic with its subscriptions, a queue with its group and dead-letter queue, live in one); fixed once the cluster is made: every member gets the same")
	fl.BoolVar(&f.join, "join", false, "join a running cluster (then: chute cluster add ID URL, and promote once caught up): never start a new one")
	fl.Var(newDurationValue(&f.monitorSlack, 2*time.Millisecond, true), "monitor-slack", "Linux, as root or with CAP_SYS_NICE: the timer slack of the Go runtime's monitor thread, which otherwise wakes every 20µs while the server is busy (less CPU and a shorter latency tail; docs/operations.md; none: leave it)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown (for diagnosis)")
	fl.MarkHidden("cpuprofile")
	fl.StringVar(&f.pprofAddr, "pprof", "", "serve Go's profiles (/debug/pprof/) on this loopback address (for diagnosis)")
	fl.MarkHidden("pprof")
}

// options checks the settings without touching the disk or the network
// and converts them for the library (loggers not set).
func (f *serveFlags) options() (broker.Options, server.Options, error) {
	policy, err := parseSync(f.sync)
	if err != nil {
		return broker.Options{}, server.Options{}, err
	}
	if _, err := newLogger(io.Discard, f.logFormat, f.logLevel); err != nil {
		return broker.Options{}, server.Options{}, err
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return broker.Options{}, server.Options{}, usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return broker.Options{}, server.Options{}, usageError{fmt.Errorf("--listen %q: %w", f.listen, err)}
	}
	if f.token == "" && f.tokensFile == "" && !f.insecure && !isLoopback(host) {
		return broker.Options{}, server.Options{}, usageError{fmt.Errorf("refusing to listen on %s without a token: set --token (or CHUTE_TOKEN) or --tokens, or pass --insecure", f.listen)}
	}
	for name, n := range map[string]int64{"max-message-size": f.maxMessage, "max-request-size": f.maxRequest} {
		if n > math.MaxInt {
			return broker.Options{}, server.Options{}, usageError{fmt.Errorf("--%s %s is too large", name, fmtSize(n))}
		}
	}
	bo := broker.Options{
		Sync: policy, SyncInterval: f.syncInterval, SyncDelay: syncDelay(f.syncDelay), SegmentSize: f.segmentSize, MemoryBudget: f.memBudget,
		MaxMessageSize: int(f.maxMessage), MaxBatch: f.maxBatch, Salvage: f.salvage,
		MinFreeDisk: f.minFreeDisk, DiskReserve: f.diskReserve,
	}
	if err := bo.Validate(); err != nil {
		return broker.Options{}, server.Options{}, usageError{err}
	}
	var tokens []server.Token
	if f.tokensFile != "" {
		if tokens, err = loadTokens(f.tokensFile); err != nil {
			return broker.Options{}, server.Options{}, err
		}
		if f.token != "" { // --token is the admin token named "token"
			all := append([]server.Token{{Name: "token", Secret: f.token, Role: server.RoleAdmin}}, tokens...)
			if err := server.ValidateTokens(all); err != nil {
				return broker.Options{}, server.Options{}, usageError{fmt.Errorf("--token with --tokens %s: %w", f.tokensFile, err)}
			}
		}
	}
	global, perConn := f.inflightBudgets()
	v := version.Get()
	so := server.Options{Token: f.token, Tokens: tokens, MaxRequestBytes: int(f.maxRequest),
		MaxInflightBytes: global, MaxConnInflightBytes: perConn,
		Info: server.Info{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion}, Reflection: f.reflection}
	if so.Alerts, err = f.alertOptions(); err != nil {
		return broker.Options{}, server.Options{}, err
	}
	if f.dashboard {
		so.Dashboard = &server.DashboardOptions{Hosts: splitList(f.dashboardHosts)}
	} else if f.dashboardHosts != "" {
		return broker.Options{}, server.Options{}, usageError{errors.New("--dashboard-hosts with --dashboard=false")}
	}
	return bo, so, nil
}

// alertOptions reads the rules file and checks the webhook URLs; the
// webhooks themselves are made by runServe, which owns them.
func (f *serveFlags) alertOptions() (*server.AlertOptions, error) {
	if f.alertsOff {
		if f.alerts != "" || len(f.alertWebhooks) > 0 {
			return nil, usageError{errors.New("--alerts-off with --alerts or --alert-webhook")}
		}
		return nil, nil
	}
	var cfg alerts.Config
	if f.alerts != "" {
		var err error
		if cfg, err = alerts.LoadConfig(f.alerts); err != nil {
			return nil, usageError{err}
		}
	}
	for _, u := range f.alertWebhooks {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, usageError{fmt.Errorf("--alert-webhook %q: want an http or https URL", u)}
		}
	}
	return &server.AlertOptions{Config: cfg}, nil
}

// startWebhooks makes one notifier per --alert-webhook; the returned func
// closes them (after the server has stopped evaluating).
func startWebhooks(urls []string, log *slog.Logger) ([]alerts.Notifier, func(), error) {
	var hooks []*alerts.Webhook
	closeAll := func() {
		for _, h := range hooks {
			h.Close()
		}
	}
	var out []alerts.Notifier
	for _, u := range urls {
		h, err := alerts.NewWebhook(alerts.WebhookOptions{URL: u, Logger: log})
		if err != nil {
			closeAll()
			return nil, nil, usageError{fmt.Errorf("--alert-webhook: %w", err)}
		}
		hooks = append(hooks, h)
		out = append(out, h)
	}
	return out, closeAll, nil
}

// inflightBudgets are the in-flight byte budgets, "auto" worked out: the
// server's is twice the memory budget (the broker holds bodies within its
// budget; requests on their way in get as much again, so that the process
// stays within a small multiple of what the operator gave), at least 64
// MiB so that a small budget still lets a few large publishes through;
// one connection's is a quarter of it, so that no single client takes
// it all.
func (f *serveFlags) inflightBudgets() (global, perConn int64) {
	global = f.maxInflight
	if global <= 0 {
		global = max(2*max(f.memBudget, 0), 64<<20)
	}
	perConn = f.maxConnIn
	if perConn <= 0 {
		perConn = max(global/4, 1)
	}
	return global, perConn
}

func runServe(cmd *cobra.Command, f *serveFlags, log *slog.Logger) error {
	bo, so, err := f.options()
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	if f.pprofAddr != "" {
		stop, err := startPprof(f.pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if f.monitorSlack > 0 {
		// The Go runtime's monitor wakes every 20µs while a P is busy
		// (internal/sysmon): a broker busy and idle once per commit
		// makes half its context switches there.
		if tid, err := sysmon.SetSlack(f.monitorSlack); errors.Is(err, sysmon.ErrUnsupported) {
			log.Debug("the runtime monitor's timer slack is left as it is", "err", err)
		} else if err != nil {
			log.Info("the runtime monitor's timer slack is left as it is", "err", err)
		} else {
			log.Debug("runtime monitor timer slack set", "thread", tid, "slack", f.monitorSlack)
		}
	}
	bo.Logger, so.Logger = log, log
	if os.Getenv("GOMEMLIMIT") == "" {
		// The heap's headroom within the memory budget (broker.Options.MemoryLimit).
		bo.MemoryLimit = func(n int64) { debug.SetMemoryLimit(n) }
	}
	// Tracing (OTEL_ variables, server/tracing.go): off unless configured;
	// the spans still buffered are flushed after the server's Shutdown.
	stopTracing, tracing, err := server.TracingFromEnv(cmd.Context(), log)
	if err != nil {
		return err
	}
	if tracing {
		so.Tracing = true
		log.Info("tracing on", "exporter", os.Getenv("OTEL_TRACES_EXPORTER"),
			"endpoint", cmp.Or(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")))
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait)
			defer cancel()
			if err := stopTracing(ctx); err != nil {
				log.Warn("tracing shutdown", "err", err)
			}
		}()
	}
	if f.auditLog != "" {
		af, err := os.OpenFile(f.auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		defer af.Close()
		so.AuditLogger = slog.New(slog.NewJSONHandler(af, nil))
	}
	if so.Alerts != nil {
		hooks, closeHooks, err := startWebhooks(f.alertWebhooks, log)
		if err != nil {
			return err
		}
		defer closeHooks() // after the server's Shutdown: the loop has stopped
		so.Alerts.Notifiers = hooks
	}
	if f.clusterPeers != "" {
		return f.serveCluster(cmd, so, log)
	}
	sync := new(metrics.SyncHistogram)
	bo.OnSync = sync.Observe
	b, err := broker.Open(f.data, &bo)
	if err != nil {
		return err
	}
	if f.metrics {
		so.Metrics = metrics.Handler(b, metrics.Options{QueueDetail: splitList(f.queueDetail), Sync: sync})
	}
	srv := server.New(b, so)
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		b.Close()
		return err
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	rs := b.RecoveryStats()
	dashboard := "off"
	if so.Dashboard != nil {
		dashboard = dashboardURL(scheme, ln.Addr())
	}
	log.Info(serveproc.ServingMsg, "addr", scheme+"://"+ln.Addr().String(), "dashboard", dashboard, "version", so.Info.Version, "data", f.data,
		"sync", f.sync, "auth", f.token != "" || len(so.Tokens) > 0, "tokens", len(so.Tokens),
		"max_inflight", fmtSize(so.MaxInflightBytes), "max_conn_inflight", fmtSize(so.MaxConnInflightBytes),
		"recovered_records", rs.Records, "recovery", rs.Duration.Round(time.Millisecond))

	ctx, cancel, serveErr := f.serveUntilDone(cmd, srv, ln, log, nil)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		log.Error("broker shutdown", "err", err)
		return err
	}
	log.Info("stopped")
	return serveErr
}

// serveUntilDone serves on ln until the server fails or the command's
// context ends (a signal), then shuts the server down; it returns a
// context bounded by --shutdown-timeout (with its cancel) for the rest of
// the shutdown, and the serving error (nil when the server was shut
// down).
//
// A value on halt (a cluster node that stopped on an error of its own)
// ends serving with that error.
func (f *serveFlags) serveUntilDone(cmd *cobra.Command, srv *server.Server, ln net.Listener, log *slog.Logger, halt <-chan error) (context.Context, context.CancelFunc, error) {
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var serveErr error
	select {
	case serveErr = <-errc:
	case serveErr = <-halt:
		log.Error("shutting down", "err", serveErr)
	case <-cmd.Context().Done():
		log.Info("shutting down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait)
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("server shutdown", "err", err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return ctx, cancel, serveErr
}

// dashboardURL is the dashboard's address for the serving line: an
// unspecified listening address (0.0.0.0, ::) is shown as localhost.
func dashboardURL(scheme string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// autoSizeValue is a size flag whose zero is "auto": worked out from
// other settings (see inflightBudgets).
type autoSizeValue struct{ p *int64 }

func newAutoSizeValue(p *int64) *autoSizeValue {
	*p = 0
	return &autoSizeValue{p: p}
}

func (v *autoSizeValue) Set(s string) error {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		*v.p = 0
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("0 bytes would refuse every call: give a size, or auto")
	}
	*v.p = n
	return nil
}

func (v *autoSizeValue) String() string {
	if *v.p <= 0 {
		return "auto"
	}
	return fmtSize(*v.p)
}

func (v *autoSizeValue) Type() string { return "size" }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// autoNoneSize is a size flag that also takes auto (0, the default) and
// none (-1): --min-free-disk, --disk-reserve.
type autoNoneSize struct{ *sizeValue }

func (v autoNoneSize) Set(s string) error {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		*v.p = 0
		return nil
	}
	return v.sizeValue.Set(s)
}

func (v autoNoneSize) String() string {
	if *v.p == 0 {
		return "auto"
	}
	return v.sizeValue.String()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// urlList is a repeatable flag of URLs that also takes a comma-separated
// list (the form --print-config writes and a config file gives back).
type urlList []string

func (l *urlList) Set(s string) error {
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

func (l *urlList) String() string { return strings.Join(*l, ",") }
func (l *urlList) Type() string   { return "urls" }

// syncDelay is --sync-delay as broker.Options takes it: 0 and none both
// mean no delay (the broker reads 0 as its default).
func syncDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
