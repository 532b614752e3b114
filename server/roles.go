package server

import (
	"fmt"
	"strings"

	"github.com/chutemq/chute/gen/chute/v1/chutev1connect"
)

// Role is what a token may do. The roles are nested the way operators
// hand out credentials: every role reads; produce adds publishing, consume
// adds receiving and settling; admin does everything, including what
// changes the broker's shape (queues, topics, subscriptions) or destroys
// messages (purge, redrive).
type Role int

const (
	// RoleNone is the zero Role: it allows nothing. A token must name one
	// of the roles below.
	RoleNone Role = iota
	// RoleRead: queue and topic statistics and lists, peek, server info
	// (and, later, metrics).
	RoleRead
	// RoleProduce: read, and publish (unary and streamed).
	RoleProduce
	// RoleConsume: read, and receive, consume, ack, nack, extend.
	RoleConsume
	// RoleAdmin: everything.
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "none", RoleRead: "read", RoleProduce: "produce", RoleConsume: "consume", RoleAdmin: "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole parses "read", "produce", "consume" or "admin" (any case).
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if r != int(RoleNone) && strings.EqualFold(strings.TrimSpace(s), name) {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("role %q: use read, produce, consume or admin", s)
}

// allows reports whether a token of role r may make a call that needs
// role need.
func (r Role) allows(need Role) bool {
	switch {
	case r == RoleNone || need == RoleNone:
		return false
	case r == RoleAdmin, r == need:
		return true
	case need == RoleRead: // produce and consume read too
		return r == RoleProduce || r == RoleConsume
	}
	return false
}

// procedure is what the server knows about one RPC before reading its
// body: the role it needs, whether it is an admin action that goes to the
// audit log, and whether it publishes (and so counts against a token's
// quota).
type procedure struct {
	need    Role
	audit   bool
	publish bool
	stream  bool // the client streams (checked against the descriptors too)
}

// procedures maps every RPC of both services to the role it needs. It is
// the only place that decides who may call what; TestEveryProcedureHasARole
// checks it against the generated service descriptors, so a new RPC cannot
// be served before it is given a role here. A procedure missing from it
// needs admin (fail closed).
var procedures = map[string]procedure{
	// MessageService.
	chutev1connect.MessageServicePublishProcedure:       {need: RoleProduce, publish: true},
	chutev1connect.MessageServicePublishStreamProcedure: {need: RoleProduce, publish: true, stream: true},
	chutev1connect.MessageServiceReceiveProcedure:       {need: RoleConsume},
	chutev1connect.MessageServiceConsumeProcedure:       {need: RoleConsume, stream: true},
	chutev1connect.MessageServiceAckProcedure:           {need: RoleConsume},
	chutev1connect.MessageServiceNackProcedure:          {need: RoleConsume},
	chutev1connect.MessageServiceExtendProcedure:        {need: RoleConsume},
	chutev1connect.MessageServicePeekProcedure:          {need: RoleRead},
	// A transaction both publishes and settles. It needs consume, the
	// stricter of the two (it may read and destroy messages; produce only
	// adds them), its messages count against the publish quota, and a
	// consume token may publish in one only together with settling a
	// delivery it holds (server/tx.go): the outputs of work it consumed.
	chutev1connect.MessageServiceCommitProcedure: {need: RoleConsume, publish: true},

	// AdminService: reading.
	chutev1connect.AdminServiceGetQueueProcedure:      {need: RoleRead},
	chutev1connect.AdminServiceListQueuesProcedure:    {need: RoleRead},
	chutev1connect.AdminServiceListTopicsProcedure:    {need: RoleRead},
	chutev1connect.AdminServiceGetServerInfoProcedure: {need: RoleRead},
	chutev1connect.AdminServiceListConsumersProcedure: {need: RoleRead},
	chutev1connect.AdminServiceListAlertsProcedure:    {need: RoleRead},
	chutev1connect.AdminServiceGetMessageProcedure:    {need: RoleRead},
	chutev1connect.AdminServiceListSchedulesProcedure: {need: RoleRead},

	// AdminService: admin actions, audited.
	chutev1connect.AdminServiceCreateQueueProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceUpdateQueueProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceDeleteQueueProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServicePurgeQueueProcedure:  {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceCreateTopicProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceDeleteTopicProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceSubscribeProcedure:   {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceUnsubscribeProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceRedriveProcedure:     {need: RoleAdmin, audit: true},
	// Pausing and resuming change what every consumer of a queue gets.
	chutev1connect.AdminServicePauseQueueProcedure:  {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceResumeQueueProcedure: {need: RoleAdmin, audit: true},

	// Cancelling messages destroys them, as a purge does.
	chutev1connect.AdminServiceCancelMessagesProcedure: {need: RoleAdmin, audit: true},
	// Redriving chosen dead letters is a Redrive.
	chutev1connect.AdminServiceRedriveMessagesProcedure: {need: RoleAdmin, audit: true},
	// Schedules publish on their own: creating one is like publishing
	// forever, so all of them are admin actions.
	chutev1connect.AdminServiceCreateScheduleProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceDeleteScheduleProcedure: {need: RoleAdmin, audit: true},
	chutev1connect.AdminServicePauseScheduleProcedure:  {need: RoleAdmin, audit: true},
	chutev1connect.AdminServiceResumeScheduleProcedure: {need: RoleAdmin, audit: true},
	// A backup copies every message the broker holds.
	chutev1connect.AdminServiceBackupProcedure: {need: RoleAdmin, audit: true},
}

// procedureOf returns the table entry for an HTTP path; an unknown path
// (a new RPC not yet in the table, or a typo that will be a 404) needs
// admin and is audited.
func procedureOf(path string) procedure {
	if p, ok := procedures[path]; ok {
		return p
	}
	return procedure{need: RoleAdmin, audit: true}
}

// actionName is the short name of a procedure for logs: "CreateQueue".
func actionName(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}
