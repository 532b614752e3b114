package broker_test

import (
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/apitest"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestAPI runs the chute.API conformance suite against the embedded
// broker, in memory.
func TestAPI(t *testing.T) {
	apitest.Run(t, func(t *testing.T) chute.API { return chutetest.MustOpen(t, "", nil) })
}
