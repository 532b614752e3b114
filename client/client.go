// Package client is chute's Go client. A *Client satisfies chute.API, the
// interface of the embedded broker, so application code and tests switch
// between in-process and network with one line:
//
//	var api chute.API
//	api, err = broker.Open("data", nil)            // embedded
//	api, err = client.Dial("127.0.0.1:7420")      // over the network
//
// On top of any chute.API, Producer batches publishes (size or linger),
// keeps a bounded window in flight, retries transient errors in a
// producer session so that nothing is stored twice; Runner consumes with a
// handler: concurrency, prefetch, automatic lease extension, ack on
// success, nack with back-off on error, and a circuit breaker. Over the
// network they use the streaming calls (PublishStream, Consume).
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
	"github.com/chutemq/chute/internal/wire"
)

// DefaultAddr is where chute serve listens unless told otherwise.
const DefaultAddr = "127.0.0.1:7420"

// Protocol selects the wire protocol.
type Protocol int

const (
	// ProtocolConnect is the Connect protocol (binary protobuf) — the default.
	ProtocolConnect Protocol = iota
	// ProtocolGRPC is gRPC.
	ProtocolGRPC
	// ProtocolGRPCWeb is gRPC-Web.
	ProtocolGRPCWeb
)

type options struct {
	token       string
	tls         *tls.Config
	httpClient  *http.Client
	protocol    Protocol
	json        bool
	compression *bool // nil: on unless the server is on this machine
	maxWait     time.Duration
	clientID    string   // "": a random one per Client
	tracing     bool     // WithTracing: otelconnect's interceptor (tracing.go)
	endpoints   []string // WithEndpoints: a cluster's other nodes (failover.go)
}

// Option configures Dial.
type Option func(*options)

// WithToken sends a bearer token with every call.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithClientID names the client to the server (header Chute-Client-Id):
// `chute queue consumers` and the consumer counts group a client's calls
// and streams under it. Default: a random ID per Client, so that each
// Client counts once. Give every process its own (a host name and a
// process ID, a pod name); at most 128 bytes.
func WithClientID(id string) Option { return func(o *options) { o.clientID = id } }

// WithTLS connects with TLS (HTTP/2 over TLS) with cfg. An "https://"
// address without a TLS option uses TLS with the system's roots.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithRootCAs checks the server's certificate against the CAs in pool
// instead of the system's (a private CA, a self-signed certificate). It
// implies TLS. After WithTLS it sets RootCAs on a copy of that config; a
// WithTLS given later replaces the whole config.
func WithRootCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.tls = tlsCopy(o.tls); o.tls.RootCAs = pool }
}

// WithInsecureSkipVerify connects with TLS without checking the server's
// certificate. UNSAFE: anyone on the path can read and change the traffic,
// tokens included; for tests and first steps only. It implies TLS and, like
// WithRootCAs, changes a copy of an earlier WithTLS config.
func WithInsecureSkipVerify() Option {
	return func(o *options) { o.tls = tlsCopy(o.tls); o.tls.InsecureSkipVerify = true }
}

// tlsCopy returns a copy of cfg that an option may change without touching
// the caller's config, or a new config when there is none.
func tlsCopy(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return &tls.Config{}
	}
	return cfg.Clone()
}

// WithHTTPClient replaces the HTTP client (it must speak HTTP/2 for the
// streaming calls and for gRPC).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithProtocol selects Connect (default), gRPC or gRPC-Web.
func WithProtocol(p Protocol) Option { return func(o *options) { o.protocol = p } }

// WithJSON uses JSON instead of binary protobuf (Connect protocol only;
// slower; handy when watching the traffic).
func WithJSON() Option { return func(o *options) { o.json = true } }

// WithCompression turns compression of messages above 1 KiB (zstd, with
// gzip as the fallback the server also accepts) on or off. By default it is
// on, except for a server on a loopback address, where there is no
// bandwidth to save and the CPU is better spent elsewhere.
func WithCompression(on bool) Option { return func(o *options) { o.compression = &on } }

