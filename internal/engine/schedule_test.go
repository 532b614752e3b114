package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute/internal/schedule"
)

func dumpSchedules(e *Engine) string {
	var b strings.Builder
	for _, s := range e.Schedules() {
		fmt.Fprintf(&b, "schedule %s created=%d paused=%v last=%d fired=%d def=%+v\n", s.Name, s.Created, s.Paused, s.Last, s.Fired, s.Def)
	}
	return b.String()
}

// fire publishes a schedule's firing of slot seq, as the broker does.
func (h *harness) fire(name string, seq uint64) (PubResult, error) {
	h.t.Helper()
	st, ok := h.e.Schedule(name)
	if !ok {
		return PubResult{}, ErrScheduleNotFound
	}
	res, err := h.publishIn(st.Def.Target, Session{ID: ScheduleSession(name), First: seq}, st.Def.Msg(h.now))
	if err != nil {
		return PubResult{}, err
	}
	return res[0], nil
}

func TestScheduleFiringsOncePerSlot(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	def := ScheduleDef{Target: "q", Spec: schedule.Spec{Every: time.Second}, Prio: 3, TTL: time.Hour,
		Key: "k", Headers: map[string]string{"a": "b"}, Body: []byte("tick")}
	r, err := h.e.CreateSchedule(h.now, "s", def)
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	if _, err := h.e.CreateSchedule(h.now, "s", def); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	base := uint64(time.Unix(0, h.now).Unix())
	for _, seq := range []uint64{base + 1, base + 2, base + 5} { // gaps are skipped slots
		h.advance(time.Second)
		if res, err := h.fire("s", seq); err != nil || res.Duplicate {
			t.Fatalf("fire %d: %+v %v", seq, res, err)
		}
	}
	for _, seq := range []uint64{base + 1, base + 5} {
		if res, err := h.fire("s", seq); err != nil || !res.Duplicate {
			t.Fatalf("fire %d again: %+v %v", seq, res, err)
		}
	}
	st, _ := h.e.Schedule("s")
	if st.Last != base+5 || st.Fired != 3 {
		t.Fatalf("state %+v", st)
	}
	if s, _ := h.e.QueueStats("q"); s.Ready != 3 || s.Sessions != 0 {
		t.Fatalf("queue %+v", s)
	}
	h.check()

	r, err = h.e.PauseSchedule(h.now, "s", true)
	if err != nil || r == nil {
		t.Fatal(r, err)
	}
	h.commit(r)
	if r, err := h.e.PauseSchedule(h.now, "s", true); err != nil || r != nil {
		t.Fatalf("pause twice: %v %v", r, err)
	}
	h.check()
	r, _ = h.e.PauseSchedule(h.now, "s", false)
	h.commit(r)
	r, err = h.e.DeleteSchedule(h.now, "s")
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	if _, err := h.fire("s", base+9); !errors.Is(err, ErrScheduleNotFound) {
		t.Fatalf("fire deleted: %v", err)
	}
	if _, err := h.e.DeleteSchedule(h.now, "s"); !errors.Is(err, ErrScheduleNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	h.check()
}

func TestScheduleRefusesBadDefinitions(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	for _, c := range []struct {
		name string
		def  ScheduleDef
		want error
	}{
		{"no-target", ScheduleDef{Target: "nope", Spec: schedule.Spec{Every: time.Second}}, ErrNotFound},
		{"no-spec", ScheduleDef{Target: "q"}, ErrInvalidConfig},
		{"bad-cron", ScheduleDef{Target: "q", Spec: schedule.Spec{Cron: "61 * * * *"}}, ErrInvalidConfig},
		{"fraction", ScheduleDef{Target: "q", Spec: schedule.Spec{Every: 1500 * time.Millisecond}}, ErrInvalidConfig},
		{"prio", ScheduleDef{Target: "q", Spec: schedule.Spec{Every: time.Second}, Prio: 10}, ErrInvalidConfig},
		{"ttl", ScheduleDef{Target: "q", Spec: schedule.Spec{Every: time.Second}, TTL: -1}, ErrInvalidConfig},
		{"bad name!", ScheduleDef{Target: "q", Spec: schedule.Spec{Every: time.Second}}, ErrInvalidName},
	} {
		if _, err := h.e.CreateSchedule(h.now, c.name, c.def); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if len(h.e.Schedules()) != 0 {
		t.Fatal("a refused schedule was created")
	}
}

// TestScheduleFiringToTopic: a firing into a topic fans out, and a target
// deleted since fails the firing with ErrNotFound, storing nothing.
func TestScheduleFiringTargetGone(t *testing.T) {
	h := newHarness(t)
	h.mustCreateQueue("q", QueueConfig{})
	r, err := h.e.CreateSchedule(h.now, "s", ScheduleDef{Target: "q", Spec: schedule.Spec{Cron: "@hourly"}})
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	r, err = h.e.DeleteQueue(h.now, "q")
	if err != nil {
		t.Fatal(err)
	}
	h.commit(r)
	if _, err := h.fire("s", 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fire into a deleted queue: %v", err)
	}
	if st, _ := h.e.Schedule("s"); st.Last != 0 || st.Fired != 0 {
		t.Fatalf("state %+v", st)
	}
	h.check()
}

func TestScheduleRecordCodec(t *testing.T) {
	def := &ScheduleDef{Target: "q", Spec: schedule.Spec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Jitter: time.Minute, Missed: schedule.MissedOnce},
		Prio: 2, TTL: time.Hour, Key: "k", Headers: map[string]string{"x": "y"}, Body: []byte("b")}
	for _, r := range []*Record{
		{Type: RecSchedule, Time: 5, Name: "s", Sched: def},
		{Type: RecScheduleDel, Time: 6, Name: "s"},
		{Type: RecSchedulePause, Time: 7, Name: "s", N: 1},
	} {
		got, err := Decode(r.Encode(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != r.Type || got.Time != r.Time || got.Name != r.Name || got.N != r.N {
			t.Fatalf("round trip: %+v, want %+v", *got, *r)
		}
		if r.Sched != nil && fmt.Sprintf("%+v", *got.Sched) != fmt.Sprintf("%+v", *r.Sched) {
			t.Fatalf("definition: %+v, want %+v", *got.Sched, *r.Sched)
		}
	}
}

// TestScheduleRandomOps drives schedules with random creates, deletes,
// pauses and firings (duplicates, gaps, deleted targets) against a model
// of the last fired slot, and checks replay and snapshots (check).
func TestScheduleRandomOps(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := newHarness(t)
		h.mustCreateQueue("q", QueueConfig{})
		type model struct {
			last  uint64
			fired int64
		}
		want := map[string]*model{}
		names := []string{"s0", "s1", "s2"}
		for step := range 200 {
			h.advance(time.Duration(rng.IntN(3)) * time.Second)
			name := names[rng.IntN(len(names))]
			switch rng.IntN(6) {
			case 0:
				r, err := h.e.CreateSchedule(h.now, name, ScheduleDef{Target: "q", Spec: schedule.Spec{Every: time.Second}, Body: []byte(name)})
				if (err == nil) == (want[name] != nil) {
					t.Fatalf("seed %d step %d: create %s: %v", seed, step, name, err)
				}
				if err == nil {
					h.commit(r)
					want[name] = &model{}
				}
			case 1:
				r, err := h.e.DeleteSchedule(h.now, name)
				if (err == nil) != (want[name] != nil) {
					t.Fatalf("seed %d step %d: delete %s: %v", seed, step, name, err)
				}
				h.commit(r)
				delete(want, name)
			case 2:
				r, err := h.e.PauseSchedule(h.now, name, rng.IntN(2) == 0)
				if (err == nil) != (want[name] != nil) {
					t.Fatalf("seed %d step %d: pause %s: %v", seed, step, name, err)
				}
				h.commit(r)
			default:
				m := want[name]
				seq := uint64(rng.IntN(40) + 1)
				res, err := h.fire(name, seq)
				switch {
				case m == nil:
					if !errors.Is(err, ErrScheduleNotFound) {
						t.Fatalf("seed %d step %d: fire unknown %s: %v", seed, step, name, err)
					}
				case err != nil:
					t.Fatalf("seed %d step %d: fire %s %d: %v", seed, step, name, seq, err)
				case res.Duplicate != (seq <= m.last):
					t.Fatalf("seed %d step %d: fire %s %d after %d: duplicate %v", seed, step, name, seq, m.last, res.Duplicate)
				case !res.Duplicate:
					m.last, m.fired = seq, m.fired+1
				}
			}
			for n, m := range want {
				if st, ok := h.e.Schedule(n); !ok || st.Last != m.last || st.Fired != m.fired {
					t.Fatalf("seed %d step %d: %s is %+v, want %+v", seed, step, n, st, *m)
				}
			}
		}
		h.check()
	}
}
