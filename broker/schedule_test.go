package broker_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/internal/vfs"
)

func mustSchedule(t *testing.T, b *broker.Broker, name string, cfg chute.ScheduleConfig) {
	t.Helper()
	if err := b.CreateSchedule(context.Background(), name, cfg); err != nil {
		t.Fatalf("create schedule %s: %v", name, err)
	}
}

func scheduleInfo(t *testing.T, b *broker.Broker, name string) chute.ScheduleInfo {
	t.Helper()
	all, err := b.Schedules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no schedule %s in %+v", name, all)
	return chute.ScheduleInfo{}
}

func readyOf(t *testing.T, b chute.API, q string) int64 {
	t.Helper()
	s, err := b.QueueStats(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return s.Ready
}

// waitFired waits until schedule name's last slot is want and q holds n
// ready messages.
func waitFired(t *testing.T, b *broker.Broker, name string, want time.Time, q string, n int64) {
	t.Helper()
	chutetest.Eventually(t, "schedule "+name+" fired "+want.Format(time.TimeOnly), func() bool {
		return scheduleInfo(t, b, name).LastSlot.Equal(want) && readyOf(t, b, q) == n
	})
}

// TestScheduleFiresEachSlotOnce: every slot fires once, in order, late if
// the clock jumps; the message is the configured one.
func TestScheduleFiresEachSlotOnce(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	t0 := clock.Now()
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustSchedule(t, b, "tick", chute.ScheduleConfig{Target: "q", Every: time.Second,
		Message: chute.Message{Body: []byte("tick"), Headers: map[string]string{"h": "v"}, Priority: 4, Key: "k", TTL: time.Hour}})
	for i := 1; i <= 3; i++ {
		clock.Advance(time.Second)
		waitFired(t, b, "tick", t0.Add(time.Duration(i)*time.Second), "q", int64(i))
	}
	// A jump of 3 s: the three slots all fire, in order.
	clock.Advance(3 * time.Second)
	waitFired(t, b, "tick", t0.Add(6*time.Second), "q", 6)
	info := scheduleInfo(t, b, "tick")
	if info.Fired != 6 || !info.NextSlot.Equal(t0.Add(7*time.Second)) || !info.Created.Equal(t0) || info.LastError != "" {
		t.Fatalf("info %+v", info)
	}
	ds := mustReceive(t, b, "q", chute.ReceiveOptions{Max: 10})
	if len(ds) != 1 { // one ordering key: one at a time
		t.Fatalf("got %d deliveries", len(ds))
	}
	if d := ds[0]; string(d.Body) != "tick" || d.Headers["h"] != "v" || d.Priority != 4 || d.Key != "k" {
		t.Fatalf("delivery %+v", d)
	}
	if st := b.ScheduleStats(); st.Fired != 6 || st.Schedules != 1 || st.Lateness.Count != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestScheduleRefused: bad configs, names in use, unknown names, and
// client sessions in the schedules' namespace.
func TestScheduleRefused(t *testing.T) {
	b := chutetest.MustOpen(t, "", nil)
	ctx := context.Background()
	mustCreate(t, b, "q", chute.QueueConfig{})
	for _, c := range []struct {
		cfg  chute.ScheduleConfig
		want error
	}{
		{chute.ScheduleConfig{Target: "q"}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Cron: "* * *"}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Cron: "@daily", TimeZone: "Mars/Olympus"}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Every: time.Second, Missed: "twice"}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Every: time.Second, Message: chute.Message{ID: "x"}}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Every: time.Second, Message: chute.Message{Delay: time.Second}}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Every: time.Second, Message: chute.Message{Priority: 10}}, chute.ErrInvalidConfig},
		{chute.ScheduleConfig{Target: "q", Every: time.Second, Message: chute.Message{Body: make([]byte, 2<<20)}}, chute.ErrMessageTooLarge},
		{chute.ScheduleConfig{Target: "nope", Every: time.Second}, chute.ErrNotFound},
	} {
		if err := b.CreateSchedule(ctx, "s", c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.cfg, err, c.want)
		}
	}
	mustSchedule(t, b, "s", chute.ScheduleConfig{Target: "q", Cron: "@hourly"})
	if err := b.CreateSchedule(ctx, "s", chute.ScheduleConfig{Target: "q", Cron: "@hourly"}); !errors.Is(err, chute.ErrExists) {
		t.Errorf("create twice: %v", err)
	}
	for _, f := range []func(context.Context, string) error{b.DeleteSchedule, b.PauseSchedule, b.ResumeSchedule} {
		if err := f(ctx, "nope"); !errors.Is(err, chute.ErrScheduleNotFound) {
			t.Errorf("unknown schedule: %v", err)
		}
	}
	_, err := b.Publish(ctx, "q", chute.Message{Session: "chute.schedule/s", SessionSeq: 1})
	if !errors.Is(err, chute.ErrInvalidMessage) {
		t.Errorf("a client publish in a schedule's session: %v", err)
	}
}

