package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/server"
)

func TestScheduleCommands(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "reports")
	body := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(body, []byte(`{"report":"daily"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := s.must("schedule", "create", "nightly", "--target", "reports", "--cron", "30 2 * * *", "--tz", "Europe/Berlin",
		"--body-file", body, "--header", "kind=report", "--priority", "3", "--ttl", "1h", "--key", "k", "--missed", "once", "--jitter", "1m")
	if !strings.HasPrefix(out, "created schedule nightly (30 2 * * * (Europe/Berlin) → reports), next ") {
		t.Fatalf("create printed %q", out)
	}
	all, err := s.b.Schedules(context.Background())
	if err != nil || len(all) != 1 {
		t.Fatalf("schedules %+v %v", all, err)
	}
	c := all[0].Config
	if c.Missed != "once" || c.Jitter != time.Minute || string(c.Message.Body) != `{"report":"daily"}` ||
		c.Message.Headers["kind"] != "report" || c.Message.Priority != 3 || c.Message.TTL != time.Hour || c.Message.Key != "k" {
		t.Fatalf("created %+v", c)
	}
	s.must("schedule", "create", "beat", "--target", "reports", "--every", "30s", "--body", "ping")
	out = s.must("schedule", "ls")
	for _, re := range []string{`(?m)^NAME\s+TARGET\s+SPEC\s+NEXT\s+LAST\s+FIRED\s+PAUSED$`,
		`(?m)^beat\s+reports\s+every 30s\s+\S+\s+-\s+0\s+no$`, `(?m)^nightly\s+reports\s+30 2 \* \* \* \(Europe/Berlin\)\s+\S+\s+-\s+0\s+no$`} {
		if !regexpMatch(re, out) {
			t.Fatalf("ls lacks %s:\n%s", re, out)
		}
	}
	js := parseJSON[[]scheduleJSON](t, s.must("schedule", "ls", "--json"))
	if len(js) != 2 || js[0].Name != "beat" || js[0].Every != "30s" || js[0].Body != "ping" || js[0].NextSlot == nil || js[0].LastSlot != nil ||
		js[1].Cron != "30 2 * * *" || js[1].TimeZone != "Europe/Berlin" || js[1].Missed != "once" {
		t.Fatalf("ls --json %+v", js)
	}
	if out := s.must("schedule", "pause", "beat"); out != "paused schedule beat, next -\n" {
		t.Fatalf("pause printed %q", out)
	}
	if j := parseJSON[scheduleJSON](t, s.must("schedule", "resume", "beat", "--json")); j.Paused || j.NextFire == nil {
		t.Fatalf("resume --json %+v", j)
	}
	if out := s.must("schedule", "rm", "beat"); out != "deleted schedule beat\n" {
		t.Fatalf("rm printed %q", out)
	}
	s.wantExit(2, "schedule", "create", "x", "--target", "reports")                                      // no spec
	s.wantExit(2, "schedule", "create", "x", "--target", "reports", "--cron", "@daily", "--every", "1h") // both
	s.wantExit(2, "schedule", "create", "x", "--cron", "@daily")                                         // no target
	s.wantExit(2, "schedule", "create", "x", "--target", "reports", "--every", "1h", "--missed", "all")
	s.wantExit(5, "schedule", "create", "x", "--target", "reports", "--cron", "61 * * * *")
	s.wantExit(5, "schedule", "create", "nightly", "--target", "reports", "--every", "1h")
	s.wantExit(4, "schedule", "create", "x", "--target", "nope", "--every", "1h")
	s.wantExit(4, "schedule", "rm", "beat")
	s.wantExit(4, "schedule", "pause", "beat")
}

func TestBenchSchedules(t *testing.T) {
	out, err := runCLI(t, "bench", "schedules", "--data", t.TempDir(), "--schedules", "50", "--queues", "2", "--duration", "1s", "--sync", "never")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"50 schedules every 1s into 2 queues", "firings ", "lateness p50 ", "journal: "} {
		if !strings.Contains(out, want) {
			t.Fatalf("bench schedules printed no %q:\n%s", want, out)
		}
	}
}
