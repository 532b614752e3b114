package client

import (
	"context"
	"maps"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/chutemq/chute"
)

// Tracing (issue 9). The client uses only the OpenTelemetry API, never the
// SDK: an application that sets no TracerProvider and no propagator (the
// globals of go.opentelemetry.io/otel) gets the API's no-ops, and pays a
// no-op call per message; one that sets them gets, with no option at all:
//
//   - from a Producer, a span per message, "chute publish <target>" (kind
//     producer), from Publish until the broker confirms the message (or it
//     fails), a child of Publish's ctx; the message carries that span's
//     context in its headers, as W3C Trace Context ("traceparent",
//     "tracestate") and Baggage ("baggage") with the standard propagators,
//     or whatever the global propagator writes. A message whose headers
//     already hold a "traceparent" keeps the application's.
//   - from a Runner, a span per handler call, "chute process <queue>"
//     (kind consumer), around the handler, whose ctx carries it. It is the
//     child of the context in the message's headers, so that one trace runs
//     from publish through the wait in the queue to the processing (a
//     child, not a link: a message is processed on behalf of the one
//     publish that sent it). A BatchHandler's span has no parent and a link
//     to each message's context instead. The span records the time the
//     message waited (chute.queue_wait_seconds: from its publish to the
//     handler's start, delays included) and ends with an error status when
//     the handler fails.
//
// The spans of the calls themselves (Publish, Consume, ...) come from
// otelconnect's interceptor, which WithTracing adds: it is an option, not
// automatic, because a TracerProvider the application set for its own
// spans does not mean it wants one per call of the client (and the global
// provider cannot be told apart from a no-op one). Over the network a
// Producer and a Runner use one stream each: their calls make one long
// span per stream, not one per message.
//
// The globals are read when Dial, NewProducer or NewRunner runs; the
// API's defaults forward to the provider and propagator an application
// sets later, once, as is usual at the start of main.

// tracerName names the client's tracer (the instrumentation scope).
const tracerName = "github.com/chutemq/chute/client"

// Attribute keys, from OpenTelemetry's semantic conventions for messaging
// (chute.* are chute's own).
const (
	attrSystem      = attribute.Key("messaging.system")
	attrDestination = attribute.Key("messaging.destination.name")
	attrOperation   = attribute.Key("messaging.operation.type")
	attrMessageID   = attribute.Key("messaging.message.id") // the sequence number the broker gave
	attrBatchCount  = attribute.Key("messaging.batch.message_count")
	attrBodySize    = attribute.Key("messaging.message.body.size")
	attrAppID       = attribute.Key("chute.message.app_id") // chute.Message.ID, the application's
	attrDeliveries  = attribute.Key("chute.deliveries")
	attrQueueWait   = attribute.Key("chute.queue_wait_seconds")
	attrDuplicate   = attribute.Key("chute.duplicate")
)

// headerTraceparent is the W3C Trace Context header: a message that has
// one keeps it.
const headerTraceparent = "traceparent"

// Broker limits on a header (broker.Options.MaxHeaders): a propagator's
// header beyond them is left out rather than have the message refused.
const (
	maxHeaderName  = 256
	maxHeaderValue = 4096
)

// WithTracing adds OpenTelemetry's interceptor (otelconnect) to every
// call: a client span per call (a stream is one span), whose context the
// call carries to the server, with the global TracerProvider and
// propagator (see the package's tracing notes in tracing.go). It has no
// effect on what Producer and Runner do with message headers, which
// needs no option.
func WithTracing() Option { return func(o *options) { o.tracing = true } }

// tracingInterceptors is otelconnect's client interceptor with
// WithTracing (no metrics: the client records none), else nothing.
func tracingInterceptors(o options) []connect.Interceptor {
	if !o.tracing {
		return nil
	}
	ic, err := otelconnect.NewInterceptor(otelconnect.WithoutMetrics())
	if err != nil { // only for invalid options
		return nil
	}
	return []connect.Interceptor{ic}
}

// tracing is a Producer's or a Runner's tracer and propagator.
type tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	name   string                  // the spans' name: "chute publish q", "chute process q"
	dest   string                  // the queue or topic
	start  []trace.SpanStartOption // the span kind (made once: no allocation per message)
}

