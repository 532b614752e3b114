package server_test

import (
	"context"
	"os"
	"reflect"
	"slices"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// withTracing installs a TracerProvider recording every span, and the
// W3C propagators, as OpenTelemetry's globals until the test ends. The
// tests that use it must not run in parallel.
func withTracing(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	restoreOTel(t)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return rec
}

// restoreOTel puts OpenTelemetry's globals back as they are now when the
// test ends (only those that changed: setting one to itself logs an
// error).
func restoreOTel(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		if !same(otel.GetTracerProvider(), prevTP) {
			otel.SetTracerProvider(prevTP)
		}
		if !same(otel.GetTextMapPropagator(), prevProp) {
			otel.SetTextMapPropagator(prevProp)
		}
	})
}

// same reports whether a and b are the same value (a composite
// propagator is a slice, which == would panic on).
func same(a, b any) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

// tracedCall makes one call (CreateQueue) from a client with WithTracing,
// under an application span, to a server with tracing as given.
func tracedCall(t *testing.T, tracing bool) (app trace.SpanContext) {
	t.Helper()
	b := chutetest.MustOpen(t, "", nil)
	c, err := client.Dial(chutetest.StartServer(t, b, server.Options{Tracing: tracing}), client.WithTracing())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, span := otel.Tracer("test").Start(chutetest.Ctx(t), "app")
	defer span.End()
	if err := c.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	return span.SpanContext()
}

// TestTracingCallSpans: with tracing on, a call makes a client span and a
// server span in the same trace, the server's the child of the client's.
func TestTracingCallSpans(t *testing.T) {
	rec := withTracing(t)
	app := tracedCall(t, true)
	const proc = "chute.v1.AdminService/CreateQueue"
	var cl, sv sdktrace.ReadOnlySpan
	chutetest.Eventually(t, "client and server spans", func() bool {
		for _, s := range rec.Ended() {
			switch {
			case s.Name() == proc && s.SpanKind() == trace.SpanKindClient:
				cl = s
			case s.Name() == proc && s.SpanKind() == trace.SpanKindServer:
				sv = s
			}
		}
		return cl != nil && sv != nil
	})
	if cl.SpanContext().TraceID() != app.TraceID() || cl.Parent().SpanID() != app.SpanID() {
		t.Errorf("client span in trace %v under %v, want the application's %v under %v",
			cl.SpanContext().TraceID(), cl.Parent().SpanID(), app.TraceID(), app.SpanID())
	}
	if sv.SpanContext().TraceID() != cl.SpanContext().TraceID() {
		t.Errorf("server span in trace %v, client span in %v", sv.SpanContext().TraceID(), cl.SpanContext().TraceID())
	}
	if sv.Parent().SpanID() != cl.SpanContext().SpanID() || !sv.Parent().IsRemote() {
		t.Errorf("server span's parent %v (remote %v), want the client span %v", sv.Parent().SpanID(),
			sv.Parent().IsRemote(), cl.SpanContext().SpanID())
	}
}

// TestTracingOffByDefault: a server without Options.Tracing makes no
// span, even with a TracerProvider set.
func TestTracingOffByDefault(t *testing.T) {
	rec := withTracing(t)
	tracedCall(t, false)
	var client int
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindServer:
			t.Errorf("server span %q with tracing off", s.Name())
		case trace.SpanKindClient:
			client++
		}
	}
	if client == 0 { // the test would prove nothing
		t.Fatal("no client span recorded")
	}
}

// clearOTelEnv unsets every variable TracingFromEnv looks at, for the
// test.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// TestTracingFromEnvOff: without the variables (or with tracing disabled)
// TracingFromEnv installs nothing.
func TestTracingFromEnvOff(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"unset":    nil,
		"none":     {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		"disabled": {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
	} {
		t.Run(name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			restoreOTel(t)
			before, beforeProp := otel.GetTracerProvider(), propagatorFields()
			shutdown, enabled, err := server.TracingFromEnv(context.Background(), nil)
			if err != nil || enabled {
				t.Fatalf("TracingFromEnv: enabled %v, err %v; want off", enabled, err)
			}
			if otel.GetTracerProvider() != before || !slices.Equal(propagatorFields(), beforeProp) {
				t.Error("TracingFromEnv changed the global TracerProvider or propagator")
			}
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// propagatorFields are the global propagator's headers, sorted (the
// default propagator gives them in no set order).
func propagatorFields() []string {
	f := otel.GetTextMapPropagator().Fields()
	slices.Sort(f)
	return f
}

// TestTracingFromEnvConsole: OTEL_TRACES_EXPORTER=console turns tracing
// on: a recording TracerProvider and the W3C propagators are installed,
// and shut down cleanly.
func TestTracingFromEnvConsole(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_SERVICE_NAME", "chute-test")
	restoreOTel(t)
	before := otel.GetTracerProvider()
	shutdown, enabled, err := server.TracingFromEnv(context.Background(), nil)
	if err != nil || !enabled {
		t.Fatalf("TracingFromEnv: enabled %v, err %v; want on", enabled, err)
	}
	if otel.GetTracerProvider() == before {
		t.Error("no TracerProvider installed")
	}
	_, span := otel.Tracer("test").Start(context.Background(), "probe")
	if !span.IsRecording() {
		t.Error("the installed TracerProvider does not record")
	}
	if got := otel.GetTextMapPropagator().Fields(); len(got) != 3 { // traceparent, tracestate, baggage
		t.Errorf("propagator fields %v, want W3C trace context and baggage", got)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestTracingFromEnvRefuses: an exporter or a protocol chute cannot serve
// is an error, not silence.
func TestTracingFromEnvRefuses(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"zipkin": {"OTEL_TRACES_EXPORTER": "zipkin"},
		"grpc":   {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		t.Run(name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range env {
				t.Setenv(k, v)
			}
			restoreOTel(t)
			before := otel.GetTracerProvider()
			_, enabled, err := server.TracingFromEnv(context.Background(), nil)
			if err == nil || enabled {
				t.Fatalf("TracingFromEnv: enabled %v, err %v; want an error", enabled, err)
			}
			if otel.GetTracerProvider() != before {
				t.Error("TracingFromEnv installed a TracerProvider despite the error")
			}
		})
	}
}
