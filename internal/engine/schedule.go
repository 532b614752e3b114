package engine

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/schedule"
	"github.com/chutemq/chute/internal/text"
)

// Periodic schedules (issue 13, item 1; docs/schedules.md).
//
// The engine keeps each schedule's definition, whether it is paused, and
// the last slot it fired: state changed only by records, so a replay or a
// snapshot rebuilds exactly what fired. When a schedule fires is decided
// by internal/schedule, from the broker's clock; the engine only keeps the
// firings exactly-once:
//
//   - A firing is an ordinary RecPublish in the schedule's own producer
//     session (ScheduleSession(name)) with the slot's sequence (its Unix
//     second) as the session number. PreparePublish answers a slot at or
//     below the schedule's last fired slot as a duplicate (nothing is
//     stored), and accepts gaps (skipped slots): the client sessions'
//     in-order rule does not apply. Applying the publish sets the last
//     slot. So a crash anywhere in a firing, or a retry, never stores a
//     slot twice.
//   - The target's own sessions are not touched: schedule sessions never
//     expire and cost nothing per target.
//   - A firing whose target is gone fails (ErrNotFound) and stores
//     nothing; the broker counts it and moves on to the next slot.
//
// Records: RecSchedule (Name, Sched; its Time is the creation time),
// RecScheduleDel (Name), RecSchedulePause (Name, N = 1 paused, 0 resumed).

// ErrScheduleNotFound: no schedule with this name.
var ErrScheduleNotFound = chute.ErrScheduleNotFound

// MaxSchedules bounds the number of schedules of one broker.
const MaxSchedules = chute.MaxSchedules

// ScheduleSessionPrefix starts the producer-session ID of every schedule's
// firings. Clients may not use it (the broker refuses their sessions that
// start with it).
const ScheduleSessionPrefix = "chute.schedule/"

// ScheduleSession returns the producer session of a schedule's firings.
func ScheduleSession(name string) string { return ScheduleSessionPrefix + name }

// IsScheduleSession reports whether a session ID is a schedule's.
func IsScheduleSession(id string) bool { return strings.HasPrefix(id, ScheduleSessionPrefix) }

// ScheduleDef is a schedule as the journal stores it: when it fires and
// what it publishes where.
type ScheduleDef struct {
	Target string // queue or topic
	Spec   schedule.Spec
	// The message of every firing.
	Prio    uint8
	TTL     time.Duration // 0: the target queue's MessageTTL
	Key     string
	Headers map[string]string
	Body    []byte
}

// Msg returns the message a firing at now publishes.
func (d *ScheduleDef) Msg(now int64) PubMsg {
	m := PubMsg{Prio: d.Prio, Key: d.Key, Headers: d.Headers, Body: d.Body}
	if d.TTL > 0 {
		m.ExpireAt = now + int64(d.TTL)
	}
	return m
}

// sched is one schedule's state.
type sched struct {
	def     ScheduleDef
	created int64  // unix ns
	paused  bool   // by hand
	last    uint64 // the last slot fired (its sequence, a Unix second); 0: none yet
	fired   int64  // firings stored since creation
}

// ScheduleState is what the engine knows of one schedule.
type ScheduleState struct {
	Name    string
	Def     ScheduleDef
	Created int64 // unix ns
	Paused  bool
	Last    uint64 // the last slot fired (schedule.SlotSeq); 0: none yet
	Fired   int64
}

// CreateSchedule creates schedule name, firing into target (a queue or
// topic that must exist). It refuses a name in use (ErrExists), a spec
// internal/schedule refuses (ErrInvalidConfig, with its reason) and a
// message out of range (ErrInvalidConfig).
func (e *Engine) CreateSchedule(now int64, name string, def ScheduleDef) (*Record, error) {
	e.advance(now)
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if e.scheds[name] != nil {
		return nil, fmt.Errorf("%w: schedule %s", ErrExists, text.Quote(name))
	}
	if len(e.scheds) >= MaxSchedules {
		return nil, fmt.Errorf("%w: at most %d schedules", ErrInvalidConfig, MaxSchedules)
	}
	if _, ok := e.target(def.Target); !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, text.Quote(def.Target))
	}
	if err := checkScheduleDef(name, &def, e.now); err != nil {
		return nil, err
	}
	r := &Record{Type: RecSchedule, Time: e.now, Name: name, Sched: &def}
	return r, e.applySchedule(r)
}

