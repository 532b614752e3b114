package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientDeps: importing the client costs little. It must not pull in
// the broker (journal, file system layer, engine): a program that talks to
// a server over the network builds on every platform Go supports and
// links none of the storage code (issue 7). Of OpenTelemetry it may use
// the API only (issue 9): the SDK, the exporters and gRPC are the
// application's choice, not the client's.
func TestClientDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/chutemq/chute/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %s", len(deps), out)
	}
	for _, p := range deps {
		for _, banned := range []string{"/internal/journal", "/internal/vfs", "/internal/engine", "chute/broker",
			"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/proto",
			"google.golang.org/grpc"} {
			if strings.Contains(p, banned) {
				t.Errorf("the client depends on %s", p)
			}
		}
	}
}
