package wire

import (
	"errors"
	"testing"

	"github.com/chutemq/chute"
)

// TestLeaderErrorRoundTrip: a follower's refusal reaches the client with
// the leader's address, and matches ErrNotLeader.
func TestLeaderErrorRoundTrip(t *testing.T) {
	for _, addr := range []string{"http://127.0.0.1:7401", ""} {
		got := FromConnect(ToConnect(&chute.LeaderError{Addr: addr}))
		var le *chute.LeaderError
		if !errors.As(got, &le) || le.Addr != addr || !errors.Is(got, chute.ErrNotLeader) {
			t.Fatalf("%q came back as %v", addr, got)
		}
	}
	for _, e := range []error{chute.ErrOutcomeUnknown, chute.ErrNotReplicated} {
		if got := FromConnect(ToConnect(e)); !errors.Is(got, e) {
			t.Fatalf("%v came back as %v", e, got)
		}
	}
}