// checkScheduleDef validates a definition for a schedule created at now.
func checkScheduleDef(name string, def *ScheduleDef, now int64) error {
	if _, err := schedule.Compile(name, def.Spec, time.Unix(0, now)); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	m := def.Msg(now)
	if def.TTL < 0 {
		return fmt.Errorf("%w: negative TTL", ErrInvalidConfig)
	}
	if err := validateMsg(&m, now); err != nil {
		return fmt.Errorf("%w: message: %w", ErrInvalidConfig, err)
	}
	return nil
}

// DeleteSchedule deletes a schedule. Messages it published stay.
func (e *Engine) DeleteSchedule(now int64, name string) (*Record, error) {
	e.advance(now)
	if e.scheds[name] == nil {
		return nil, fmt.Errorf("%w: %s", ErrScheduleNotFound, text.Quote(name))
	}
	r := &Record{Type: RecScheduleDel, Time: e.now, Name: name}
	return r, e.applyScheduleDel(r)
}

// PauseSchedule pauses (or resumes) a schedule; the record is nil when it
// is already so.
func (e *Engine) PauseSchedule(now int64, name string, paused bool) (*Record, error) {
	e.advance(now)
	s := e.scheds[name]
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrScheduleNotFound, text.Quote(name))
	}
	if s.paused == paused {
		return nil, nil
	}
	r := &Record{Type: RecSchedulePause, Time: e.now, Name: name}
	if paused {
		r.N = 1
	}
	return r, e.applySchedulePause(r)
}

// Schedule returns one schedule's state.
func (e *Engine) Schedule(name string) (ScheduleState, bool) {
	s := e.scheds[name]
	if s == nil {
		return ScheduleState{}, false
	}
	return s.state(name), true
}

// Schedules returns every schedule, sorted by name.
func (e *Engine) Schedules() []ScheduleState {
	out := make([]ScheduleState, 0, len(e.scheds))
	for _, name := range slices.Sorted(maps.Keys(e.scheds)) {
		out = append(out, e.scheds[name].state(name))
	}
	return out
}

func (s *sched) state(name string) ScheduleState {
	return ScheduleState{Name: name, Def: s.def, Created: s.created, Paused: s.paused, Last: s.last, Fired: s.fired}
}

func (e *Engine) applySchedule(r *Record) error {
	if r.Sched == nil {
		return fmt.Errorf("schedule record without a definition")
	}
	if e.scheds == nil {
		e.scheds = make(map[string]*sched)
	}
	// Create or replace: a replaced schedule starts afresh.
	e.scheds[r.Name] = &sched{def: *r.Sched, created: r.Time}
	return nil
}

func (e *Engine) applyScheduleDel(r *Record) error {
	if e.scheds[r.Name] == nil {
		return ErrScheduleNotFound
	}
	delete(e.scheds, r.Name)
	return nil
}

func (e *Engine) applySchedulePause(r *Record) error {
	s := e.scheds[r.Name]
	if s == nil {
		return ErrScheduleNotFound
	}
	s.paused = r.N != 0
	return nil
}

