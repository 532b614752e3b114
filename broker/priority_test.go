package broker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestPriorityNoInversion drives one queue with a random mix of priorities
// (0–9), delays, TTLs, acks and nacks with delays, on a fake clock, and
// checks every receive of one message against a model: the message must
// be the best ready one — highest priority, then lowest sequence (publish
// order) — where "ready at T" means published, due at or before T (delay
// or nack delay over), not expired at T (expiry at T counts as expired),
// and not leased (every delivery is settled at once). A receive that
// waits is woken by the broker's timer loop when the clock reaches the
// next due time, with everything due at that instant ready at once: it
// must still get the best of them, not the first to come due. Issue 11:
// "priorities: no inversions". It also caught two lost wake-ups, a
// receive never woken (broker.go timerLoop, timer.go timerAt).
func TestPriorityNoInversion(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runPriorityModel(t, seed, 200)
		})
	}
}

// pmMsg is the model's view of one message.
type pmMsg struct {
	prio   int
	due    time.Time // ready from then on (publish delay, or nack delay)
	expire time.Time // zero: never
}

// priorityModel is every message the queue may still deliver.
type priorityModel struct {
	msgs map[uint64]*pmMsg
}

// readyAt reports whether m is ready at now.
func (m *pmMsg) readyAt(now time.Time) bool {
	return !m.due.After(now) && (m.expire.IsZero() || m.expire.After(now))
}

// best returns the sequence of the message a receive at now must get (0:
// none), forgetting messages that expired.
func (pm *priorityModel) best(now time.Time) uint64 {
	var seq uint64
	prio := -1
	for s, m := range pm.msgs {
		if !m.expire.IsZero() && !m.expire.After(now) {
			delete(pm.msgs, s) // expired: gone for good
			continue
		}
		if m.readyAt(now) && (m.prio > prio || m.prio == prio && s < seq) {
			seq, prio = s, m.prio
		}
	}
	return seq
}

// readyCount is how many messages are ready at now.
func (pm *priorityModel) readyCount(now time.Time) int {
	n := 0
	for _, m := range pm.msgs {
		if m.readyAt(now) {
			n++
		}
	}
	return n
}

// nextDue is the earliest time after now at which a message becomes
// ready (zero: none will).
func (pm *priorityModel) nextDue(now time.Time) time.Time {
	var next time.Time
	for _, m := range pm.msgs {
		if !m.due.After(now) || !m.expire.IsZero() && !m.expire.After(m.due) {
			continue
		}
		if next.IsZero() || m.due.Before(next) {
			next = m.due
		}
	}
	return next
}

// waitSignalClock is a fake clock that reports when a receive starts to
// wait (it arms its Wait timer, of receiveWait), so that the test advances
// the clock only once the receive sleeps and the timer loop must wake it.
type waitSignalClock struct {
	*chutetest.FakeClock
	waiting chan struct{}
}

const receiveWait = time.Hour

func (c waitSignalClock) NewTimer(d time.Duration) chute.Timer {
	t := c.FakeClock.NewTimer(d)
	if d == receiveWait {
		c.waiting <- struct{}{}
	}
	return t
}

// priorityRun is one run of the model test: the broker, its clock, the
// model, and what was checked.
type priorityRun struct {
	t   *testing.T
	rng *rand.Rand
	clk waitSignalClock
	b   *broker.Broker
	pm  *priorityModel

	received  int // receives checked that delivered a message
	waited    int // of those, receives woken by the timer loop
	contested int // of those, woken with more than one message ready
}

const priorityQueue = "prio"

// runPriorityModel runs rounds of: a few publishes (priorities 0–9, some
// delayed, a few with a TTL, batches often sharing one delay), then a
// drain — receive what is ready, wait for what comes due, let a little
// time pass now and then — acking most deliveries and nacking the rest
// with or without a delay. Delays are multiples of 5 ms, so that many
// messages come due at the same instant.
func runPriorityModel(t *testing.T, seed uint64, rounds int) {
	clk := waitSignalClock{FakeClock: chutetest.NewFakeClock(), waiting: make(chan struct{}, 1)}
	r := &priorityRun{t: t, rng: rand.New(rand.NewPCG(seed, 11)), clk: clk,
		b: chutetest.MustOpen(t, "", &broker.Options{Clock: clk}), pm: &priorityModel{msgs: make(map[uint64]*pmMsg)}}
	if err := r.b.CreateQueue(context.Background(), priorityQueue, chute.QueueConfig{MaxDeliveries: chute.None}); err != nil {
		t.Fatal(err)
	}
	for round := range rounds {
		for range 1 + r.rng.IntN(3) {
			r.publish()
			if r.rng.IntN(3) == 0 {
				r.clk.Advance(r.msec(r.rng.IntN(4)))
			}
		}
		for i := 0; i < 1000; i++ { // bounded: the model's messages all leave long before
			now := r.clk.Now()
			switch {
			case r.rng.IntN(5) == 0:
				r.clk.Advance(r.msec(r.rng.IntN(4)))
			case r.pm.best(now) != 0:
				ds, err := r.b.Receive(context.Background(), priorityQueue, chute.ReceiveOptions{Max: 1, Wait: -1})
				if err != nil {
					t.Fatal(err)
				}
				r.check(seed, round, ds, r.pm.best(now), now)
			case !r.pm.nextDue(now).IsZero():
				next := r.pm.nextDue(now)
				ds := receiveWoken(t, r.b, r.clk, priorityQueue, next.Sub(now))
				r.waited++
				if r.pm.readyCount(next) > 1 {
					r.contested++
				}
				r.check(seed, round, ds, r.pm.best(next), next)
			default:
				i = 1000 // drained
			}
		}
		// Nothing ready or due: the broker agrees.
		ds, err := r.b.Receive(context.Background(), priorityQueue, chute.ReceiveOptions{Max: 1, Wait: -1})
		if err != nil {
			t.Fatal(err)
		}
		r.check(seed, round, ds, 0, r.clk.Now())
	}
	if r.received < rounds*3 || r.contested < rounds/4 {
		t.Fatalf("seed %d: only %d receives delivered, %d woken with several ready: the mix tests too little", seed, r.received, r.contested)
	}
	t.Logf("seed %d: %d receives checked, %d woken by the timer loop (%d with several ready)", seed, r.received, r.waited, r.contested)
}

