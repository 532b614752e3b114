package apitest

import (
	"time"

	"github.com/chutemq/chute"
)

// schedule returns the check's schedule called s, as listed.
func (e *env) schedule(s string) (chute.ScheduleInfo, bool) {
	e.t.Helper()
	all, err := e.api.Schedules(e.ctx)
	if err != nil {
		e.t.Fatalf("list schedules: %v", err)
	}
	for _, info := range all {
		if info.Name == e.name(s) {
			return info, true
		}
	}
	return chute.ScheduleInfo{}, false
}

// testScheduleAdmin: a schedule is created once (a second create is
// ErrExists), listed with its config and next slot, paused and resumed,
// and deleted; unknown names are ErrScheduleNotFound, bad specs and
// messages ErrInvalidConfig, a missing target ErrNotFound.
func testScheduleAdmin(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	name := e.name("s")
	cfg := chute.ScheduleConfig{Target: q, Cron: "0 30 2 * * *", TimeZone: "Europe/Berlin", Jitter: time.Minute, Missed: "once",
		Message: chute.Message{Body: []byte("nightly"), Headers: map[string]string{"k": "v"}, Priority: 3, TTL: time.Hour, Key: "key"}}
	if err := e.api.CreateSchedule(e.ctx, name, cfg); err != nil {
		e.t.Fatalf("create schedule: %v", err)
	}
	e.wantErr("create twice", e.api.CreateSchedule(e.ctx, name, cfg), chute.ErrExists)
	info, ok := e.schedule("s")
	got := info.Config
	switch {
	case !ok:
		e.t.Fatal("schedule not listed")
	case got.Target != q || got.Cron != cfg.Cron || got.TimeZone != cfg.TimeZone || got.Jitter != cfg.Jitter || got.Missed != "once":
		e.t.Fatalf("listed config %+v", got)
	case string(got.Message.Body) != "nightly" || got.Message.Headers["k"] != "v" || got.Message.Priority != 3 ||
		got.Message.TTL != time.Hour || got.Message.Key != "key":
		e.t.Fatalf("listed message %+v", got.Message)
	case info.Paused || info.NextSlot.IsZero() || info.NextFire.Before(info.NextSlot) || !info.LastSlot.IsZero() || info.Created.IsZero():
		e.t.Fatalf("listed %+v", info)
	}
	if err := e.api.PauseSchedule(e.ctx, name); err != nil {
		e.t.Fatalf("pause: %v", err)
	}
	if info, _ := e.schedule("s"); !info.Paused || !info.NextSlot.IsZero() {
		e.t.Fatalf("paused: %+v", info)
	}
	if err := e.api.ResumeSchedule(e.ctx, name); err != nil {
		e.t.Fatalf("resume: %v", err)
	}
	if info, _ := e.schedule("s"); info.Paused || info.NextSlot.IsZero() {
		e.t.Fatalf("resumed: %+v", info)
	}
	if err := e.api.DeleteSchedule(e.ctx, name); err != nil {
		e.t.Fatalf("delete: %v", err)
	}
	if _, ok := e.schedule("s"); ok {
		e.t.Fatal("deleted schedule still listed")
	}
	nope := e.name("nope")
	e.wantErr("delete unknown", e.api.DeleteSchedule(e.ctx, nope), chute.ErrScheduleNotFound)
	e.wantErr("pause unknown", e.api.PauseSchedule(e.ctx, nope), chute.ErrScheduleNotFound)
	e.wantErr("resume unknown", e.api.ResumeSchedule(e.ctx, nope), chute.ErrScheduleNotFound)
	e.wantErr("bad cron", e.api.CreateSchedule(e.ctx, name, chute.ScheduleConfig{Target: q, Cron: "every day"}), chute.ErrInvalidConfig)
	e.wantErr("cron and every", e.api.CreateSchedule(e.ctx, name, chute.ScheduleConfig{Target: q, Cron: "@daily", Every: time.Hour}), chute.ErrInvalidConfig)
	e.wantErr("message ID", e.api.CreateSchedule(e.ctx, name,
		chute.ScheduleConfig{Target: q, Every: time.Hour, Message: chute.Message{ID: "x"}}), chute.ErrInvalidConfig)
	e.wantErr("no target", e.api.CreateSchedule(e.ctx, name, chute.ScheduleConfig{Target: e.name("none"), Every: time.Hour}), chute.ErrNotFound)
}

// testScheduleFires: an every-second schedule publishes its message into
// its queue, and its progress shows in the list.
func testScheduleFires(e *env) {
	q := e.queue("q", chute.QueueConfig{})
	name := e.name("tick")
	err := e.api.CreateSchedule(e.ctx, name, chute.ScheduleConfig{Target: q, Every: time.Second,
		Message: chute.Message{Body: []byte("tick"), Headers: map[string]string{"from": "schedule"}, Priority: 2}})
	if err != nil {
		e.t.Fatalf("create schedule: %v", err)
	}
	defer e.api.DeleteSchedule(e.ctx, name)
	ds := e.receive(q, chute.ReceiveOptions{Max: 1, Wait: longWait})
	if len(ds) != 1 {
		e.t.Fatalf("no firing within %v", longWait)
	}
	if d := ds[0]; string(d.Body) != "tick" || d.Headers["from"] != "schedule" || d.Priority != 2 {
		e.t.Fatalf("fired %s", show(d))
	}
	info, _ := e.schedule("tick")
	if info.Fired < 1 || info.LastSlot.IsZero() || !info.NextSlot.After(info.LastSlot) {
		e.t.Fatalf("after a firing %+v", info)
	}
}
