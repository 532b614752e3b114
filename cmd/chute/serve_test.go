package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/spf13/pflag"

	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/serveproc"
	"github.com/chutemq/chute/internal/version"
)

// TestServeUnits: sizes and durations take units on the command line, and
// still take plain bytes; the library gets the numbers.
func TestServeUnits(t *testing.T) {
	isolateEnv(t)
	f, err := serveSettings(t, "--memory-budget", "128MiB", "--segment-size", "1.5MiB", "--max-message-size", "2MiB",
		"--max-request-size", "8388608", "--sync-interval", "2s", "--shutdown-timeout", "1d")
	if err != nil {
		t.Fatal(err)
	}
	bo, so, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	if bo.MemoryBudget != 128<<20 || bo.SegmentSize != 3<<19 || bo.MaxMessageSize != 2<<20 || so.MaxRequestBytes != 8<<20 ||
		bo.SyncInterval != 2*time.Second || f.shutdownWait != 24*time.Hour {
		t.Fatalf("broker %+v, server %+v, shutdown %v", bo, so, f.shutdownWait)
	}
	if f, err := serveSettings(t, "--memory-budget", "none"); err != nil || f.memBudget != -1 {
		t.Fatalf("--memory-budget none: %d, %v (want -1: no bodies cached)", f.memBudget, err)
	}
	for _, args := range [][]string{
		{"--memory-budget", "lots"},
		{"--segment-size", "-1"},
		{"--segment-size", "10KiB"},      // below the journal's minimum
		{"--max-message-size", "100MiB"}, // above the broker's maximum
		{"--sync-interval", "100"},       // a duration needs its unit
		{"--shutdown-timeout", "forever"},
	} {
		if _, err := serveSettings(t, append(args, "--print-config")...); exitCode(err) != 2 {
			t.Errorf("serve %s: %v (exit %d), want a usage error", strings.Join(args, " "), err, exitCode(err))
		}
	}
}

// TestServeDashboardFlags: the dashboard is on by default; --dashboard-hosts
// gives its host names; --dashboard=false turns it off.
func TestServeDashboardFlags(t *testing.T) {
	isolateEnv(t)
	for _, c := range []struct {
		args  []string
		on    bool
		hosts []string
	}{
		{nil, true, nil},
		{[]string{"--dashboard-hosts", "a.example, b"}, true, []string{"a.example", "b"}},
		{[]string{"--dashboard=false"}, false, nil},
	} {
		f, err := serveSettings(t, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		_, so, err := f.options()
		if err != nil || (so.Dashboard != nil) != c.on || so.Dashboard != nil && !slices.Equal(so.Dashboard.Hosts, c.hosts) {
			t.Errorf("serve %v: dashboard %+v, %v; want on %v, hosts %q", c.args, so.Dashboard, err, c.on, c.hosts)
		}
	}
	f, err := serveSettings(t, "--dashboard=false", "--dashboard-hosts", "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.options(); exitCode(err) != 2 {
		t.Errorf("--dashboard=false --dashboard-hosts: %v, want a usage error", err)
	}
}

// runTree runs the whole command tree with args and returns stdout and
// stderr.
func runTree(t *testing.T, ctx context.Context, stderr io.Writer, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetIn(strings.NewReader(""))
	root.SetOut(&out)
	root.SetErr(stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestServePrintConfig: --print-config prints every setting as it stands
// after file, environment and flags, as YAML the config file takes back,
// with the token masked, and opens no data directory.
func TestServePrintConfig(t *testing.T) {
	isolateEnv(t)
	cfg := writeFile(t, "chute.yaml", "memory-budget: 128MiB\nmax-batch: 10\nlisten: 127.0.0.1:1111\n")
	t.Setenv("CHUTE_MAX_BATCH", "70")
	t.Setenv("CHUTE_TOKEN", "s3cret")
	data := filepath.Join(t.TempDir(), "data")
	var stderr bytes.Buffer
	out, err := runTree(t, context.Background(), &stderr, "serve", "--print-config", "--config", cfg, "--data", data,
		"--sync-interval", "7d", "--log-format", "json")
	if err != nil {
		t.Fatalf("serve --print-config: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--print-config touched the data directory: %v", err)
	}
	if strings.Contains(out, "s3cret") || stderr.Len() != 0 {
		t.Fatalf("the token shows:\n%s\nstderr: %s", out, stderr.String())
	}
	got, err := yaml.Parser().Unmarshal([]byte(out))
	if err != nil {
		t.Fatalf("not YAML: %v\n%s", err, out)
	}
	want := map[string]any{
		"listen": "127.0.0.1:1111", "memory-budget": "128 MiB", "max-batch": 70, "data": data,
		"token": "****", "sync-interval": "1w", "sync": "always", "insecure": false, "log-format": "json",
		"segment-size": "64 MiB", "shutdown-timeout": "30s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v (%T), want %v (%T)", k, got[k], got[k], v, v)
		}
	}
	for _, k := range []string{"config", "print-config", "help"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s printed", k)
		}
	}
	settable := 0
	newServeCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if !notSettable[f.Name] {
			settable++
		}
	})
	if len(got) != settable || settable < 17 {
		t.Errorf("%d settings printed, want all %d:\n%s", len(got), settable, out)
	}

	// The output is a config file that gives the same settings (without a
	// token, which it only masks).
	os.Unsetenv("CHUTE_TOKEN")
	os.Unsetenv("CHUTE_MAX_BATCH")
	again := writeFile(t, "printed.yaml", strings.Replace(out, `token: '****'`, `token: ""`, 1))
	out2, err := runTree(t, context.Background(), &stderr, "serve", "--print-config", "--config", again)
	if err != nil {
		t.Fatalf("printed config as a config file: %v", err)
	}
	if want := strings.Replace(out, `token: '****'`, `token: ""`, 1); out2 != want {
		t.Errorf("printed config read back:\n%s\nwant\n%s", out2, want)
	}

	// Settings are checked before printing.
	if _, err := runTree(t, context.Background(), io.Discard, "serve", "--print-config", "--sync", "sometimes"); exitCode(err) != 2 {
		t.Errorf("--print-config --sync sometimes: %v (exit %d), want 2", err, exitCode(err))
	}
}