// WithoutCompression is WithCompression(false).
func WithoutCompression() Option { return WithCompression(false) }

// Client talks to a chute server. It is safe for concurrent use.
type Client struct {
	msg   chutev1connect.MessageServiceClient
	admin chutev1connect.AdminServiceClient
	// consume opens Consume streams whose responses are decoded by
	// wire.ProtoCodec (nil with JSON, which uses msg's).
	consume *connect.Client[chutev1.ConsumeRequest, wire.ConsumeFrame]
	http    *http.Client
	opts    options
}

var _ chute.API = (*Client)(nil)

// Dial returns a client for the server at addr ("host:port", or a URL
// "http://host:port" / "https://host:port"). It does not connect until the
// first call; connections are made (and remade after failures) as needed.
func Dial(addr string, opts ...Option) (*Client, error) {
	o := options{maxWait: 20 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.tls == nil && strings.HasPrefix(addr, "https://") {
		// An https address means TLS with the system's roots: without a
		// TLS config the transport would speak HTTP/1.1, where gRPC and
		// the bidirectional streams do not work.
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	base, err := baseURL(addr, o.tls != nil)
	if err != nil {
		return nil, err
	}
	hc := o.httpClient
	if hc == nil {
		hc = &http.Client{Transport: newTransport(o.tls)}
	}
	// Calls go to the failover's target (failover.go): a copy of the
	// HTTP client whose transport rewrites each request to it.
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	fo, err := newFailover(rt, addr, o.endpoints, o.tls != nil)
	if err != nil {
		return nil, err
	}
	hc2 := *hc
	hc2.Transport = fo
	hc = &hc2
	if o.clientID == "" {
		o.clientID = randomClientID()
	}
	copts := []connect.ClientOption{
		connect.WithInterceptors(tracingInterceptors(o)...), // outermost: the span covers the call
		connect.WithInterceptors(&tokenInterceptor{token: o.token, clientID: o.clientID}),
		connect.WithInterceptors(fo.interceptor()), // innermost: a retry is one call to the others
	}
	switch o.protocol {
	case ProtocolGRPC:
		copts = append(copts, connect.WithGRPC())
	case ProtocolGRPCWeb:
		copts = append(copts, connect.WithGRPCWeb())
	}
	if o.json {
		copts = append(copts, connect.WithProtoJSON())
	}
	compress := !isLoopback(base)
	if o.compression != nil {
		compress = *o.compression
	}
	if compress {
		copts = append(copts, wire.ClientCompression()...)
	} else {
		copts = append(copts, connect.WithAcceptCompression("gzip", nil, nil)) // ask for none
	}
	c := &Client{
		msg:   chutev1connect.NewMessageServiceClient(hc, base, copts...),
		admin: chutev1connect.NewAdminServiceClient(hc, base, copts...),
		http:  hc,
		opts:  o,
	}
	if !o.json {
		c.consume = connect.NewClient[chutev1.ConsumeRequest, wire.ConsumeFrame](hc,
			base+chutev1connect.MessageServiceConsumeProcedure, append(copts, connect.WithCodec(wire.ProtoCodec{}))...)
	}
	return c, nil
}

// consumeStream is a Consume stream whose responses are ConsumeFrames.
type consumeStream interface {
	Send(*chutev1.ConsumeRequest) error
	Receive() (*wire.ConsumeFrame, error)
	CloseRequest() error
	CloseResponse() error
}

// openConsume opens a Consume stream: decoded by wire.ProtoCodec, or with
// JSON as protobuf messages, converted.
func (c *Client) openConsume(ctx context.Context) consumeStream {
	if c.consume != nil {
		return c.consume.CallBidiStream(ctx)
	}
	return jsonConsume{c.msg.Consume(ctx)}
}

// jsonConsume converts a JSON Consume stream's responses.
type jsonConsume struct {
	*connect.BidiStreamForClient[chutev1.ConsumeRequest, chutev1.ConsumeResponse]
}

func (s jsonConsume) Receive() (*wire.ConsumeFrame, error) {
	r, err := s.BidiStreamForClient.Receive()
	if err != nil {
		return nil, err
	}
	return wire.FrameOf(r), nil
}

func baseURL(addr string, tls bool) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/"), nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("server address %q: want host:port or a URL: %w", addr, err)
	}
	if tls {
		return "https://" + addr, nil
	}
	return "http://" + addr, nil
}

