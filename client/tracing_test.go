package client_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
)

// withTracing installs a TracerProvider recording every span, and the
// W3C propagators, as OpenTelemetry's globals until the test ends. The
// tests that use it must not run in parallel.
func withTracing(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
		tp.Shutdown(context.Background())
	})
	return rec, tp.Tracer("test")
}

// handled is what a handler saw.
type handled struct {
	headers map[string]string
	span    trace.SpanContext
	parent  trace.SpanContext // of the handler's span
}

// runOnce runs a runner on q until its handler has seen one message, and
// returns what it saw; handler errors come from fail.
func runOnce(t *testing.T, api chute.API, q string, fail error) handled {
	t.Helper()
	got := make(chan handled, 1)
	r := client.NewRunner(api, q, func(ctx context.Context, d chute.Delivery) error {
		h := handled{headers: d.Headers, span: trace.SpanContextFromContext(ctx)}
		if ro, ok := trace.SpanFromContext(ctx).(sdktrace.ReadOnlySpan); ok {
			h.parent = ro.Parent()
		}
		select {
		case got <- h:
		default:
		}
		return fail
	}, client.RunnerOptions{Concurrency: 1, BreakerThreshold: -1})
	stop := runBackground(t, r)
	defer stop()
	select {
	case h := <-got:
		return h
	case <-chutetest.Ctx(t).Done():
		t.Fatal("the handler was never called")
		return handled{}
	}
}

// TestTracingPublishToProcess: a message published through a Producer
// under a span reaches the Runner's handler under a consumer span of the
// same trace, whose parent is the message's producer span, itself a child
// of the publishing span; the headers carry a valid traceparent, and the
// caller's header map is left as it was.
func TestTracingPublishToProcess(t *testing.T) {
	rec, tracer := withTracing(t)
	for name, api := range apis(t, nil) {
		t.Run(name, func(t *testing.T) {
			ctx := chutetest.Ctx(t)
			q := "trace-" + name
			if err := api.CreateQueue(ctx, q, chute.QueueConfig{}); err != nil {
				t.Fatal(err)
			}
			p := client.NewProducer(api, q, client.ProducerOptions{})
			defer p.Close(ctx)
			pctx, parent := tracer.Start(ctx, "app publish")
			mine := map[string]string{"k": "v"}
			f, err := p.Publish(pctx, chute.Message{Body: []byte("x"), Headers: mine})
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			parent.End()
			if len(mine) != 1 {
				t.Errorf("Publish changed the caller's headers: %v", mine)
			}
			prod := findSpan(t, rec, "chute publish "+q)
			if prod.SpanKind() != trace.SpanKindProducer || prod.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("producer span: kind %v, parent %v; want producer, child of %v", prod.SpanKind(),
					prod.Parent().SpanID(), parent.SpanContext().SpanID())
			}

			h := runOnce(t, api, q, nil)
			tp := h.headers["traceparent"]
			sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
				propagation.MapCarrier{"traceparent": tp}))
			if !sc.IsValid() || sc.SpanID() != prod.SpanContext().SpanID() {
				t.Errorf("traceparent %q: want one naming the producer span %v", tp, prod.SpanContext().SpanID())
			}
			if h.headers["k"] != "v" {
				t.Errorf("headers %v: lost the application's", h.headers)
			}
			if h.span.TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("handler's trace %v, publisher's %v", h.span.TraceID(), parent.SpanContext().TraceID())
			}
			if h.parent.SpanID() != prod.SpanContext().SpanID() {
				t.Errorf("handler's span has parent %v, want the producer span %v", h.parent.SpanID(), prod.SpanContext().SpanID())
			}
			cons := findSpan(t, rec, "chute process "+q)
			if cons.SpanKind() != trace.SpanKindConsumer || cons.SpanContext().SpanID() != h.span.SpanID() {
				t.Errorf("consumer span: kind %v, ID %v; want consumer, %v", cons.SpanKind(), cons.SpanContext().SpanID(), h.span.SpanID())
			}
			attrs := map[string]string{}
			for _, a := range cons.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			for k, want := range map[string]string{"messaging.system": "chute", "messaging.destination.name": q,
				"messaging.message.id": strconv.FormatUint(res.Seq, 10)} {
				if attrs[k] != want {
					t.Errorf("consumer span attribute %s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
				}
			}
			if _, ok := attrs["chute.queue_wait_seconds"]; !ok {
				t.Errorf("consumer span without the queue wait: %v", attrs)
			}
		})
	}
}

