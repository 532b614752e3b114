package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/wire"
	"github.com/chutemq/chute/server"
)

// startServer serves api with opts on a free port until the test ends,
// and returns the server (for Stats) and its address.
func startServer(t *testing.T, api chute.API, opts server.Options) (*server.Server, string) {
	t.Helper()
	return chutetest.Serve(t, api, opts)
}

// testTokens has one token per role; the admin one is given by hash.
func testTokens() []server.Token {
	sum := sha256.Sum256([]byte("admin-secret"))
	return []server.Token{
		{Name: "reader", Secret: "read-secret", Role: server.RoleRead},
		{Name: "producer", Secret: "produce-secret", Role: server.RoleProduce},
		{Name: "consumer", Secret: "consume-secret", Role: server.RoleConsume},
		{Name: "ops", SHA256: sum[:], Role: server.RoleAdmin},
	}
}

func dial(t *testing.T, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jsonLines decodes the JSON lines of a log with message msg.
func jsonLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// reason is the chute.v1.ErrorDetail reason of a call's error.
func reason(err error) string { return wire.Reason(err) }

// TestRoles: each role may make the calls of its role and those it
// includes, and gets PermissionDenied for the others; unary and streamed.
func TestRoles(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens()})
	ctx := chutetest.Ctx(t)
	admin := dial(t, addr, client.WithToken("admin-secret"))
	if err := admin.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(ctx, "t", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		need server.Role
		call func(c *client.Client, role string) error
	}{
		{"list queues", server.RoleRead, func(c *client.Client, _ string) error { _, err := c.Queues(ctx); return err }},
		{"queue stats", server.RoleRead, func(c *client.Client, _ string) error { _, err := c.QueueStats(ctx, "q"); return err }},
		{"peek", server.RoleRead, func(c *client.Client, _ string) error { _, err := c.Peek(ctx, "q", 1); return err }},
		{"server info", server.RoleRead, func(c *client.Client, _ string) error { _, err := c.ServerInfo(ctx); return err }},
		{"publish", server.RoleProduce, func(c *client.Client, _ string) error {
			_, err := c.Publish(ctx, "q", chute.Message{Body: []byte("x")})
			return err
		}},
		{"receive", server.RoleConsume, func(c *client.Client, _ string) error {
			_, err := c.Receive(ctx, "q", chute.ReceiveOptions{Wait: -1})
			return err
		}},
		{"ack", server.RoleConsume, func(c *client.Client, _ string) error {
			if err := c.Ack(ctx, "q", "not-a-receipt"); !errors.Is(err, chute.ErrInvalidReceipt) {
				return err
			}
			return nil // reached the broker
		}},
		{"create queue", server.RoleAdmin, func(c *client.Client, role string) error {
			return c.CreateQueue(ctx, "q-"+role, chute.QueueConfig{})
		}},
		{"subscribe", server.RoleAdmin, func(c *client.Client, role string) error {
			return c.Subscribe(ctx, "t", "sub-"+role, chute.SubscriptionConfig{})
		}},
		{"purge", server.RoleAdmin, func(c *client.Client, _ string) error { _, err := c.PurgeQueue(ctx, "q"); return err }},
		{"pause", server.RoleAdmin, func(c *client.Client, _ string) error { return c.PauseQueue(ctx, "q") }},
		{"resume", server.RoleAdmin, func(c *client.Client, _ string) error { return c.ResumeQueue(ctx, "q") }},
	}
	for _, tok := range testTokens() {
		secret := tok.Secret
		if tok.Role == server.RoleAdmin {
			secret = "admin-secret"
		}
		role := tok.Role.String()
		for _, proto := range []client.Protocol{client.ProtocolConnect, client.ProtocolGRPC} {
			c := dial(t, addr, client.WithToken(secret), client.WithProtocol(proto))
			for _, call := range calls {
				err := call.call(c, fmt.Sprintf("%s-%v", role, proto))
				allowed := tok.Role == server.RoleAdmin || tok.Role == call.need || call.need == server.RoleRead
				switch {
				case allowed && err != nil:
					t.Errorf("%s (%v): %s: %v, want it allowed", role, proto, call.name, err)
				case !allowed && connect.CodeOf(err) != connect.CodePermissionDenied:
					t.Errorf("%s (%v): %s: %v, want PermissionDenied", role, proto, call.name, err)
				}
			}
		}
	}

	// Streams: a producer token publishes through PublishStream; a read
	// token is refused at once, not retried for half a minute.
	for _, tc := range []struct {
		secret string
		ok     bool
	}{{"produce-secret", true}, {"read-secret", false}} {
		c := dial(t, addr, client.WithToken(tc.secret))
		p := client.NewProducer(c, "q", client.ProducerOptions{})
		f, err := p.Publish(ctx, chute.Message{Body: []byte("streamed")})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = f.Wait(wctx)
		cancel()
		switch {
		case tc.ok && err != nil:
			t.Errorf("producer with a produce token: %v", err)
		case !tc.ok && connect.CodeOf(err) != connect.CodePermissionDenied:
			t.Errorf("producer with a read token: %v, want PermissionDenied without retrying", err)
		}
		p.Close(ctx)
	}
	if st := srv.Stats(); st.PermissionDenied == 0 {
		t.Errorf("stats %+v: no refusal counted", st)
	}
	chutetest.Eventually(t, "in-flight bytes back to 0", func() bool { return srv.Stats().InflightBytes == 0 })
}

