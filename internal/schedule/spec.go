package schedule

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MaxJitter is the largest Jitter a Spec may ask for.
const MaxJitter = time.Hour

// Spec says when a schedule fires. Exactly one of Cron and Every is set.
type Spec struct {
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), or 6 with seconds first, or a descriptor: @yearly
	// (@annually), @monthly, @weekly, @daily (@midnight), @hourly, or
	// "@every D", which is the same as Every: D.
	Cron string
	// Every is a fixed interval: at least one second, a whole number of
	// seconds. Slots are created + k·Every, aligned to the creation second.
	Every time.Duration
	// TimeZone is the IANA name the cron fields are read in ("" = UTC).
	// It has no effect on Every. "Local" is refused: it depends on the host.
	TimeZone string
	// Jitter delays each firing by a deterministic amount in [0, Jitter),
	// at most MaxJitter. An interval schedule's Jitter must be less than
	// Every; a cron schedule's Jitter larger than a gap between its slots
	// makes a slot fire after its successor's nominal time (firings stay in
	// slot order).
	Jitter time.Duration
	// Missed says what happens to slots that fell while the broker was down.
	Missed MissedPolicy
}

// MissedPolicy says which slots that fell during downtime fire on start.
type MissedPolicy uint8

const (
	// MissedSkip (the default): none of them; the schedule goes on from the
	// first slot at or after the start.
	MissedSkip MissedPolicy = iota
	// MissedOnce: the latest of them fires once, on start; then the
	// schedule goes on.
	MissedOnce
)

// String returns "skip" or "once".
func (p MissedPolicy) String() string {
	switch p {
	case MissedSkip:
		return "skip"
	case MissedOnce:
		return "once"
	}
	return fmt.Sprintf("MissedPolicy(%d)", uint8(p))
}

// ParseMissedPolicy reads "skip" or "once" ("" = skip).
func ParseMissedPolicy(s string) (MissedPolicy, error) {
	switch s {
	case "", "skip":
		return MissedSkip, nil
	case "once":
		return MissedOnce, nil
	}
	return 0, badSpec("Missed", s, `want "skip" or "once"`)
}

// cronParser reads cron expressions: optional seconds field, descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Compile checks spec and returns the schedule named name, created at
// created. The name seeds the jitter, so it must be the name the schedule
// keeps for life; created (truncated to the second) is the time slots come
// after and interval slots align to. Errors are *SpecError (ErrBadSpec).
func Compile(name string, spec Spec, created time.Time) (*Schedule, error) {
	if created.Unix() < 1 {
		return nil, badSpec("created", created.String(), "must be after 1970-01-01T00:00:01Z")
	}
	s := &Schedule{name: name, spec: spec, created: created.Unix(), seed: nameSeed(name)}
	if err := s.compileTiming(); err != nil {
		return nil, err
	}
	if err := s.checkJitter(); err != nil {
		return nil, err
	}
	if spec.Missed > MissedOnce {
		return nil, badSpec("Missed", spec.Missed.String(), `want "skip" or "once"`)
	}
	if s.cron != nil && s.Next(time.Time{}).IsZero() {
		return nil, badSpec("Cron", spec.Cron, "matches no time in the five years after creation")
	}
	return s, nil
}

// compileTiming fills s.every or s.cron, and s.loc.
func (s *Schedule) compileTiming() error {
	spec := s.spec
	loc, err := loadZone(spec.TimeZone)
	if err != nil {
		return err
	}
	s.loc = loc
	expr := strings.TrimSpace(spec.Cron)
	switch {
	case expr == "" && spec.Every == 0:
		return badSpec("Cron", "", "set one of Cron and Every")
	case expr != "" && spec.Every != 0:
		return badSpec("Every", spec.Every.String(), "set one of Cron and Every, not both")
	case spec.Every != 0:
		return s.setEvery("Every", spec.Every.String(), spec.Every)
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return badSpec("Cron", spec.Cron, "a time zone inside Cron is not accepted: set TimeZone instead")
	case strings.HasPrefix(expr, "@every "):
		// robfig's @every counts from the previous run, not from fixed
		// slots; chute treats it exactly as Every, aligned to creation.
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(expr, "@every ")))
		if err != nil {
			return badSpec("Cron", spec.Cron, "bad @every duration: "+err.Error())
		}
		return s.setEvery("Cron", spec.Cron, d)
	}
	parsed, err := cronParser.Parse(expr)
	if err != nil {
		return badSpec("Cron", spec.Cron, err.Error())
	}
	cs, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return badSpec("Cron", spec.Cron, fmt.Sprintf("unexpected schedule type %T", parsed))
	}
	cs.Location = loc // never time.Local, which the parser defaults to
	s.cron = cs
	return nil
}

func (s *Schedule) setEvery(field, value string, d time.Duration) error {
	switch {
	case d < time.Second:
		return badSpec(field, value, "interval must be at least 1s")
	case d%time.Second != 0:
		return badSpec(field, value, "interval must be a whole number of seconds")
	}
	s.every = int64(d / time.Second)
	return nil
}

func (s *Schedule) checkJitter() error {
	j := s.spec.Jitter
	switch {
	case j < 0:
		return badSpec("Jitter", j.String(), "must not be negative")
	case j > MaxJitter:
		return badSpec("Jitter", j.String(), "must be at most "+MaxJitter.String())
	case j > 0 && s.every > 0 && j >= time.Duration(s.every)*time.Second:
		return badSpec("Jitter", j.String(), "must be less than the interval")
	}
	return nil
}

// loadZone loads an IANA time zone; "" is UTC.
func loadZone(name string) (*time.Location, error) {
	switch name {
	case "":
		return time.UTC, nil
	case "Local":
		return nil, badSpec("TimeZone", name, "depends on the host: name an IANA zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, badSpec("TimeZone", name, "unknown time zone")
	}
	return loc, nil
}

// nameSeed is the FNV-1a hash of a schedule's name: the jitter's seed.
func nameSeed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}