// TestTracingKeepsUserTraceparent: a message that carries a traceparent
// keeps it, and its handler runs in that trace.
func TestTracingKeepsUserTraceparent(t *testing.T) {
	_, tracer := withTracing(t)
	api := apis(t, nil)["network"]
	ctx := chutetest.Ctx(t)
	if err := api.CreateQueue(ctx, "user-tp", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	const userTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	p := client.NewProducer(api, "user-tp", client.ProducerOptions{})
	defer p.Close(ctx)
	pctx, parent := tracer.Start(ctx, "app publish")
	f, err := p.Publish(pctx, chute.Message{Body: []byte("x"), Headers: map[string]string{"traceparent": userTP}})
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	h := runOnce(t, api, "user-tp", nil)
	if got := h.headers["traceparent"]; got != userTP {
		t.Fatalf("traceparent %q, want the application's %q", got, userTP)
	}
	if got := h.span.TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("handler's trace %s, want the one of the application's traceparent", got)
	}
}

// TestTracingHandlerError: a failed handler ends its span with an error
// status.
func TestTracingHandlerError(t *testing.T) {
	rec, _ := withTracing(t)
	api := apis(t, nil)["embedded"]
	ctx := chutetest.Ctx(t)
	if err := api.CreateQueue(ctx, "fails", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	p := client.NewProducer(api, "fails", client.ProducerOptions{})
	defer p.Close(ctx)
	if _, err := p.Publish(ctx, chute.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	runOnce(t, api, "fails", errors.New("boom"))
	s := findSpan(t, rec, "chute process fails")
	if s.Status().Code != codes.Error || s.Status().Description != "boom" {
		t.Errorf("span status %+v, want an error with the handler's", s.Status())
	}
}

// TestTracingBatchLinks: a BatchHandler's span links to the producer span
// of each message of its batch.
func TestTracingBatchLinks(t *testing.T) {
	rec, _ := withTracing(t)
	api := apis(t, nil)["network"]
	ctx := chutetest.Ctx(t)
	if err := api.CreateQueue(ctx, "batch", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	p := client.NewProducer(api, "batch", client.ProducerOptions{})
	defer p.Close(ctx)
	for range 2 {
		if _, err := p.Publish(ctx, chute.Message{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[trace.SpanID]bool{}
	for _, s := range rec.Ended() {
		if s.Name() == "chute publish batch" {
			want[s.SpanContext().SpanID()] = true
		}
	}
	if len(want) != 2 {
		t.Fatalf("%d producer spans, want 2", len(want))
	}
	got := make(chan []sdktrace.Link, 2)
	r := client.NewBatchRunner(api, "batch", func(ctx context.Context, ds []chute.Delivery) error {
		got <- trace.SpanFromContext(ctx).(sdktrace.ReadOnlySpan).Links()
		return nil
	}, client.RunnerOptions{Concurrency: 1, BatchSize: 2, BreakerThreshold: -1})
	stop := runBackground(t, r)
	defer stop()
	var links []sdktrace.Link
	for len(links) < 2 { // one batch or two
		select {
		case l := <-got:
			links = append(links, l...)
		case <-ctx.Done():
			t.Fatalf("handler called with links to %d messages, want 2", len(links))
		}
	}
	for _, l := range links {
		delete(want, l.SpanContext.SpanID())
	}
	if len(links) != 2 || len(want) != 0 {
		t.Errorf("batch span links %v: want one to each producer span", links)
	}
}

// TestTracingOffLeavesHeaders: with no propagator set (OpenTelemetry's
// default), a Producer adds no header.
func TestTracingOffLeavesHeaders(t *testing.T) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator()) // none
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	api := apis(t, nil)["network"]
	ctx := chutetest.Ctx(t)
	if err := api.CreateQueue(ctx, "plain", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	p := client.NewProducer(api, "plain", client.ProducerOptions{})
	defer p.Close(ctx)
	pctx, span := tp.Tracer("test").Start(ctx, "app publish")
	_, err := p.Publish(pctx, chute.Message{Body: []byte("x")})
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if h := runOnce(t, api, "plain", nil); len(h.headers) != 0 {
		t.Errorf("headers %v, want none", h.headers)
	}
}

// findSpan returns the ended span named name, waiting for it to end.
func findSpan(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	chutetest.Eventually(t, "span "+name, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				found = s
				return true
			}
		}
		return false
	})
	return found
}
