package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/schedule"
	"github.com/chutemq/chute/internal/text"
)

// ScheduleDefOf checks a config and turns it into the engine's definition
// (CreateSchedule checks the spec, the target and the message's ranges);
// maxHeaders and maxSize bound its message as CheckMessage does.
func ScheduleDefOf(cfg chute.ScheduleConfig, maxHeaders, maxSize int) (ScheduleDef, error) {
	bad := func(format string, args ...any) (ScheduleDef, error) {
		return ScheduleDef{}, fmt.Errorf("%w: schedule: %s", chute.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	m := &cfg.Message
	switch {
	case m.ID != "":
		return bad("message ID %s: firings are de-duplicated by slot; a fixed ID would make every firing after the first a duplicate", text.Quote(m.ID))
	case m.Delay != 0 || !m.DeliverAt.IsZero():
		return bad("a delay or deliver-at time: the schedule decides when the message goes")
	case m.Session != "" || m.SessionSeq != 0:
		return bad("a producer session: firings use the schedule's own")
	}
	if err := chute.ValidateName(cfg.Target); err != nil {
		return ScheduleDef{}, err
	}
	missed, err := schedule.ParseMissedPolicy(cfg.Missed)
	if err != nil {
		return ScheduleDef{}, fmt.Errorf("%w: %w", chute.ErrInvalidConfig, err)
	}
	if err := CheckMessage(m, maxHeaders, maxSize); err != nil {
		if errors.Is(err, chute.ErrMessageTooLarge) {
			return ScheduleDef{}, err
		}
		return bad("message: %v", err)
	}
	if m.TTL > chute.MaxTTL {
		return bad("message TTL %v above %v", m.TTL, chute.MaxTTL)
	}
	return ScheduleDef{
		Target: cfg.Target,
		Spec:   schedule.Spec{Cron: cfg.Cron, Every: cfg.Every, TimeZone: cfg.TimeZone, Jitter: cfg.Jitter, Missed: missed},
		Prio:   uint8(m.Priority), TTL: m.TTL, Key: m.Key, Headers: m.Headers, Body: m.Body,
	}, nil
}

// ScheduleConfigOf is a definition as chute shows it.
func ScheduleConfigOf(d *ScheduleDef) chute.ScheduleConfig {
	return chute.ScheduleConfig{
		Target: d.Target, Cron: d.Spec.Cron, Every: d.Spec.Every, TimeZone: d.Spec.TimeZone,
		Jitter: d.Spec.Jitter, Missed: d.Spec.Missed.String(),
		Message: chute.Message{Body: d.Body, Headers: d.Headers, Priority: int(d.Prio), TTL: d.TTL, Key: d.Key},
	}
}

// ScheduleInfoOf is what chute shows of schedule st: its definition and
// progress, and from set (the timer heap of whoever fires it; nil: none)
// and sc (its compiled form, nil if it could not compile) when it fires
// next. Skipped and LastError are the caller's to fill in.
func ScheduleInfoOf(st ScheduleState, set *schedule.Set, sc *schedule.Schedule) chute.ScheduleInfo {
	info := chute.ScheduleInfo{Name: st.Name, Config: ScheduleConfigOf(&st.Def), Created: time.Unix(0, st.Created),
		Paused: st.Paused, Fired: st.Fired}
	if st.Last != 0 {
		info.LastSlot = schedule.SlotTime(st.Last)
	}
	if set == nil {
		return info
	}
	if s, ok := set.Status(st.Name); ok && !st.Paused {
		info.NextSlot, info.NextFire = s.Slot, s.FireAt
		// A firing stored but not yet durable is in flight in the Set:
		// the next slot is the one after it.
		if s.InFlight && sc != nil && st.Last != 0 && !s.Slot.After(info.LastSlot) {
			info.NextSlot = sc.Next(info.LastSlot)
			info.NextFire = time.Time{}
			if !info.NextSlot.IsZero() {
				info.NextFire = sc.FireAt(info.NextSlot)
			}
		}
	}
	return info
}

// AddSchedule compiles schedule st and adds it to set, as it stands (its
// last slot, paused or not); an error says it cannot fire (it compiled
// when created: a time zone missing from this host's database, say).
func AddSchedule(set *schedule.Set, st ScheduleState) (*schedule.Schedule, error) {
	sc, err := schedule.Compile(st.Name, st.Def.Spec, time.Unix(0, st.Created))
	if err != nil {
		return nil, err
	}
	var last time.Time
	if st.Last != 0 {
		last = schedule.SlotTime(st.Last)
	}
	set.Add(st.Name, sc, last)
	if st.Paused {
		set.Pause(st.Name)
	}
	return sc, nil
}
