// Package apitest is chute's conformance suite for chute.API: the checks
// that every implementation — the embedded *broker.Broker, the network
// *client.Client over each protocol, a real `chute serve` process — must
// pass, written against the interface only.
//
// Each check is a subtest with an API of its own (from the caller's
// newAPI) and names of its own, so the suite also runs against one shared
// broker (see Suite.Prefix). It covers competing consumers, fan-out with
// filters, delayed and priority delivery, nack with back-off, dead letters
// and redrive, de-duplication (message IDs, producer sessions), ordering
// keys, leases (extend, expiry, unstarted returns),
// peek, purge, limits and the typed errors.
//
// Time is real: the checks use short delays (100–300 ms) and never sleep
// to synchronise. A check that a message is held back asserts only what
// the clock proves — a message returned before its due time is a failure,
// one returned after it is not — so a slow machine cannot fail a correct
// broker, and an early delivery always fails.
//
// Wiring it up:
//
//	func TestAPI(t *testing.T) {
//		apitest.Run(t, func(t *testing.T) chute.API { return chutetest.MustOpen(t, "", nil) })
//	}
package apitest