// isLoopback reports whether a base URL names this machine.
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport speaks HTTP/2: over TLS when configured, else cleartext
// HTTP/2 with prior knowledge (h2c), which is what the server offers.
func newTransport(cfg *tls.Config) *http.Transport {
	var p http.Protocols
	if cfg != nil {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return &http.Transport{
		Protocols:           &p,
		TLSClientConfig:     cfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: 15 * time.Second, // notice a dead server on an idle stream
			PingTimeout:     10 * time.Second,
		},
	}
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// randomClientID is a Client's default ID: 16 random hex digits.
func randomClientID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokenInterceptor adds the headers every call carries: the token, and
// the client ID.
type tokenInterceptor struct{ token, clientID string }

func (t *tokenInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if t.token != "" {
			req.Header().Set("Authorization", "Bearer "+t.token)
		}
		req.Header().Set(clientIDHeader, t.clientID)
		return next(ctx, req)
	}
}

// clientIDHeader is server.ClientIDHeader (the client does not import
// the server).
const clientIDHeader = "Chute-Client-Id"

func (t *tokenInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if t.token != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+t.token)
		}
		conn.RequestHeader().Set(clientIDHeader, t.clientID)
		return conn
	}
}

func (t *tokenInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Publish implements chute.API.
func (c *Client) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	req, err := wire.PublishRequest(target, msgs)
	if err != nil {
		return nil, err
	}
	resp, err := c.msg.Publish(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	return wire.ResultsFromPB(resp.Msg.GetResults()), nil
}

// Receive implements chute.API. A long wait is made of successive waits
// of at most 20 s (servers cap them), until a message, opts.Wait or ctx.
func (c *Client) Receive(ctx context.Context, queue string, opts chute.ReceiveOptions) ([]chute.Delivery, error) {
	var deadline time.Time
	if opts.Wait > 0 {
		deadline = time.Now().Add(opts.Wait)
	}
	for {
		wait := c.opts.maxWait
		switch {
		case opts.Wait < 0:
			wait = 0
		case !deadline.IsZero():
			wait = min(wait, time.Until(deadline))
		}
		resp, err := c.msg.Receive(ctx, connect.NewRequest(&chutev1.ReceiveRequest{
			Queue: queue, Max: int32(opts.Max), Lease: wire.DurPB(opts.Lease), Wait: wire.DurPB(max(wait, 0))}))
		if err != nil {
			return nil, wire.FromConnect(err)
		}
		ds := resp.Msg.GetDeliveries()
		if len(ds) > 0 || opts.Wait < 0 || !deadline.IsZero() && !time.Now().Before(deadline) {
			return wire.DeliveriesFromPB(ds), nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Ack implements chute.API.
func (c *Client) Ack(ctx context.Context, queue string, receipts ...string) error {
	resp, err := c.msg.Ack(ctx, connect.NewRequest(&chutev1.AckRequest{Queue: queue, Receipts: receipts}))
	if err != nil {
		return wire.FromConnect(err)
	}
	return wire.FailuresFromPB(resp.Msg.GetFailed())
}

// Nack implements chute.API.
func (c *Client) Nack(ctx context.Context, queue string, nacks ...chute.Nack) error {
	resp, err := c.msg.Nack(ctx, connect.NewRequest(&chutev1.NackRequest{Queue: queue, Nacks: wire.NacksToPB(nacks)}))
	if err != nil {
		return wire.FromConnect(err)
	}
	return wire.FailuresFromPB(resp.Msg.GetFailed())
}

// Extend implements chute.API.
func (c *Client) Extend(ctx context.Context, queue string, lease time.Duration, receipts ...string) error {
	resp, err := c.msg.Extend(ctx, connect.NewRequest(&chutev1.ExtendRequest{Queue: queue, Lease: wire.DurPB(lease), Receipts: receipts}))
	if err != nil {
		return wire.FromConnect(err)
	}
	return wire.FailuresFromPB(resp.Msg.GetFailed())
}

// Peek implements chute.API.
func (c *Client) Peek(ctx context.Context, queue string, max int) ([]chute.Delivery, error) {
	resp, err := c.msg.Peek(ctx, connect.NewRequest(&chutev1.PeekRequest{Queue: queue, Max: int32(max)}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	return wire.DeliveriesFromPB(resp.Msg.GetDeliveries()), nil
}

// CreateQueue implements chute.API.
func (c *Client) CreateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	_, err := c.admin.CreateQueue(ctx, connect.NewRequest(&chutev1.CreateQueueRequest{Name: name, Config: wire.QueueConfigToPB(cfg)}))
	return wire.FromConnect(err)
}

// UpdateQueue implements chute.API.
func (c *Client) UpdateQueue(ctx context.Context, name string, cfg chute.QueueConfig) error {
	_, err := c.admin.UpdateQueue(ctx, connect.NewRequest(&chutev1.UpdateQueueRequest{Name: name, Config: wire.QueueConfigToPB(cfg)}))
	return wire.FromConnect(err)
}

// DeleteQueue implements chute.API.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	_, err := c.admin.DeleteQueue(ctx, connect.NewRequest(&chutev1.DeleteQueueRequest{Name: name}))
	return wire.FromConnect(err)
}

// PurgeQueue implements chute.API.
func (c *Client) PurgeQueue(ctx context.Context, name string) (int64, error) {
	resp, err := c.admin.PurgeQueue(ctx, connect.NewRequest(&chutev1.PurgeQueueRequest{Name: name}))
	if err != nil {
		return 0, wire.FromConnect(err)
	}
	return resp.Msg.GetPurged(), nil
}

// QueueStats implements chute.API.
func (c *Client) QueueStats(ctx context.Context, name string) (chute.QueueStats, error) {
	resp, err := c.admin.GetQueue(ctx, connect.NewRequest(&chutev1.GetQueueRequest{Name: name}))
	if err != nil {
		return chute.QueueStats{}, wire.FromConnect(err)
	}
	return wire.QueueStatsFromPB(resp.Msg.GetQueue()), nil
}

// Queues implements chute.API.
func (c *Client) Queues(ctx context.Context) ([]chute.QueueStats, error) {
	resp, err := c.admin.ListQueues(ctx, connect.NewRequest(&chutev1.ListQueuesRequest{}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	out := make([]chute.QueueStats, len(resp.Msg.GetQueues()))
	for i, q := range resp.Msg.GetQueues() {
		out[i] = wire.QueueStatsFromPB(q)
	}
	return out, nil
}

// CreateTopic implements chute.API.
func (c *Client) CreateTopic(ctx context.Context, name string, cfg chute.TopicConfig) error {
	pb := wire.TopicStatsToPB(chute.TopicStats{Config: cfg}).GetConfig()
	_, err := c.admin.CreateTopic(ctx, connect.NewRequest(&chutev1.CreateTopicRequest{Name: name, Config: pb}))
	return wire.FromConnect(err)
}

// DeleteTopic implements chute.API.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	_, err := c.admin.DeleteTopic(ctx, connect.NewRequest(&chutev1.DeleteTopicRequest{Name: name}))
	return wire.FromConnect(err)
}

// Topics implements chute.API.
func (c *Client) Topics(ctx context.Context) ([]chute.TopicStats, error) {
	resp, err := c.admin.ListTopics(ctx, connect.NewRequest(&chutev1.ListTopicsRequest{}))
	if err != nil {
		return nil, wire.FromConnect(err)
	}
	out := make([]chute.TopicStats, len(resp.Msg.GetTopics()))
	for i, t := range resp.Msg.GetTopics() {
		out[i] = wire.TopicStatsFromPB(t)
	}
	return out, nil
}

// Subscribe implements chute.API.
func (c *Client) Subscribe(ctx context.Context, topic, name string, sub chute.SubscriptionConfig) error {
	_, err := c.admin.Subscribe(ctx, connect.NewRequest(&chutev1.SubscribeRequest{Topic: topic, Name: name,
		Filter: sub.Filter, Queue: wire.QueueConfigToPB(sub.Queue)}))
	return wire.FromConnect(err)
}

// Unsubscribe implements chute.API.
func (c *Client) Unsubscribe(ctx context.Context, topic, name string) error {
	_, err := c.admin.Unsubscribe(ctx, connect.NewRequest(&chutev1.UnsubscribeRequest{Topic: topic, Name: name}))
	return wire.FromConnect(err)
}

// Redrive implements chute.API.
func (c *Client) Redrive(ctx context.Context, dlq string, max int64) (int64, error) {
	resp, err := c.admin.Redrive(ctx, connect.NewRequest(&chutev1.RedriveRequest{DeadLetterQueue: dlq, Max: max}))
	if err != nil {
		return 0, wire.FromConnect(err)
	}
	return resp.Msg.GetMoved(), nil
}

// IsUnauthenticated reports whether err is a refusal for a missing or
// wrong token.
func IsUnauthenticated(err error) bool { return connect.CodeOf(err) == connect.CodeUnauthenticated }

// ServerInfo identifies the build a server runs.
type ServerInfo struct {
	Version   string    // "v1.2.3", a module version, or "(devel)"
	Commit    string    // VCS revision; empty when unknown
	GoVersion string    // "go1.26.0"
	StartedAt time.Time // when the server started
}

// ServerInfo asks the server which build it runs and since when. A server
// that predates the call answers with connect.CodeUnimplemented.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	resp, err := c.admin.GetServerInfo(ctx, connect.NewRequest(&chutev1.GetServerInfoRequest{}))
	if err != nil {
		return ServerInfo{}, wire.FromConnect(err)
	}
	m := resp.Msg
	info := ServerInfo{Version: m.GetVersion(), Commit: m.GetCommit(), GoVersion: m.GetGoVersion()}
	if m.GetStartedAt() != nil {
		info.StartedAt = m.GetStartedAt().AsTime()
	}
	return info, nil
}

// Backup asks the server for a consistent copy of its journal (the admin
// call behind `chute backup --server`) and hands every chunk to fn, in
// order: file after file, each from offset 0 with no gap, manifest.json
// last; size is the whole file's. data is valid only during the call. An
// error from fn ends the backup. A backup that ends without its manifest
// is incomplete: broker.BackupDir, which `chute backup` writes it with,
// checks every file against the manifest. A server that predates the
// call answers with connect.CodeUnimplemented.
func (c *Client) Backup(ctx context.Context, fn func(file string, offset, size int64, data []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.admin.Backup(ctx, connect.NewRequest(&chutev1.BackupRequest{}))
	if err != nil {
		return wire.FromConnect(err)
	}
	defer stream.Close()
	for stream.Receive() {
		m := stream.Msg()
		if err := fn(m.GetFile(), m.GetOffset(), m.GetSize(), m.GetData()); err != nil {
			return err
		}
	}
	return wire.FromConnect(stream.Err())
}

// ClientID is the ID the client sends in Chute-Client-Id.
func (c *Client) ClientID() string { return c.opts.clientID }

// QueueClient is one client active on a queue (see Consumers).
type QueueClient struct {
	ClientID string // empty: the client sent none; Address identifies it
	Address  string // the address of its latest call
	Consumer bool
	Producer bool
	// ConsumeStreams and PublishStreams are its streams open now; Leases
	// the leases its Consume streams hold (unary receives are not
	// counted).
	ConsumeStreams, PublishStreams int
	Leases                         int64
	LastSeen                       time.Time
	// PublishRate and ReceiveRate: messages per second it published to the
	// queue and was delivered from it, over the last minute.
	PublishRate, ReceiveRate float64
}

// QueueConsumers is the answer of Consumers.
type QueueConsumers struct {
	// Consumers and Producers count the active clients of each kind: a
	// client with a stream open on the queue, or a unary call on it in
	// the last 60 s.
	Consumers, Producers int
	Clients              []QueueClient // consumers first
}

// Consumers asks the server who consumes from and produces to queue now
// (the admin call behind `chute queue consumers`). A server that predates
// the call answers with connect.CodeUnimplemented.
func (c *Client) Consumers(ctx context.Context, queue string) (QueueConsumers, error) {
	resp, err := c.admin.ListConsumers(ctx, connect.NewRequest(&chutev1.ListConsumersRequest{Queue: queue}))
	if err != nil {
		return QueueConsumers{}, wire.FromConnect(err)
	}
	m := resp.Msg
	out := QueueConsumers{Consumers: int(m.GetConsumers()), Producers: int(m.GetProducers())}
	for _, q := range m.GetClients() {
		qc := QueueClient{ClientID: q.GetClientId(), Address: q.GetAddress(), Consumer: q.GetConsumer(),
			Producer: q.GetProducer(), ConsumeStreams: int(q.GetConsumeStreams()),
			PublishStreams: int(q.GetPublishStreams()), Leases: q.GetLeases(),
			PublishRate: q.GetPublishRate(), ReceiveRate: q.GetReceiveRate()}
		if q.GetLastSeen() != nil {
			qc.LastSeen = q.GetLastSeen().AsTime()
		}
		out.Clients = append(out.Clients, qc)
	}
	return out, nil
}

// Alert is one alert rule firing (or having fired) on the server.
type Alert struct {
	Rule     string
	Queue    string // empty for a broker-wide rule
	Severity string // "critical", "warning" or "info"
	Status   string // "firing" or "resolved"
	Figure   string // "depth", "confirm_p99", ... (latencies in seconds)
	// Value is the figure when the alert fired, Current its latest value.
	Value, Current, Threshold float64
	// Since: the condition began to hold; Started: the alert fired;
	// Resolved: it resolved (zero while it fires).
	Since, Started, Resolved time.Time
	Summary                  string
}

// Alerts is the answer of Alerts.
type Alerts struct {
	Enabled  bool    // false: the server evaluates no alerts
	Firing   []Alert // oldest first
	Resolved []Alert // the latest resolved, newest first
}

// Alerts asks the server for its firing and recently resolved alerts (the
// admin call behind `chute alerts ls`). A server that predates the call
// answers with connect.CodeUnimplemented.
func (c *Client) Alerts(ctx context.Context) (Alerts, error) {
	resp, err := c.admin.ListAlerts(ctx, connect.NewRequest(&chutev1.ListAlertsRequest{}))
	if err != nil {
		return Alerts{}, wire.FromConnect(err)
	}
	out := Alerts{Enabled: resp.Msg.GetEnabled()}
	for _, a := range resp.Msg.GetFiring() {
		out.Firing = append(out.Firing, alertFromPB(a))
	}
	for _, a := range resp.Msg.GetResolved() {
		out.Resolved = append(out.Resolved, alertFromPB(a))
	}
	return out, nil
}

func alertFromPB(a *chutev1.Alert) Alert {
	ts := func(t interface {
		AsTime() time.Time
		IsValid() bool
	}) time.Time {
		if !t.IsValid() {
			return time.Time{}
		}
		return t.AsTime()
	}
	return Alert{Rule: a.GetRule(), Queue: a.GetQueue(), Severity: a.GetSeverity(), Status: a.GetStatus(),
		Figure: a.GetFigure(), Value: a.GetValue(), Current: a.GetCurrent(), Threshold: a.GetThreshold(),
		Since: ts(a.GetSince()), Started: ts(a.GetStarted()), Resolved: ts(a.GetResolved()), Summary: a.GetSummary()}
}
