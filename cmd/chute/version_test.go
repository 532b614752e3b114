package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/version"
	"github.com/chutemq/chute/server"
)

// TestVersionCommand: chute version prints this build and the server's,
// as text and as JSON.
func TestVersionCommand(t *testing.T) {
	s := startCLIServer(t, server.Options{Info: server.Info{Version: "v7.7.7", Commit: "feedface", GoVersion: "go1.99.0"}})
	local := version.Get()
	out := s.must("version")
	for _, want := range []string{"chute " + local.Version + "\n", "  go:       " + local.GoVersion + "\n",
		"server: " + s.addr + "\n", "  version:  v7.7.7\n", "  commit:   feedface\n", "  go:       go1.99.0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	rep := parseJSON[versionReport](t, s.must("version", "--json"))
	sv := rep.Server
	if rep.Client.Info != local || rep.Client.Platform == "" || sv == nil || !sv.Reachable || sv.Address != s.addr ||
		sv.Version != "v7.7.7" || sv.Commit != "feedface" || sv.GoVersion != "go1.99.0" || sv.Error != "" ||
		time.Since(sv.StartedAt) < 0 || time.Since(sv.StartedAt) > time.Hour {
		t.Fatalf("version --json: %+v %+v", rep.Client, sv)
	}
}

// TestVersionWithoutServer: with no server to answer, version prints the
// client's and says so, and succeeds; a server that refuses the token is a
// failure with the usual exit status; one too old for GetServerInfo is not.
func TestVersionWithoutServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := &testServer{t: t, addr: ln.Addr().String()}
	ln.Close()
	out := gone.must("version")
	if !strings.Contains(out, "chute "+version.Get().Version+"\n") || !strings.Contains(out, "server: unreachable ("+gone.addr+")") {
		t.Errorf("unreachable server:\n%s", out)
	}
	rep := parseJSON[versionReport](t, gone.must("version", "--json"))
	if rep.Server == nil || rep.Server.Reachable || !strings.HasPrefix(rep.Server.Error, "unreachable") || rep.Client.Version == "" {
		t.Errorf("unreachable server, JSON: %+v", rep)
	}

	locked := startCLIServer(t, server.Options{Token: "s3cret"})
	out, err = locked.run("version")
	if exitCode(err) != 7 || !strings.Contains(out, "chute "+version.Get().Version) {
		t.Errorf("wrong token: exit %d (%v), want 7 after the client's version:\n%s", exitCode(err), err, out)
	}
	locked.wantExit(0, "version", "--token", "s3cret")

	// A server from before GetServerInfo answers 404, which is Unimplemented.
	old := httptest.NewUnstartedServer(http.NotFoundHandler())
	old.Config.Protocols = new(http.Protocols)
	old.Config.Protocols.SetHTTP1(true)
	old.Config.Protocols.SetUnencryptedHTTP2(true)
	old.Start()
	defer old.Close()
	oldCLI := &testServer{t: t, addr: old.Listener.Addr().String()}
	if out := oldCLI.must("version"); !strings.Contains(out, "too old") {
		t.Errorf("server without GetServerInfo:\n%s", out)
	}
}

// TestRootVersionFlag: chute --version is one line with the version that
// -ldflags -X sets.
func TestRootVersionFlag(t *testing.T) {
	old := version.Version
	t.Cleanup(func() { version.Version = old })
	version.Version = "v1.2.3-test"
	out, err := runTree(t, t.Context(), nil, "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "chute v1.2.3-test (") || strings.Count(out, "\n") != 1 {
		t.Fatalf("chute --version: %q", out)
	}
	if out, err := runTree(t, t.Context(), nil, "version", "--server", "no-port"); !errors.As(err, new(usageError)) || out != "" {
		t.Fatalf("version with a bad --server: %v, %q", err, out)
	}
}
