package chute

import "time"

// MaxSchedules bounds the periodic schedules of one broker.
const MaxSchedules = 100_000

// ScheduleConfig is a periodic schedule (docs/schedules.md): a message
// that the broker publishes to Target at every slot of a cron expression
// or a fixed interval. Exactly one of Cron and Every is set.
type ScheduleConfig struct {
	// Target is the queue or topic the message goes to. It must exist when
	// the schedule is created; a firing whose target is gone by then is
	// skipped and counted (ScheduleInfo.Skipped, LastError).
	Target string
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), 6 with seconds first, or a descriptor (@hourly, @daily,
	// @weekly, @monthly, @yearly, "@every 30s").
	Cron string
	// Every is a fixed interval (whole seconds, at least 1 s); slots are
	// aligned to the creation second.
	Every time.Duration
	// TimeZone is the IANA zone the cron fields are read in ("" = UTC).
	TimeZone string
	// Jitter delays each firing by a fixed, per-slot amount in [0, Jitter)
	// (at most 1 h; for Every, less than Every).
	Jitter time.Duration
	// Missed is what happens to slots that fell while the broker was down
	// (or the schedule paused): "skip" (the default, "") fires none of
	// them, "once" fires the latest of them once.
	Missed string
	// Message is what every firing publishes. Body, Headers, Priority,
	// TTL and Key apply, within Publish's limits. ID, Delay, DeliverAt and
	// Session are refused (ErrInvalidConfig): firings are de-duplicated by
	// their slot already, and a fixed ID would make every firing after the
	// first a duplicate; a delay is the schedule's job.
	Message Message
}

// ScheduleInfo is a schedule and its progress.
type ScheduleInfo struct {
	Name    string
	Config  ScheduleConfig
	Created time.Time
	Paused  bool
	// LastSlot is the last slot fired (zero if none yet); NextSlot the one
	// to fire next and NextFire when it fires (its slot plus jitter); both
	// zero when paused or when no slot is left.
	LastSlot, NextSlot, NextFire time.Time
	// Fired counts the firings stored since the schedule was created
	// (durable). Skipped counts, since the broker started, the slots
	// whose firing failed for good (target gone or full) and were passed
	// over; LastError is the latest such failure ("" for none).
	Fired, Skipped int64
	LastError      string
}