func newTracing(op, dest string, kind trace.SpanKind) tracing {
	return tracing{tracer: otel.Tracer(tracerName), prop: otel.GetTextMapPropagator(), name: "chute " + op + " " + dest,
		dest: dest, start: []trace.SpanStartOption{trace.WithSpanKind(kind)}}
}

// startPublish starts msg's producer span, a child of ctx, and writes its
// context into a copy of msg's headers (the caller's map is never
// changed), unless they carry a traceparent already. The span is nil when
// it records nothing.
func (t *tracing) startPublish(ctx context.Context, msg *chute.Message) trace.Span {
	if t.tracer == nil { // a Producer not made by NewProducer
		return nil
	}
	ctx, span := t.tracer.Start(ctx, t.name, t.start...)
	if _, ok := msg.Headers[headerTraceparent]; !ok && trace.SpanContextFromContext(ctx).IsValid() {
		c := headerCarrier{h: msg.Headers}
		t.prop.Inject(ctx, &c)
		msg.Headers = c.h
	}
	if !span.IsRecording() {
		return nil
	}
	span.SetAttributes(attrSystem.String("chute"), attrDestination.String(t.dest), attrOperation.String("send"),
		attrBodySize.Int(len(msg.Body)))
	if msg.ID != "" {
		span.SetAttributes(attrAppID.String(msg.ID))
	}
	return span
}

// endPublish ends a producer span with the message's outcome.
func endPublish(span trace.Span, res chute.PublishResult, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		span.SetAttributes(attrMessageID.String(strconv.FormatUint(res.Seq, 10)))
		if res.Duplicate {
			span.SetAttributes(attrDuplicate.Bool(true))
		}
	}
	span.End()
}

// startProcess starts the consumer span of a handler call on d: a child
// of the context in d's headers, if any, else of ctx.
func (t *tracing) startProcess(ctx context.Context, d *chute.Delivery, now time.Time) (context.Context, trace.Span) {
	if t.tracer == nil { // a Runner not made by a constructor
		return ctx, noop.Span{}
	}
	if len(d.Headers) > 0 {
		ctx = t.prop.Extract(ctx, propagation.MapCarrier(d.Headers))
	}
	ctx, span := t.tracer.Start(ctx, t.name, t.start...)
	if span.IsRecording() {
		span.SetAttributes(attrSystem.String("chute"), attrDestination.String(t.dest), attrOperation.String("process"),
			attrMessageID.String(strconv.FormatUint(d.Seq, 10)), attrDeliveries.Int(d.Deliveries),
			attrBodySize.Int(len(d.Body)))
		if d.ID != "" {
			span.SetAttributes(attrAppID.String(d.ID))
		}
		if !d.Published.IsZero() {
			span.SetAttributes(attrQueueWait.Float64(now.Sub(d.Published).Seconds()))
		}
	}
	return ctx, span
}

// startBatch starts the consumer span of a BatchHandler call: no parent
// beyond ctx, a link to each message's context.
func (t *tracing) startBatch(ctx context.Context, ds []chute.Delivery) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, noop.Span{}
	}
	ctx, span := t.tracer.Start(ctx, t.name, t.start...)
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(attrSystem.String("chute"), attrDestination.String(t.dest), attrOperation.String("process"),
		attrBatchCount.Int(len(ds)))
	for _, d := range ds {
		if len(d.Headers) == 0 {
			continue
		}
		sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier(d.Headers)))
		if sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attrMessageID.String(strconv.FormatUint(d.Seq, 10))}})
		}
	}
	return ctx, span
}

// endProcess ends a consumer span: with an error status if the handler
// failed.
func endProcess(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// headerCarrier writes a propagator's headers into a copy of a message's
// headers, made on the first write.
type headerCarrier struct {
	h      map[string]string
	copied bool
}

func (c *headerCarrier) Get(key string) string { return c.h[key] }

func (c *headerCarrier) Set(key, value string) {
	if key == "" || len(key) > maxHeaderName || len(value) > maxHeaderValue {
		return
	}
	if !c.copied {
		h := make(map[string]string, len(c.h)+2)
		maps.Copy(h, c.h)
		c.h, c.copied = h, true
	}
	c.h[key] = value
}

func (c *headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c.h))
	for k := range c.h {
		keys = append(keys, k)
	}
	return keys
}
