package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/chutemq/chute/internal/version"
)

// Tracing (issue 9): OpenTelemetry spans for API calls, off unless the
// standard OTEL_ environment variables ask for them.
//
// TracingFromEnv reads the variables once, at start: when they ask for
// traces it installs an SDK TracerProvider (OTLP over HTTP, or the
// console) and the W3C propagators as OpenTelemetry's globals, and a
// server built afterwards with Options.Tracing puts otelconnect's
// interceptor in front of every API handler. Without the variables nothing
// is installed, no goroutine is started and the handlers carry no
// interceptor at all: a broker that does not trace pays nothing.
//
// The server trusts the trace context a caller sends (otelconnect's
// WithTrustRemote): its span of a call is the child of the client's span,
// so that one trace runs from the application through the broker. A
// caller can therefore pick the trace ID of the server's spans (never
// anything else); chute is meant to run behind the applications that use
// it, not on the open internet.
//
// Messages carry their own trace context in their headers (traceparent,
// tracestate): the Go client's Producer writes it and its Runner reads it
// (client/tracing.go); the broker stores headers as they are.

// The variables TracingFromEnv reads itself; the SDK and the exporters
// read the others (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, ..._TIMEOUT,
// ..._INSECURE, OTEL_BSP_*, OTEL_SPAN_*_LIMIT).
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	envServiceName     = "OTEL_SERVICE_NAME"
	defaultServiceName = "chute"
)

// TracingFromEnv sets up OpenTelemetry tracing from the standard
// environment variables, for a server built afterwards with
// Options.Tracing. Tracing is on when OTEL_TRACES_EXPORTER names "otlp"
// or "console" (a comma-separated list; "none" turns it off), or when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// and OTEL_TRACES_EXPORTER is not; OTEL_SDK_DISABLED=true turns it off
// whatever else is set. An empty variable counts as unset.
//
// When on, it installs as OpenTelemetry's globals a TracerProvider (spans
// exported in batches: "otlp" over OTLP/HTTP with protobuf, configured by
// the exporter's own OTEL_EXPORTER_OTLP_* variables; "console" as JSON
// lines on standard error; the sampler from OTEL_TRACES_SAMPLER, as the
// SDK reads it; the resource's service.name from OTEL_SERVICE_NAME,
// default "chute", and service.version this build's) and the W3C Trace
// Context and Baggage propagators. Export errors go to log (nil: the
// OpenTelemetry default, standard error). shutdown flushes the spans
// still buffered and stops the exporters; call it once, after the
// server's Shutdown.
//
// When off, it installs nothing, starts nothing, and returns enabled
// false with a shutdown that does nothing. It fails for an exporter or an
// OTLP protocol it does not support ("grpc": chute links no gRPC
// library; use http/protobuf, port 4318).
func TracingFromEnv(ctx context.Context, log *slog.Logger) (shutdown func(context.Context) error, enabled bool, err error) {
	nothing := func(context.Context) error { return nil }
	otlp, console, err := tracesExporters()
	if err != nil || !otlp && !console {
		return nothing, false, err
	}
	if p := firstEnv(envTracesProtocol, envProtocol); p != "" && p != "http/protobuf" {
		return nothing, false, fmt.Errorf("tracing: OTLP protocol %q is not supported: use http/protobuf", p)
	}
	res, err := tracingResource(ctx)
	if err != nil {
		return nothing, false, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if otlp {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nothing, false, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if console {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(os.Stderr))
		if err != nil {
			return nothing, false, fmt.Errorf("tracing: console exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, true, nil
}

// tracesExporters reads which exporters the environment asks for.
func tracesExporters() (otlp, console bool, err error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(envSDKDisabled)), "true") {
		return false, false, nil
	}
	list := strings.TrimSpace(os.Getenv(envTracesExporter))
	if list == "" {
		// No exporter named: an OTLP endpoint alone asks for OTLP (the
		// specification's default exporter).
		return firstEnv(envTracesEndpoint, envEndpoint) != "", false, nil
	}
	for name := range strings.SplitSeq(list, ",") {
		switch strings.TrimSpace(name) {
		case "otlp":
			otlp = true
		case "console":
			console = true
		case "none", "":
		default:
			return false, false, fmt.Errorf("tracing: %s=%s: exporter %q is not supported: use otlp, console or none",
				envTracesExporter, list, strings.TrimSpace(name))
		}
	}
	return otlp, console, nil
}

// tracingResource describes the process: service.name (OTEL_SERVICE_NAME,
// else "chute"), service.version, the SDK, and OTEL_RESOURCE_ATTRIBUTES.
// Later sources win, so the environment overrides the defaults.
func tracingResource(ctx context.Context) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", defaultServiceName),
			attribute.String("service.version", version.Get().Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// firstEnv is the first of the variables that is set and not blank.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// tracingInterceptors is otelconnect's interceptor, when Options.Tracing
// is set: one server span per call (a stream is one span, from its start
// to its end), the child of the caller's span if it sent one, with the
// global TracerProvider and propagator as they are when New runs. No
// metrics: /metrics has them.
func (s *Server) tracingInterceptors() []connect.Interceptor {
	if !s.opts.Tracing {
		return nil
	}
	ic, err := otelconnect.NewInterceptor(otelconnect.WithTrustRemote(), otelconnect.WithoutMetrics())
	if err != nil { // only for invalid options
		s.log.Error("tracing interceptor", "err", err)
		return nil
	}
	return []connect.Interceptor{ic}
}
