package schedule

import (
	"slices"
	"testing"
	"time"
)

// TestDST pins what robfig/cron does across the 2026 transitions, as
// docs/schedules.md ("Daylight saving time") tells users:
//
//   - spring forward: a local time that does not exist has no slot (a daily
//     02:30 job skips that day; an hourly job has 23 slots that day);
//   - fall back: a local time that exists twice has two slots (a daily
//     02:30 job in Berlin fires twice; an hourly job has 25 slots).
//
// Europe/Berlin: 29 March 02:00 CET → 03:00 CEST; 25 October 03:00 CEST →
// 02:00 CET. America/New_York: 8 March 02:00 EST → 03:00 EDT; 1 November
// 02:00 EDT → 01:00 EST.
func TestDST(t *testing.T) {
	for _, tc := range []struct {
		zone, cron string
		from, to   string // UTC window
		want       []string
	}{
		{"Europe/Berlin", "30 2 * * *", "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z",
			[]string{"2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z"}},
		{"Europe/Berlin", "30 2 * * *", "2026-10-23T00:00:00Z", "2026-10-27T00:00:00Z",
			[]string{"2026-10-23T00:30:00Z", "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"}},
		{"Europe/Berlin", "0 * * * *", "2026-03-28T23:30:00Z", "2026-03-29T03:30:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "2026-03-29T03:00:00Z"}},
		{"Europe/Berlin", "0 * * * *", "2026-10-24T23:30:00Z", "2026-10-25T03:30:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"}},
		{"America/New_York", "30 2 * * *", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"}},
		{"America/New_York", "30 1 * * *", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-02T06:30:00Z"}},
		{"America/New_York", "30 2 * * *", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			[]string{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
		{"America/New_York", "0 * * * *", "2026-03-08T04:30:00Z", "2026-03-08T08:30:00Z",
			[]string{"2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"America/New_York", "0 * * * *", "2026-11-01T03:30:00Z", "2026-11-01T07:30:00Z",
			[]string{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"}},
	} {
		s := mustCompile(t, "dst", Spec{Cron: tc.cron, TimeZone: tc.zone}, t0)
		var got []string
		for x := s.Next(at(tc.from)); x.Before(at(tc.to)); x = s.Next(x) {
			got = append(got, x.Format(time.RFC3339))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: slots %v, want %v", tc.zone, tc.cron, got, tc.want)
		}
		// Prev must agree with Next on these irregular days.
		for i := 1; i < len(tc.want); i++ {
			if p := s.Prev(at(tc.want[i])); !p.Equal(at(tc.want[i-1])) {
				t.Errorf("%s %q: Prev(%s) = %v, want %s", tc.zone, tc.cron, tc.want[i], p, tc.want[i-1])
			}
		}
	}
	// A whole day's count of hourly slots: 23 on spring-forward, 25 on fall-back.
	for _, tc := range []struct {
		zone, day string
		want      int
	}{
		{"Europe/Berlin", "2026-03-29", 23}, {"Europe/Berlin", "2026-10-25", 25},
		{"America/New_York", "2026-03-08", 23}, {"America/New_York", "2026-11-01", 25},
	} {
		loc, _ := time.LoadLocation(tc.zone)
		d, _ := time.ParseInLocation(time.DateOnly, tc.day, loc)
		s := mustCompile(t, "dst", Spec{Cron: "@hourly", TimeZone: tc.zone}, t0)
		n := 0
		for x := s.Next(d.Add(-time.Second)); x.Before(d.AddDate(0, 0, 1)); x = s.Next(x) {
			n++
		}
		if n != tc.want {
			t.Errorf("%s %s: %d hourly slots, want %d", tc.zone, tc.day, n, tc.want)
		}
	}
}
