package server

import (
	"sync/atomic"

	"github.com/chutemq/chute/alerts"
)

// Stats is a snapshot of the server's own counters, beside the broker's
// (chute.Broker.Stats): what it refused before a call reached the broker,
// and the request bytes it holds. Counters only grow.
type Stats struct {
	// AuthFailures counts calls refused for a missing or unknown token.
	AuthFailures uint64
	// PermissionDenied counts calls refused because the token's role does
	// not allow them.
	PermissionDenied uint64
	// QuotaRefusals counts unary publishes refused over their token's
	// quota (streamed publishes wait instead).
	QuotaRefusals uint64
	// InflightRefusals counts calls refused because the in-flight byte
	// budget (the server's or the connection's) stayed full.
	InflightRefusals uint64
	// TooLarge counts requests refused for being larger than the request
	// limit before they were read (or once the limit was read).
	TooLarge uint64
	// UnauthenticatedCloses counts connections closed for making no
	// authenticated call within AuthTimeout.
	UnauthenticatedCloses uint64
	// InflightBytes is the request bytes reserved now, of
	// InflightBytesLimit (Options.MaxInflightBytes).
	InflightBytes      int64
	InflightBytesLimit int64
	// Connections is the connections open now; ConnectionsAccepted counts
	// every connection accepted.
	Connections         int64
	ConnectionsAccepted uint64
	// Requests counts the calls that reached a handler, by procedure and
	// outcome, sorted (refused calls are counted above instead).
	Requests []RequestCount
	// Queues is the active consumers and producers of every queue that
	// has any, sorted by name (activity.go).
	Queues []QueueClients
	// Alerts is the alerts firing now, oldest first (nil when alerts are
	// off).
	Alerts []alerts.Alert
}

// stats are the live counters behind Stats.
type stats struct {
	authFailures          atomic.Uint64
	permissionDenied      atomic.Uint64
	quotaRefusals         atomic.Uint64
	inflightRefusals      atomic.Uint64
	tooLarge              atomic.Uint64
	unauthenticatedCloses atomic.Uint64
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		AuthFailures:          s.stats.authFailures.Load(),
		PermissionDenied:      s.stats.permissionDenied.Load(),
		QuotaRefusals:         s.stats.quotaRefusals.Load(),
		InflightRefusals:      s.stats.inflightRefusals.Load(),
		TooLarge:              s.stats.tooLarge.Load(),
		UnauthenticatedCloses: s.stats.unauthenticatedCloses.Load(),
		InflightBytes:         s.inflight.used.Load(),
		InflightBytesLimit:    s.inflight.size,
		Connections:           s.open.Load(),
		ConnectionsAccepted:   s.accepted.Load(),
		Requests:              s.reqs.snapshot(),
		Queues:                s.QueueClients(),
	}
	if s.alerter != nil {
		st.Alerts = s.alerter.eval.Firing()
	}
	return st
}