// logLines collects serve's log output and tells when serve is ready.
type logLines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	serving chan string // the address, once
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if addr, ok := serveproc.ServingAddr(bytes.TrimSpace(p)); ok { // slog writes a line per Write
		select {
		case l.serving <- addr:
		default:
		}
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// serveJSON runs chute serve in-process on a free loopback port and a
// new data directory, logging JSON, with args added, and returns once it
// logged its address. stop ends it and returns its stdout and error.
func serveJSON(t *testing.T, args ...string) (addr string, logs *logLines, stop func() (string, error)) {
	t.Helper()
	logs = &logLines{serving: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runTree(t, ctx, logs, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json"}, args...)...)
		done <- result{out, err}
	}()
	stopped := false
	stop = func() (string, error) {
		if stopped {
			return "", nil
		}
		stopped = true
		cancel()
		r := <-done
		return r.out, r.err
	}
	t.Cleanup(func() { stop() })
	select {
	case addr = <-logs.serving:
	case r := <-done:
		stopped = true
		cancel()
		t.Fatalf("serve ended before serving: %v\n%s", r.err, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not log its address within 30s\n%s", logs)
	}
	return addr, logs, stop
}

// TestServeLogsJSON runs chute serve in-process with --log-format json:
// stdout stays empty, every line on stderr is a JSON log record, the
// "chute serving" line carries the address, connections are not logged
// at info, /healthz and chute version report the build.
func TestServeLogsJSON(t *testing.T) {
	isolateEnv(t)
	addr, logs, stop := serveJSON(t)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Status, Version string }
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Version != version.Get().Version {
		t.Fatalf("/healthz: HTTP %d %+v %v", resp.StatusCode, h, err)
	}
	resp, err = http.Get("http://" + addr + "/") // the dashboard, on by default
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(logs.String(), `"dashboard":"http://`+addr+`/"`) {
		t.Errorf("the serving line has no dashboard URL:\n%s", logs)
	}
	out, err := runTree(t, chutetest.Ctx(t), io.Discard, "version", "--json", "--server", addr)
	if err != nil {
		t.Fatal(err)
	}
	rep := parseJSON[versionReport](t, out)
	if rep.Server == nil || !rep.Server.Reachable || rep.Server.Version != version.Get().Version || rep.Server.StartedAt.IsZero() {
		t.Fatalf("chute version against serve: %s", out)
	}

	if out, err := stop(); err != nil || out != "" {
		t.Fatalf("serve: %v; stdout %q", err, out)
	}
	msgs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level == "" || rec.Msg == "" {
			t.Fatalf("not a JSON log record: %q (%v)", line, err)
		}
		msgs[rec.Msg] = true
		if strings.HasPrefix(rec.Msg, "connection") {
			t.Errorf("logged at %s: %s", rec.Level, line)
		}
	}
	for _, m := range []string{serveproc.ServingMsg, "shutting down", "stopped"} {
		if !msgs[m] {
			t.Errorf("no %q line in\n%s", m, logs)
		}
	}
}

// TestServeErrorLogged: an error that stops serve is a log line too (JSON
// with --log-format json), with the exit status it always had.
func TestServeErrorLogged(t *testing.T) {
	isolateEnv(t)
	var stderr bytes.Buffer
	_, err := runTree(t, context.Background(), &stderr, "serve", "--listen", "0.0.0.0:0", "--data", t.TempDir(), "--log-format", "json")
	if exitCode(err) != 2 || !errors.As(err, new(loggedError)) {
		t.Fatalf("serve on 0.0.0.0 without a token: %v (exit %d), want a logged usage error", err, exitCode(err))
	}
	var rec struct{ Level, Msg, Err string }
	if err := json.Unmarshal(stderr.Bytes(), &rec); err != nil || rec.Level != "ERROR" || !strings.Contains(rec.Err, "token") {
		t.Fatalf("stderr %q: %+v %v", stderr.String(), rec, err)
	}
}
