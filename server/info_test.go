package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/version"
	"github.com/chutemq/chute/server"
)

// sick is an API that reports itself unhealthy, as a broker does after a
// failed journal write.
type sick struct {
	chute.API
	err error
}

func (s sick) Healthy() error { return s.err }

func getHealthz(t *testing.T, addr string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/healthz content type %q", ct)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/healthz body: %v", err)
	}
	return resp.StatusCode, body
}

// TestHealthz: 200 {"status":"ok","version":...} while healthy, 503 with
// the reason once not; no token needed either way.
func TestHealthz(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	addr := chutetest.StartServer(t, b, server.Options{Token: "s3cret"})
	code, body := getHealthz(t, addr)
	if code != http.StatusOK || body["status"] != "ok" || body["version"] != version.Get().Version || len(body) != 2 {
		t.Fatalf("healthy: HTTP %d %v", code, body)
	}
	addr = chutetest.StartServer(t, sick{b, errors.New("journal write: disk full")}, server.Options{Info: server.Info{Version: "v2.0.0"}})
	code, body = getHealthz(t, addr)
	if code != http.StatusServiceUnavailable || body["status"] != "unhealthy" || body["version"] != "v2.0.0" || body["error"] != "journal write: disk full" {
		t.Fatalf("unhealthy: HTTP %d %v", code, body)
	}
}

// TestServerInfo: GetServerInfo reports the build (this binary's by
// default) and when the server started, behind the token like every call.
func TestServerInfo(t *testing.T) {
	ctx := chutetest.Ctx(t)
	b := chutetest.MustOpen(t, "", nil)
	before := time.Now()
	addr := chutetest.StartServer(t, b, server.Options{})
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.ServerInfo(ctx)
	v := version.Get()
	if err != nil || info.Version != v.Version || info.Commit != v.Commit || info.GoVersion != v.GoVersion ||
		info.StartedAt.Before(before.Truncate(time.Second)) || info.StartedAt.After(time.Now()) {
		t.Fatalf("ServerInfo: %+v, %v; want %+v, started after %v", info, err, v, before)
	}

	set := server.Info{Version: "v1.2.3", Commit: "0123456789abcdef", GoVersion: "go1.26.0"}
	addr = chutetest.StartServer(t, b, server.Options{Info: set, Token: "s3cret"})
	locked, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Close()
	if _, err := locked.ServerInfo(ctx); !client.IsUnauthenticated(err) {
		t.Fatalf("ServerInfo without the token: %v", err)
	}
	ok, err := client.Dial(addr, client.WithToken("s3cret"), client.WithJSON())
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	info, err = ok.ServerInfo(ctx)
	if err != nil || info.Version != set.Version || info.Commit != set.Commit || info.GoVersion != set.GoVersion {
		t.Fatalf("ServerInfo: %+v, %v; want %+v", info, err, set)
	}
}