// TestQuota: a token's publish quota refuses unary publishes beyond its
// bucket (ResourceExhausted, reason QUOTA), slows a stream instead, and
// refills with time (a fake clock: no sleeps).
func TestQuota(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", nil)
	tokens := append(testTokens(), server.Token{Name: "limited", Secret: "limited-secret", Role: server.RoleProduce, Rate: 3})
	srv, addr := startServer(t, b, server.Options{Tokens: tokens, Clock: clock})
	ctx := chutetest.Ctx(t)
	if err := dial(t, addr, client.WithToken("admin-secret")).CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, client.WithToken("limited-secret"))
	refused := 0
	for range 5 {
		_, err := c.Publish(ctx, "q", chute.Message{Body: []byte("x")})
		switch {
		case err == nil:
		case connect.CodeOf(err) == connect.CodeResourceExhausted && reason(err) == server.ReasonQuota:
			refused++
		default:
			t.Fatalf("publish: %v, want success or QUOTA", err)
		}
	}
	if refused != 2 || srv.Stats().QuotaRefusals != 2 {
		t.Fatalf("%d of 5 publishes refused (stats: %d), want 2 beyond the bucket of 3", refused, srv.Stats().QuotaRefusals)
	}
	// Another token's publishes are not affected.
	if _, err := dial(t, addr, client.WithToken("produce-secret")).Publish(ctx, "q", chute.Message{}); err != nil {
		t.Fatalf("another token: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := c.Publish(ctx, "q", chute.Message{Body: []byte("x")}); err != nil {
		t.Fatalf("after a second: %v", err)
	}

	// A stream over quota waits (a quota timer is armed) rather than fails.
	p := client.NewProducer(c, "q", client.ProducerOptions{BatchSize: 1})
	defer p.Close(ctx)
	var fs []*client.Future
	for range 3 {
		f, err := p.Publish(ctx, chute.Message{Body: []byte("s")})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	chutetest.Eventually(t, "a streamed publish waiting for its quota", func() bool { return clock.Pending() > 0 })
	select {
	case <-fs[2].Done():
		t.Fatal("the third streamed publish went through over quota")
	default:
	}
	allDone := func() bool {
		for _, f := range fs {
			select {
			case <-f.Done():
			default:
				return false
			}
		}
		return true
	}
	for !allDone() {
		clock.Advance(time.Second)
		chutetest.Eventually(t, "the stream going on, or waiting again", func() bool { return allDone() || clock.Pending() > 0 })
	}
	for i, f := range fs {
		if _, err := f.Wait(ctx); err != nil {
			t.Fatalf("streamed publish %d: %v", i, err)
		}
	}
}

// quotaAPI fails the first publishes with the server's QUOTA refusal (or
// another error), as a server over quota would.
type quotaAPI struct {
	chute.API
	mu    sync.Mutex
	fails int
	err   error
	calls int
}

func (q *quotaAPI) Publish(ctx context.Context, target string, msgs ...chute.Message) ([]chute.PublishResult, error) {
	q.mu.Lock()
	q.calls++
	fail := q.calls <= q.fails
	q.mu.Unlock()
	if fail {
		return nil, q.err
	}
	return q.API.Publish(ctx, target, msgs...)
}

// TestProducerRetriesQuota: the Go client's Producer backs off and
// retries a publish refused for quota, and gives up at once on a refusal
// that retrying cannot cure.
func TestProducerRetriesQuota(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := chutetest.Ctx(t)
	if err := b.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	quotaErr := connect.NewError(connect.CodeResourceExhausted, errors.New("publish quota exceeded"))
	d, _ := connect.NewErrorDetail(&chutev1.ErrorDetail{Reason: server.ReasonQuota})
	quotaErr.AddDetail(d)
	tooLarge := connect.NewError(connect.CodeResourceExhausted, errors.New("too large"))
	d, _ = connect.NewErrorDetail(&chutev1.ErrorDetail{Reason: server.ReasonRequestTooLarge})
	tooLarge.AddDetail(d)
	for _, tc := range []struct {
		name      string
		err       error
		ok        bool
		wantCalls int
	}{
		{"quota", quotaErr, true, 4},
		{"permission denied", connect.NewError(connect.CodePermissionDenied, errors.New("role read")), false, 1},
		{"unauthenticated", connect.NewError(connect.CodeUnauthenticated, errors.New("no token")), false, 1},
		{"too large", tooLarge, false, 1},
	} {
		api := &quotaAPI{API: b, fails: 3, err: tc.err}
		p := client.NewProducer(api, "q", client.ProducerOptions{RetryDelay: time.Millisecond, RetryMaxDelay: 2 * time.Millisecond})
		f, err := p.Publish(ctx, chute.Message{Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Wait(ctx)
		p.Close(ctx)
		if (err == nil) != tc.ok || api.calls != tc.wantCalls {
			t.Errorf("%s: %v after %d calls, want ok=%v after %d", tc.name, err, api.calls, tc.ok, tc.wantCalls)
		}
	}
}

// TestAudit: every admin action, allowed, failed or refused for its
// role, is one audit line with token name, remote address, action,
// target and result; other calls write none, and no secret is written.
func TestAudit(t *testing.T) {
	var audit syncBuffer
	b := chutetest.MustOpen(t, "", nil)
	_, addr := startServer(t, b, server.Options{Tokens: testTokens(), Token: "single-secret",
		AuditLogger: slog.New(slog.NewJSONHandler(&audit, nil))})
	ctx := chutetest.Ctx(t)
	ops := dial(t, addr, client.WithToken("admin-secret"))
	single := dial(t, addr, client.WithToken("single-secret"))
	reader := dial(t, addr, client.WithToken("read-secret"))
	producer := dial(t, addr, client.WithToken("produce-secret"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ops.CreateQueue(ctx, "aq", chute.QueueConfig{}))
	must(single.CreateTopic(ctx, "at", chute.TopicConfig{}))
	must(ops.Subscribe(ctx, "at", "as", chute.SubscriptionConfig{}))
	_, err := producer.Publish(ctx, "aq", chute.Message{Body: []byte("not audited")})
	must(err)
	_, err = reader.Queues(ctx)
	must(err)
	if err := ops.DeleteQueue(ctx, "missing"); !errors.Is(err, chute.ErrQueueNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if err := reader.DeleteQueue(ctx, "aq"); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("reader deletes: %v", err)
	}
	_, err = ops.PurgeQueue(ctx, "aq")
	must(err)

	want := []struct{ token, action, target, result string }{
		{"ops", "CreateQueue", "aq", "ok"},
		{"token", "CreateTopic", "at", "ok"},
		{"ops", "Subscribe", "at/as", "ok"},
		{"ops", "DeleteQueue", "missing", "not_found"},
		{"reader", "DeleteQueue", "", "permission_denied"},
		{"ops", "PurgeQueue", "aq", "ok"},
	}
	got := jsonLines(t, audit.String(), "audit")
	if len(got) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(got), len(want), audit.String())
	}
	for i, w := range want {
		g := got[i]
		if g["token"] != w.token || g["action"] != w.action || g["target"] != w.target || g["result"] != w.result {
			t.Errorf("audit line %d: %v, want %+v", i, g, w)
		}
		if remote, _ := g["remote"].(string); !strings.HasPrefix(remote, "127.0.0.1:") {
			t.Errorf("audit line %d: remote %v", i, g["remote"])
		}
		if w.result != "ok" && g["error"] == "" {
			t.Errorf("audit line %d: no error text", i)
		}
	}
	for _, secret := range []string{"admin-secret", "single-secret", "read-secret"} {
		if strings.Contains(audit.String(), secret) {
			t.Errorf("the audit log holds the secret %q", secret)
		}
	}
}

// TestAuthFailures: failed authentications are counted, each one, and
// logged at most once a second per client address with the number
// suppressed (a fake clock: no sleeps); the token sent is never logged.
func TestAuthFailures(t *testing.T) {
	var log syncBuffer
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", nil)
	srv, addr := startServer(t, b, server.Options{Tokens: testTokens(), Clock: clock,
		Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	ctx := chutetest.Ctx(t)
	for i := range 10 {
		opts := []client.Option{client.WithToken("wrong-secret")}
		if i%2 == 1 {
			opts = nil // no token at all
		}
		if _, err := dial(t, addr, opts...).Queues(ctx); !client.IsUnauthenticated(err) {
			t.Fatalf("call %d: %v, want unauthenticated", i, err)
		}
	}
	if n := srv.Stats().AuthFailures; n != 10 {
		t.Fatalf("AuthFailures %d, want 10", n)
	}
	if lines := jsonLines(t, log.String(), "authentication failed"); len(lines) != 1 {
		t.Fatalf("%d lines logged for 10 failures in the same second, want 1:\n%s", len(lines), log.String())
	}
	clock.Advance(time.Second)
	if _, err := dial(t, addr).Publish(ctx, "q", chute.Message{}); !client.IsUnauthenticated(err) {
		t.Fatalf("publish without a token: %v", err)
	}
	lines := jsonLines(t, log.String(), "authentication failed")
	if len(lines) != 2 || lines[1]["suppressed"] != float64(9) || lines[1]["level"] != "WARN" {
		t.Fatalf("after a second: %v, want a second line counting 9 suppressed", lines)
	}
	if strings.Contains(log.String(), "wrong-secret") {
		t.Fatal("the log holds the token the client sent")
	}
}