// TestScheduleRestartMissedPolicy: a restart in the middle fires no slot
// twice, and the slots that fell during the downtime follow the policy:
// skip fires none, once fires the latest, once.
func TestScheduleRestartMissedPolicy(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	t0 := clock.Now()
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "qskip", chute.QueueConfig{})
	mustCreate(t, b, "qonce", chute.QueueConfig{})
	mustSchedule(t, b, "skip", chute.ScheduleConfig{Target: "qskip", Every: 10 * time.Second})
	mustSchedule(t, b, "once", chute.ScheduleConfig{Target: "qonce", Every: 10 * time.Second, Missed: "once"})
	clock.Advance(10 * time.Second)
	waitFired(t, b, "skip", t0.Add(10*time.Second), "qskip", 1)
	waitFired(t, b, "once", t0.Add(10*time.Second), "qonce", 1)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(95 * time.Second) // down over the slots 20 … 100
	b = chutetest.MustOpen(t, "data", opts)
	waitFired(t, b, "once", t0.Add(100*time.Second), "qonce", 2)
	skip := scheduleInfo(t, b, "skip")
	if !skip.LastSlot.Equal(t0.Add(10*time.Second)) || !skip.NextSlot.Equal(t0.Add(110*time.Second)) || readyOf(t, b, "qskip") != 1 {
		t.Fatalf("skip after restart %+v", skip)
	}
	// (The firing is confirmed to the timer heap just after it is durable.)
	chutetest.Eventually(t, "once's next slot", func() bool {
		once := scheduleInfo(t, b, "once")
		return once.NextSlot.Equal(t0.Add(110*time.Second)) && once.Fired == 2
	})
	clock.Advance(5 * time.Second)
	waitFired(t, b, "skip", t0.Add(110*time.Second), "qskip", 2)
	waitFired(t, b, "once", t0.Add(110*time.Second), "qonce", 3)
}

// TestScheduleCrashAtEveryStep: the process dies at each step of a firing
// — before its record is written, after the write but before the sync
// (keeping none, part or all of the unsynced bytes, or all of them with
// sectors lost out of order), after the sync but
// before the broker confirmed it — and the reopened broker has the slot
// fired exactly once: never twice, never skipped (policy once).
func TestScheduleCrashAtEveryStep(t *testing.T) {
	type point struct {
		name  string
		op    vfs.Op // crash just before this operation on a segment; -1: after the sync
		clone func(*vfs.MemFS) *vfs.MemFS
	}
	synced := func(m *vfs.MemFS) *vfs.MemFS { return m.CrashClone(nil) }
	points := []point{{"before-write", vfs.OpWrite, synced}, {"after-sync", -1, synced}}
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 1))
		points = append(points,
			point{"written-not-synced", vfs.OpSync, func(m *vfs.MemFS) *vfs.MemFS { return m.CrashClone(rng) }},
			point{"written-not-synced-reordered", vfs.OpSync, func(m *vfs.MemFS) *vfs.MemFS { return m.CrashCloneReordered(rng) }})
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			clock := chutetest.NewFakeClock()
			mem := vfs.NewMemFS()
			faulty := vfs.NewFaulty(mem, nil)
			var once sync.Once
			var crashed *vfs.MemFS
			cloned := make(chan struct{})
			crash := func() {
				once.Do(func() {
					crashed = p.clone(mem)
					close(cloned)
				})
			}
			var armed sync.Mutex // held while the crash is not armed
			armed.Lock()
			onSync := func(time.Duration) {
				if p.op == -1 && armed.TryLock() {
					crash()
					armed.Unlock()
				}
			}
			opts := &broker.Options{FS: faulty, Clock: clock, OnSync: onSync}
			t0 := clock.Now()
			b := chutetest.MustOpen(t, "data", opts)
			mustCreate(t, b, "q", chute.QueueConfig{})
			mustSchedule(t, b, "s", chute.ScheduleConfig{Target: "q", Every: 10 * time.Second, Missed: "once"})
			faulty.SetInject(func(op vfs.Op, name string) error {
				if op == p.op && len(name) > 4 && name[len(name)-4:] == ".seg" {
					crash()
				}
				return nil
			})
			armed.Unlock()
			clock.Advance(10 * time.Second)
			slot := t0.Add(10 * time.Second)
			waitFired(t, b, "s", slot, "q", 1) // applied: its sync may still be to come
			select {
			case <-cloned:
			case <-time.After(10 * time.Second):
				t.Fatal("no crash point reached")
			}

			clock.Advance(2 * time.Second)
			b2 := chutetest.MustOpen(t, "data", &broker.Options{FS: crashed, Clock: clock})
			t.Logf("recovered: the firing's record %s", map[bool]string{true: "survived", false: "was lost"}[scheduleInfo(t, b2, "s").Fired == 1])
			waitFired(t, b2, "s", slot, "q", 1)
			// Nothing more until the next slot; then that one.
			clock.Advance(7 * time.Second)
			if n := readyOf(t, b2, "q"); n != 1 {
				t.Fatalf("%d messages after the crash, want 1", n)
			}
			clock.Advance(time.Second)
			waitFired(t, b2, "s", slot.Add(10*time.Second), "q", 2)
		})
	}
}

