package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/chutemq/chute/broker"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/server"
)

type serveFlags struct {
	config       string
	listen       string
	data         string
	token        string
	insecure     bool
	tlsCert      string
	tlsKey       string
	sync         string
	syncInterval time.Duration
	segmentSize  int64
	memBudget    int64
	maxMessage   int
	maxBatch     int
	maxRequest   int
	logFormat    string
	logLevel     string
	shutdownWait time.Duration
	cpuProfile   string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker: the API (gRPC, gRPC-Web, Connect/JSON) and /healthz on one port",
		Long: `serve runs a chute broker with its journal in --data, serving the API on
--listen. Every flag can also come from the environment (CHUTE_ and the flag
name in capitals, '-' as '_', e.g. CHUTE_TOKEN) or from a JSON config file
(--config; keys are flag names). The command line wins, then the
environment, then the file.

Without a token the server only listens on a loopback address, unless told
--insecure. SIGINT or SIGTERM shut it down gracefully: it stops accepting,
finishes confirmations in flight, returns the leases consumers hold, and
closes the journal with a checkpoint.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd, f.config); err != nil {
				return err
			}
			return runServe(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "JSON config file (keys are flag names)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7420", "address to listen on")
	fl.StringVar(&f.data, "data", "./chute-data", "journal directory")
	fl.StringVar(&f.token, "token", "", "bearer token clients must send (also CHUTE_TOKEN)")
	fl.BoolVar(&f.insecure, "insecure", false, "allow listening on a non-loopback address without a token")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS key file (PEM)")
	fl.StringVar(&f.sync, "sync", "always", "journal sync policy: always (safe), interval or never (unsafe on power loss)")
	fl.DurationVar(&f.syncInterval, "sync-interval", 100*time.Millisecond, "longest time between syncs with --sync interval")
	fl.Int64Var(&f.segmentSize, "segment-size", 64<<20, "journal segment size in bytes")
	fl.Int64Var(&f.memBudget, "memory-budget", 64<<20, "memory for queued messages: index first, recent bodies with the rest (bytes)")
	fl.IntVar(&f.maxMessage, "max-message-size", 1<<20, "largest message (body, headers, ID, key) in bytes")
	fl.IntVar(&f.maxBatch, "max-batch", 1000, "most messages per publish and receipts per ack")
	fl.IntVar(&f.maxRequest, "max-request-size", 64<<20, "largest request message in bytes")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.DurationVar(&f.shutdownWait, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until shutdown (for diagnosis)")
	fl.MarkHidden("cpuprofile")
	return cmd
}

func runServe(cmd *cobra.Command, f serveFlags) error {
	log, err := newLogger(cmd.ErrOrStderr(), f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	policy, err := parseSync(f.sync)
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
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	}
	host, _, err := net.SplitHostPort(f.listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen %q: %w", f.listen, err)}
	}
	if f.token == "" && !f.insecure && !isLoopback(host) {
		return usageError{fmt.Errorf("refusing to listen on %s without a token: set --token (or CHUTE_TOKEN), or pass --insecure", f.listen)}
	}
	b, err := broker.Open(f.data, &broker.Options{
		Sync: policy, SyncInterval: f.syncInterval, SegmentSize: f.segmentSize, MemoryBudget: f.memBudget,
		MaxMessageSize: f.maxMessage, MaxBatch: f.maxBatch, Logger: log,
	})
	if err != nil {
		return err
	}
	srv := server.New(b, server.Options{Token: f.token, Logger: log, MaxRequestBytes: f.maxRequest})
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
	log.Info("chute serving", "addr", scheme+"://"+ln.Addr().String(), "data", f.data, "sync", f.sync,
		"auth", f.token != "", "recovered_records", rs.Records, "recovery", rs.Duration.Round(time.Millisecond))
	fmt.Fprintf(cmd.OutOrStdout(), "chute: listening on %s\n", ln.Addr())

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
	case <-cmd.Context().Done():
		log.Info("shutting down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("server shutdown", "err", err)
	}
	if err := b.Shutdown(ctx); err != nil {
		log.Error("broker shutdown", "err", err)
		return err
	}
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
