// Package peerstest starts the comparison's peers for tests.
package peerstest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chutemq/chute/bench/peers"
)

// Start starts a server of kind for t with package peers and stops it when
// t ends (a failed stop fails t), or skips t when the server is not
// installed and CHUTE_COMPARE_REQUIRED is unset (with it set, Start
// installs the server or t fails: CI sets it).
func Start(t testing.TB, kind string) *peers.Peer {
	t.Helper()
	if _, err := peers.Installed(kind); err != nil && os.Getenv("CHUTE_COMPARE_REQUIRED") == "" {
		t.Skipf("%v (set CHUTE_COMPARE_REQUIRED=1 to install it and require it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := peers.Start(ctx, kind, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop %s: %v", kind, err)
		}
	})
	return p
}
