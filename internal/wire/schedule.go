package wire

import (
	"github.com/chutemq/chute"
	chutev1 "github.com/chutemq/chute/gen/chute/v1"
)

// ScheduleConfigToPB converts a periodic schedule's config.
func ScheduleConfigToPB(c chute.ScheduleConfig) *chutev1.ScheduleConfig {
	return &chutev1.ScheduleConfig{Target: c.Target, Cron: c.Cron, Every: DurPB(c.Every), TimeZone: c.TimeZone,
		Jitter: DurPB(c.Jitter), Missed: c.Missed, Message: MessagesToPB([]chute.Message{c.Message})[0]}
}

// ScheduleConfigFromPB is the inverse of ScheduleConfigToPB.
func ScheduleConfigFromPB(c *chutev1.ScheduleConfig) chute.ScheduleConfig {
	out := chute.ScheduleConfig{Target: c.GetTarget(), Cron: c.GetCron(), Every: Dur(c.GetEvery()),
		TimeZone: c.GetTimeZone(), Jitter: Dur(c.GetJitter()), Missed: c.GetMissed()}
	if m := c.GetMessage(); m != nil {
		out.Message = MessagesFromPB([]*chutev1.Message{m})[0]
	}
	return out
}

// ScheduleInfoToPB converts a schedule and its progress.
func ScheduleInfoToPB(s chute.ScheduleInfo) *chutev1.ScheduleInfo {
	return &chutev1.ScheduleInfo{Name: s.Name, Config: ScheduleConfigToPB(s.Config), Created: ts(s.Created),
		Paused: s.Paused, LastSlot: ts(s.LastSlot), NextSlot: ts(s.NextSlot), NextFire: ts(s.NextFire),
		Fired: s.Fired, Skipped: s.Skipped, LastError: s.LastError}
}

// ScheduleInfoFromPB is the inverse of ScheduleInfoToPB.
func ScheduleInfoFromPB(s *chutev1.ScheduleInfo) chute.ScheduleInfo {
	return chute.ScheduleInfo{Name: s.GetName(), Config: ScheduleConfigFromPB(s.GetConfig()), Created: tm(s.GetCreated()),
		Paused: s.GetPaused(), LastSlot: tm(s.GetLastSlot()), NextSlot: tm(s.GetNextSlot()), NextFire: tm(s.GetNextFire()),
		Fired: s.GetFired(), Skipped: s.GetSkipped(), LastError: s.GetLastError()}
}