// TestSchedulePauseResume: a paused schedule fires nothing; on resume the
// slots that fell during the pause follow the policy. The pause survives a
// restart.
func TestSchedulePauseResume(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	ctx := context.Background()
	t0 := clock.Now()
	b, err := broker.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "qskip", chute.QueueConfig{})
	mustCreate(t, b, "qonce", chute.QueueConfig{})
	mustSchedule(t, b, "skip", chute.ScheduleConfig{Target: "qskip", Every: 10 * time.Second})
	mustSchedule(t, b, "once", chute.ScheduleConfig{Target: "qonce", Every: 10 * time.Second, Missed: "once"})
	for _, n := range []string{"skip", "once"} {
		if err := b.PauseSchedule(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := b.PauseSchedule(ctx, n); err != nil { // again: nothing
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = chutetest.MustOpen(t, "data", opts)
	if info := scheduleInfo(t, b, "once"); !info.Paused || !info.NextSlot.IsZero() {
		t.Fatalf("paused after restart: %+v", info)
	}
	clock.Advance(35 * time.Second) // slots 10, 20, 30 fall during the pause
	time.Sleep(20 * time.Millisecond)
	if readyOf(t, b, "qskip")+readyOf(t, b, "qonce") != 0 {
		t.Fatal("a paused schedule fired")
	}
	for _, n := range []string{"skip", "once"} {
		if err := b.ResumeSchedule(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFired(t, b, "once", t0.Add(30*time.Second), "qonce", 1)
	if info := scheduleInfo(t, b, "skip"); !info.LastSlot.IsZero() || !info.NextSlot.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("skip after resume %+v", info)
	}
	clock.Advance(5 * time.Second)
	waitFired(t, b, "skip", t0.Add(40*time.Second), "qskip", 1)
	waitFired(t, b, "once", t0.Add(40*time.Second), "qonce", 2)
}

// TestScheduleDST: a daily 02:30 in Europe/Berlin across the spring
// change of 29 March 2026: it fires on the 28th at 01:30 UTC, not on the
// 29th (02:30 does not exist), and on the 30th at 00:30 UTC.
func TestScheduleDST(t *testing.T) {
	clock := chutetest.NewFakeClock()
	start := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)
	clock.Advance(start.Sub(clock.Now()))
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustSchedule(t, b, "nightly", chute.ScheduleConfig{Target: "q", Cron: "30 2 * * *", TimeZone: "Europe/Berlin"})
	want := []time.Time{
		time.Date(2026, 3, 28, 1, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 30, 0, 30, 0, 0, time.UTC),
		time.Date(2026, 3, 31, 0, 30, 0, 0, time.UTC),
	}
	if next := scheduleInfo(t, b, "nightly").NextSlot; !next.Equal(want[0]) {
		t.Fatalf("next slot %v, want %v", next, want[0])
	}
	for i, w := range want {
		clock.Advance(w.Sub(clock.Now()) + time.Minute)
		waitFired(t, b, "nightly", w, "q", int64(i+1))
	}
}

// TestScheduleTargetGone: a firing whose target was deleted is skipped
// and counted; the schedule goes on once the target is back.
func TestScheduleTargetGone(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	t0 := clock.Now()
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustSchedule(t, b, "s", chute.ScheduleConfig{Target: "q", Every: 10 * time.Second})
	if err := b.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	chutetest.Eventually(t, "a skipped firing", func() bool { return scheduleInfo(t, b, "s").Skipped == 1 })
	info := scheduleInfo(t, b, "s")
	if info.LastError == "" || !info.LastSlot.IsZero() || !info.NextSlot.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("info %+v", info)
	}
	mustCreate(t, b, "q", chute.QueueConfig{})
	clock.Advance(10 * time.Second)
	waitFired(t, b, "s", t0.Add(20*time.Second), "q", 1)
	if err := b.DeleteSchedule(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if all, _ := b.Schedules(ctx); len(all) != 0 {
		t.Fatalf("after delete %+v", all)
	}
}

// TestScheduleGroupCommit: 1,000 schedules due together fire once each,
// one record per firing. How many syncs they share depends on how fast the
// journal's writer runs beside the firing loop (on a memory file system
// with the race detector it can sync after almost every record), so the
// count is logged, not asserted: `chute bench schedules` measures it on a
// real disk (docs/schedules.md: about 30 syncs a second for 10,000
// firings a second).
func TestScheduleGroupCommit(t *testing.T) {
	clock := chutetest.NewFakeClock()
	opts, _ := chutetest.MemOptions(clock)
	b := chutetest.MustOpen(t, "data", opts)
	t0 := clock.Now()
	mustCreate(t, b, "q", chute.QueueConfig{})
	const n = 1000
	for i := range n {
		mustSchedule(t, b, fmt.Sprintf("s%d", i), chute.ScheduleConfig{Target: "q", Every: time.Second})
	}
	before := b.JournalStats()
	clock.Advance(time.Second)
	chutetest.Eventually(t, "every schedule fired", func() bool { return b.ScheduleStats().Fired == n })
	after := b.JournalStats()
	if recs := after.Records - before.Records; recs != n {
		t.Fatalf("%d firings took %d records", n, recs)
	}
	t.Logf("%d firings took %d syncs", n, after.Syncs-before.Syncs)
	if info := scheduleInfo(t, b, "s999"); !info.LastSlot.Equal(t0.Add(time.Second)) {
		t.Fatalf("info %+v", info)
	}
}

// TestScheduleJitterAndTopic: a firing into a topic reaches every
// matching subscription, and with jitter a slot fires at its FireAt (slot
// plus a fixed amount below the jitter), not before.
func TestScheduleJitterAndTopic(t *testing.T) {
	clock := chutetest.NewFakeClock()
	b := chutetest.MustOpen(t, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	t0 := clock.Now()
	if err := b.CreateTopic(ctx, "events", chute.TopicConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"a", "b"} {
		if err := b.Subscribe(ctx, "events", sub, chute.SubscriptionConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	mustSchedule(t, b, "tick", chute.ScheduleConfig{Target: "events", Every: time.Minute, Jitter: 30 * time.Second,
		Message: chute.Message{Body: []byte("tick")}})
	info := scheduleInfo(t, b, "tick")
	slot := t0.Add(time.Minute)
	if !info.NextSlot.Equal(slot) || info.NextFire.Before(slot) || !info.NextFire.Before(slot.Add(30*time.Second)) {
		t.Fatalf("info %+v", info)
	}
	if d := info.NextFire.Sub(clock.Now()); d > time.Second {
		clock.Advance(d - time.Second) // just before the fire time: nothing yet
		time.Sleep(20 * time.Millisecond)
		if n := readyOf(t, b, "a"); n != 0 {
			t.Fatalf("fired %v early", time.Second)
		}
	}
	clock.Advance(info.NextFire.Sub(clock.Now()))
	waitFired(t, b, "tick", slot, "a", 1)
	if n := readyOf(t, b, "b"); n != 1 {
		t.Fatalf("subscription b holds %d", n)
	}
}

// BenchmarkScheduleTick10k: one second of 10,000 every-second schedules
// (in memory, fake clock): what the firing loop costs per second.
func BenchmarkScheduleTick10k(b *testing.B) {
	clock := chutetest.NewFakeClock()
	br := chutetest.MustOpen(b, "", &broker.Options{Clock: clock})
	ctx := context.Background()
	const n = 10_000
	for i := range 100 {
		if err := br.CreateQueue(ctx, fmt.Sprintf("q%d", i), chute.QueueConfig{}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		if err := br.CreateSchedule(ctx, fmt.Sprintf("s%d", i), chute.ScheduleConfig{Target: fmt.Sprintf("q%d", i%100), Every: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		clock.Advance(time.Second)
		for br.ScheduleStats().Fired < int64(i+1)*n {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/firing")
}