// prepareScheduleSession is prepareSession for a schedule's firing: one
// message, numbered with its slot's sequence.
func (e *Engine) prepareScheduleSession(s Session, msgs []PubMsg, res []PubResult, r *Record) (skip int, err error) {
	name := strings.TrimPrefix(s.ID, ScheduleSessionPrefix)
	sc := e.scheds[name]
	switch {
	case sc == nil:
		return 0, fmt.Errorf("%w: %s", ErrScheduleNotFound, text.Quote(name))
	case len(msgs) != 1 || s.First == 0:
		return 0, fmt.Errorf("%w: a schedule's firing is one message with a slot sequence", ErrInvalidMessage)
	case s.First <= sc.last:
		res[0] = PubResult{Duplicate: true} // that slot fired already
		return 1, nil
	}
	r.Session, r.SessionSeq, r.SessionN = s.ID, s.First, 1
	return 0, nil
}

// applyScheduleSession is applySession for a schedule's firing: the slot
// becomes the schedule's last. A firing of a schedule deleted since (in a
// replay) changes nothing.
func (e *Engine) applyScheduleSession(r *Record) error {
	if r.SessionN != 1 || len(r.SessionDups) != 0 || len(r.Msgs) != 1 {
		return fmt.Errorf("schedule session %q: %d numbers for %d messages", r.Session, r.SessionN, len(r.Msgs))
	}
	sc := e.scheds[strings.TrimPrefix(r.Session, ScheduleSessionPrefix)]
	if sc == nil {
		return nil
	}
	if r.SessionSeq <= sc.last {
		return fmt.Errorf("schedule session %q: slot %d, last fired %d", r.Session, r.SessionSeq, sc.last)
	}
	sc.last = r.SessionSeq
	sc.fired++
	return nil
}

// appendScheduleDef encodes a RecSchedule's definition.
func appendScheduleDef(buf []byte, d *ScheduleDef) []byte {
	buf = appendString(buf, d.Target)
	buf = appendString(buf, d.Spec.Cron)
	buf = binary.AppendVarint(buf, int64(d.Spec.Every))
	buf = appendString(buf, d.Spec.TimeZone)
	buf = binary.AppendVarint(buf, int64(d.Spec.Jitter))
	buf = append(buf, byte(d.Spec.Missed), d.Prio)
	buf = binary.AppendVarint(buf, int64(d.TTL))
	buf = appendString(buf, d.Key)
	buf = appendMap(buf, d.Headers)
	buf = binary.AppendUvarint(buf, uint64(len(d.Body)))
	return append(buf, d.Body...)
}

func (d *decoder) scheduleDef() *ScheduleDef {
	s := &ScheduleDef{}
	s.Target = d.string()
	s.Spec.Cron = d.string()
	s.Spec.Every = time.Duration(d.varint())
	s.Spec.TimeZone = d.string()
	s.Spec.Jitter = time.Duration(d.varint())
	s.Spec.Missed = schedule.MissedPolicy(d.byte())
	s.Prio = d.byte()
	s.TTL = time.Duration(d.varint())
	s.Key = d.string()
	s.Headers = d.stringMap()
	s.Body = d.bytes(d.count(1))
	return s
}

// snapshotSchedules appends the schedules section (snapshot version 4):
//
//	schedules := n (name created paused last fired def)*
func (e *Engine) snapshotSchedules(buf []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(e.scheds)))
	for _, name := range slices.Sorted(maps.Keys(e.scheds)) {
		s := e.scheds[name]
		buf = appendString(buf, name)
		buf = binary.AppendVarint(buf, s.created)
		buf = appendBool(buf, s.paused)
		buf = binary.AppendUvarint(buf, s.last)
		buf = binary.AppendVarint(buf, s.fired)
		buf = appendScheduleDef(buf, &s.def)
	}
	return buf
}

func (d *decoder) schedules(e *Engine) {
	n := d.count(8)
	for i := 0; i < n && d.err == nil; i++ {
		name := d.string()
		s := &sched{created: d.varint()}
		s.paused = d.byte() != 0
		s.last = d.uvarint()
		s.fired = d.varint()
		s.def = *d.scheduleDef()
		if d.err != nil {
			return
		}
		if e.scheds == nil {
			e.scheds = make(map[string]*sched, n)
		}
		e.scheds[name] = s
	}
}
