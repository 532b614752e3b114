package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchCommands runs each bench briefly: they must work and report,
// whatever the figures (performance is never asserted in a test).
func TestBenchCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "publish", "--data", dir, "--publishers", "1,4", "--duration", "200ms"}, "chute embedded publish 4×256B"},
		{[]string{"bench", "pubsub", "--data", dir, "--publishers", "2", "--consumers", "2", "--duration", "200ms"}, "publish+receive+ack"},
		{[]string{"bench", "recovery", "--data", dir, "--messages", "3000"}, "reopen after a crash"},
		{[]string{"bench", "backlog", "--data", dir, "--messages", "3000", "--sync", "never"}, "chute: resident memory"},
	} {
		out, err := runCLI(t, c.args...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Fatalf("%v: %v\n%s", c.args, err, out)
		}
	}
	if _, err := runCLI(t, "bench", "publish", "--sync", "sometimes"); exitCode(err) != 2 {
		t.Fatalf("bad sync policy: exit %d", exitCode(err))
	}
}

// binaryModules are the modules the chute binary may link. The list is
// short on purpose: a new module in the shipped binary is a decision,
// taken by adding it here in the same change (issue 7: the NATS client,
// with nkeys and x/crypto, came in through the benchmark comparison, which
// now lives in the bench/ module). Test-only requirements (goleak, rapid)
// do not belong here.
var binaryModules = map[string]bool{
	"github.com/chutemq/chute":             true,
	"connectrpc.com/connect":               true,
	"github.com/dustin/go-humanize":        true,
	"github.com/gofrs/flock":               true, // internal/vfs: the data directory's lock
	"github.com/klauspost/compress":        true,
	"github.com/schollz/progressbar/v3":    true,
	"github.com/mitchellh/colorstring":     true, // progressbar's
	"github.com/rivo/uniseg":               true, // progressbar's
	"github.com/spf13/cobra":               true,
	"github.com/spf13/pflag":               true,
	"github.com/inconshreveable/mousetrap": true, // cobra's, on Windows
	"github.com/xhit/go-str2duration/v2":   true,
	"golang.org/x/sys":                     true,
	"golang.org/x/term":                    true,
	"google.golang.org/protobuf":           true,
	// cmd/chute: config files in YAML, TOML or JSON (issue 7), and what
	// koanf and its parsers need.
	"github.com/knadh/koanf/v2":                 true,
	"github.com/knadh/koanf/maps":               true,
	"github.com/knadh/koanf/providers/rawbytes": true,
	"github.com/knadh/koanf/parsers/json":       true,
	"github.com/knadh/koanf/parsers/yaml":       true,
	"github.com/knadh/koanf/parsers/toml/v2":    true,
	"go.yaml.in/yaml/v3":                        true, // also --print-config
	"github.com/pelletier/go-toml/v2":           true,
	"github.com/go-viper/mapstructure/v2":       true,
	"github.com/mitchellh/copystructure":        true,
	"github.com/mitchellh/reflectwalk":          true,
	// server: token buckets for quotas, a weighted semaphore for the bytes
	// in flight (issue 8).
	"golang.org/x/time": true,
	"golang.org/x/sync": true,
	// serve --cluster-peers: replication on etcd's Raft (issue 12), and
	// the protobuf runtimes its messages (raftpb) are generated for.
	"go.etcd.io/raft/v3":         true,
	"github.com/gogo/protobuf":   true,
	"github.com/golang/protobuf": true,
	// chute bench run's latency histograms (issue 11).
	"github.com/HdrHistogram/hdrhistogram-go": true,
	// internal/schedule: cron expressions of periodic schedules (issue 13).
	"github.com/robfig/cron/v3": true,
	// server: /metrics (Prometheus), grpc.health.v1 and reflection
	// (issue 9), and what client_golang needs.
	"connectrpc.com/grpchealth":           true,
	"connectrpc.com/grpcreflect":          true,
	"github.com/prometheus/client_golang": true,
	"github.com/prometheus/client_model":  true,
	"github.com/prometheus/common":        true,
	"github.com/prometheus/procfs":        true,
	"github.com/beorn7/perks":             true,
	"github.com/cespare/xxhash/v2":        true,
	"github.com/munnerz/goautoneg":        true,
	"github.com/pandatix/go-abnf":         true,
	// server: OpenTelemetry tracing (issue 9; off unless OTEL_ variables
	// ask for it, server/tracing.go): the API, the SDK, the OTLP/HTTP and
	// console exporters, otelconnect, and what they need.
	"go.opentelemetry.io/otel":                                        true, // the API: globals, propagation
	"go.opentelemetry.io/otel/trace":                                  true, // the API's spans
	"go.opentelemetry.io/otel/metric":                                 true, // otelconnect's instruments (none recorded: WithoutMetrics)
	"go.opentelemetry.io/otel/log":                                    true, // imported by the otel API's global package
	"go.opentelemetry.io/otel/sdk":                                    true, // the TracerProvider, sampler, resource
	"go.opentelemetry.io/auto/sdk":                                    true, // the trace API's hook for eBPF auto-instrumentation
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace":               true, // OTEL_TRACES_EXPORTER=otlp
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp": true,
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace":           true, // OTEL_TRACES_EXPORTER=console
	"go.opentelemetry.io/proto/otlp":                                  true, // the OTLP protobuf messages
	"connectrpc.com/otelconnect":                                      true, // the span of each API call
	"connectrpc.com/connect/v2":                                       true, // otelconnect v0.12 serves connect v1 and v2
	"github.com/go-logr/logr":                                         true, // the otel API's internal logger
	"github.com/go-logr/stdr":                                         true,
	"github.com/google/uuid":                                          true, // the SDK resource's service.instance.id
	"github.com/cenkalti/backoff/v5":                                  true, // otlptracehttp's retries
	// otlptracehttp links gRPC although it never speaks it: its shared
	// configuration package (internal/otlpconfig) names gRPC credential
	// types, and the OTLP collector package carries the gRPC service and
	// its HTTP gateway (open-telemetry/opentelemetry-go#2579, #8385).
	"google.golang.org/grpc":                    true,
	"github.com/grpc-ecosystem/grpc-gateway/v2": true,
	"google.golang.org/genproto/googleapis/api": true,
	"google.golang.org/genproto/googleapis/rpc": true,
	"golang.org/x/net":                          true, // gRPC's HTTP/2
	"golang.org/x/text":                         true, // x/net's IDNA
}

// TestBinaryModules fails if the chute binary links a module outside
// binaryModules, and above all any of NATS's: comparisons with other
// brokers belong in the bench/ module (go -C bench run ./cmd/chute-compare).
func TestBinaryModules(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		if seen[m] {
			continue
		}
		seen[m] = true
		switch {
		case strings.Contains(m, "nats-io"):
			t.Errorf("the chute binary links %s: comparisons with NATS belong in the bench/ module", m)
		case !binaryModules[m]:
			t.Errorf("the chute binary links %s, which is not in binaryModules: add it there if it is meant to ship", m)
		}
	}
	if !seen["github.com/chutemq/chute"] {
		t.Fatalf("go list printed no chute module:\n%s", out)
	}
}