func (r *priorityRun) msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// publish publishes a batch of one to five messages and adds them to the
// model.
func (r *priorityRun) publish() {
	now := r.clk.Now()
	msgs := make([]chute.Message, 1+r.rng.IntN(5))
	shared := r.msec(5 * (1 + r.rng.IntN(10)))
	for i := range msgs {
		msgs[i].Priority = r.rng.IntN(10)
		switch r.rng.IntN(10) {
		case 0, 1, 2:
		case 3, 4, 5, 6:
			msgs[i].Delay = shared
		default:
			msgs[i].Delay = r.msec(5 * (1 + r.rng.IntN(10)))
		}
		if r.rng.IntN(10) == 0 {
			msgs[i].TTL = r.msec(5 * (1 + r.rng.IntN(16)))
		}
	}
	res, err := r.b.Publish(context.Background(), priorityQueue, msgs...)
	if err != nil {
		r.t.Fatal(err)
	}
	for i, m := range msgs {
		x := &pmMsg{prio: m.Priority, due: now.Add(m.Delay)}
		if m.TTL > 0 {
			x.expire = now.Add(m.TTL)
		}
		r.pm.msgs[res[i].Seq] = x
	}
}

// check compares a receive at now with the model's answer want (0: none
// ready), then settles the delivery: an ack mostly, else a nack that
// makes it ready again at once or after a delay.
func (r *priorityRun) check(seed uint64, round int, ds []chute.Delivery, want uint64, now time.Time) {
	t := r.t
	t.Helper()
	switch {
	case want == 0 && len(ds) == 0:
		return
	case want == 0:
		t.Fatalf("seed %d round %d: got message %d (priority %d), want none ready", seed, round, ds[0].Seq, ds[0].Priority)
	case len(ds) == 0:
		t.Fatalf("seed %d round %d: got none, want message %d (priority %d)", seed, round, want, r.pm.msgs[want].prio)
	case ds[0].Seq != want:
		g := r.pm.msgs[ds[0].Seq]
		if g == nil || !g.readyAt(now) {
			t.Fatalf("seed %d round %d: got message %d, which is not ready; want %d", seed, round, ds[0].Seq, want)
		}
		t.Fatalf("seed %d round %d: got message %d (priority %d), want %d (priority %d): inversion",
			seed, round, ds[0].Seq, g.prio, want, r.pm.msgs[want].prio)
	}
	r.received++
	d, m := ds[0], r.pm.msgs[ds[0].Seq]
	if r.rng.IntN(10) < 7 {
		if err := r.b.Ack(context.Background(), priorityQueue, d.Receipt); err != nil {
			t.Fatal(err)
		}
		delete(r.pm.msgs, d.Seq)
		return
	}
	delay := -time.Nanosecond // at once
	if r.rng.IntN(2) == 0 {
		delay = r.msec(5 * (1 + r.rng.IntN(6)))
	}
	if err := r.b.Nack(context.Background(), priorityQueue, chute.Nack{Receipt: d.Receipt, Delay: delay}); err != nil {
		t.Fatal(err)
	}
	m.due = now.Add(max(delay, 0))
}

// receiveWoken receives one message from q with a receive that waits:
// once it sleeps, the clock moves on by d, when messages come due, and the
// broker's timer loop must wake it.
func receiveWoken(t *testing.T, b *broker.Broker, clk waitSignalClock, q string, d time.Duration) []chute.Delivery {
	t.Helper()
	type result struct {
		ds  []chute.Delivery
		err error
	}
	got := make(chan result, 1)
	go func() {
		ds, err := b.Receive(context.Background(), q, chute.ReceiveOptions{Max: 1, Wait: receiveWait})
		got <- result{ds, err}
	}()
	select {
	case <-clk.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the receive did not start waiting")
	}
	clk.Advance(d)
	select {
	case res := <-got:
		if res.err != nil {
			t.Fatal(res.err)
		}
		if len(res.ds) == 0 {
			t.Fatal("the receive timed out")
		}
		return res.ds
	case <-time.After(10 * time.Second):
		st, _ := b.QueueStats(context.Background(), q)
		t.Fatalf("the receive was not woken when messages came due, %v later (clock %v, %d timers pending; ready %d delayed %d in flight %d)",
			d, clk.Now().Format("15:04:05.000000"), clk.Pending(), st.Ready, st.Delayed, st.InFlight)
		return nil
	}
}
