package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
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

// TestIsTransientInStream: a status inside a stream (FromStatus, no
// Connect error) is transient by its code, as the same error in a unary
// call is; a cluster's leader changes are transient returned bare too
// (an embedded API); a refusal is not. (A stream's "outcome unknown"
// was not transient: a Producer's batches failed during an election.)
func TestIsTransientInStream(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{chute.ErrOutcomeUnknown, true},
		{chute.ErrNotLeader, true},
		{&chute.LeaderError{Addr: "http://127.0.0.1:1"}, true},
		{chute.ErrClosed, true},
		{chute.ErrQueueFull, true},
		{chute.ErrInvalidMessage, false},
		{chute.ErrOutOfOrder, false},
		{chute.ErrQueueNotFound, false},
	} {
		code, reason := Classify(c.err)
		in := FromStatus(&chutev1.Status{Code: code.String(), Reason: reason, Message: c.err.Error()})
		if got := IsTransient(in); got != c.want {
			t.Errorf("%v in a stream (%s, %s): transient %v, want %v", c.err, code, reason, got, c.want)
		}
		if got := IsTransient(ToConnect(c.err)); got != c.want {
			t.Errorf("%v in a unary call: transient %v, want %v", c.err, got, c.want)
		}
	}
	if !IsTransient(chute.ErrOutcomeUnknown) || !IsTransient(fmt.Errorf("publish: %w", chute.ErrNotLeader)) {
		t.Error("a leader change returned bare by an embedded API is not transient")
	}
}
