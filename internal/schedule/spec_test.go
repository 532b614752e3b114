package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCompile(t testing.TB, name string, spec Spec, created time.Time) *Schedule {
	t.Helper()
	s, err := Compile(name, spec, created)
	if err != nil {
		t.Fatalf("Compile(%q, %+v): %v", name, spec, err)
	}
	return s
}

func TestCompileGood(t *testing.T) {
	for _, spec := range []Spec{
		{Cron: "*/5 * * * *"},
		{Cron: "0 */5 * * * *"}, // seconds first
		{Cron: "15 10 * * MON-FRI", TimeZone: "Europe/Berlin"},
		{Cron: "0 0 1 jan,jul *"},
		{Cron: "  @hourly  "},
		{Cron: "@daily"}, {Cron: "@midnight"}, {Cron: "@weekly"},
		{Cron: "@monthly"}, {Cron: "@yearly"}, {Cron: "@annually"},
		{Cron: "@every 30s"}, {Cron: "@every 1h30m"},
		{Every: time.Second}, {Every: 90 * time.Second, Jitter: 89 * time.Second},
		{Every: time.Minute, TimeZone: "America/New_York"},
		{Cron: "* * * * *", Jitter: time.Hour, Missed: MissedOnce},
	} {
		if _, err := Compile("s", spec, t0); err != nil {
			t.Errorf("Compile(%+v): %v", spec, err)
		}
	}
}

func TestCompileBad(t *testing.T) {
	for _, tc := range []struct {
		spec  Spec
		field string
		want  string
	}{
		{Spec{}, "Cron", "set one of Cron and Every"},
		{Spec{Cron: "   "}, "Cron", "set one of Cron and Every"},
		{Spec{Cron: "* * * * *", Every: time.Second}, "Every", "not both"},
		{Spec{Cron: "* * * *"}, "Cron", "expected 5 to 6 fields"},
		{Spec{Cron: "* * * * * * *"}, "Cron", "expected 5 to 6 fields"},
		{Spec{Cron: "61 * * * *"}, "Cron", "above maximum"},
		{Spec{Cron: "* * * * mon-"}, "Cron", "failed to parse int"},
		{Spec{Cron: "@fortnightly"}, "Cron", "unrecognized descriptor"},
		{Spec{Cron: "@every soon"}, "Cron", "bad @every duration"},
		{Spec{Cron: "@every 500ms"}, "Cron", "at least 1s"},
		{Spec{Cron: "@every 1.5s"}, "Cron", "whole number of seconds"},
		{Spec{Cron: "CRON_TZ=Europe/Berlin 0 2 * * *"}, "Cron", "set TimeZone instead"},
		{Spec{Cron: "TZ=Europe/Berlin"}, "Cron", "set TimeZone instead"}, // robfig panics on this one
		{Spec{Cron: "0 0 30 2 *"}, "Cron", "matches no time"},
		{Spec{Every: -time.Second}, "Every", "at least 1s"},
		{Spec{Every: 999 * time.Millisecond}, "Every", "at least 1s"},
		{Spec{Every: 2500 * time.Millisecond}, "Every", "whole number of seconds"},
		{Spec{Every: time.Minute, TimeZone: "Mars/Olympus"}, "TimeZone", "unknown time zone"},
		{Spec{Every: time.Minute, TimeZone: "Local"}, "TimeZone", "depends on the host"},
		{Spec{Every: time.Minute, Jitter: -1}, "Jitter", "negative"},
		{Spec{Cron: "@daily", Jitter: time.Hour + 1}, "Jitter", "at most 1h0m0s"},
		{Spec{Every: time.Minute, Jitter: time.Minute}, "Jitter", "less than the interval"},
		{Spec{Cron: "@every 10s", Jitter: 10 * time.Second}, "Jitter", "less than the interval"},
		{Spec{Every: time.Minute, Missed: 2}, "Missed", `want "skip" or "once"`},
	} {
		_, err := Compile("s", tc.spec, t0)
		var se *SpecError
		if !errors.Is(err, ErrBadSpec) || !errors.As(err, &se) {
			t.Errorf("Compile(%+v) = %v, want a *SpecError", tc.spec, err)
			continue
		}
		if se.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v (field %s), want field %s and %q", tc.spec, err, se.Field, tc.field, tc.want)
		}
	}
	if _, err := Compile("s", Spec{Every: time.Second}, time.Time{}); !errors.Is(err, ErrBadSpec) {
		t.Errorf("Compile with zero created = %v, want ErrBadSpec", err)
	}
}

func TestMissedPolicy(t *testing.T) {
	for _, p := range []MissedPolicy{MissedSkip, MissedOnce} {
		got, err := ParseMissedPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseMissedPolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if p, err := ParseMissedPolicy(""); err != nil || p != MissedSkip {
		t.Errorf(`ParseMissedPolicy("") = %v, %v; want skip`, p, err)
	}
	if _, err := ParseMissedPolicy("twice"); !errors.Is(err, ErrBadSpec) {
		t.Errorf(`ParseMissedPolicy("twice") = %v, want ErrBadSpec`, err)
	}
	if s := MissedPolicy(7).String(); s != "MissedPolicy(7)" {
		t.Errorf("String() = %q", s)
	}
}
