package apitest

import (
	"time"

	"github.com/chutemq/chute"
)

// testPauseResume: a paused queue delivers nothing and says so in its
// stats, still takes publishes, keeps its leases going and its messages'
// delivery counts as they were; a waiting receive wakes on resume; a
// queue with a breaker reports it closed.
func testPauseResume(e *env) {
	q := e.queue("q", chute.QueueConfig{Breaker: chute.Breaker{Enabled: true}})
	e.publish(q, msg("held"), msg("waiting"))
	held := e.receiveOne(q)
	if err := e.api.PauseQueue(e.ctx, q); err != nil {
		e.t.Fatalf("pause: %v", err)
	}
	if err := e.api.PauseQueue(e.ctx, q); err != nil {
		e.t.Fatalf("pause twice: %v", err)
	}
	if s := e.stats(q); !s.Paused || s.Breaker != chute.BreakerClosed {
		e.t.Fatalf("stats of a paused queue: paused %v, breaker %v", s.Paused, s.Breaker)
	}
	e.publish(q, msg("published while paused"))
	if ds := e.receive(q, chute.ReceiveOptions{Max: 10, Wait: -1}); len(ds) != 0 {
		e.t.Fatalf("paused queue delivered %q", bodies(ds))
	}
	e.ack(q, held) // a lease held before the pause settles
	type result struct {
		ds  []chute.Delivery
		err error
	}
	done := make(chan result, 1)
	go func() {
		ds, err := e.api.Receive(e.ctx, q, chute.ReceiveOptions{Max: 10, Wait: 2 * longWait})
		done <- result{ds, err}
	}()
	start := time.Now()
	if err := e.api.ResumeQueue(e.ctx, q); err != nil {
		e.t.Fatalf("resume: %v", err)
	}
	var got []chute.Delivery
	for len(got) < 2 && time.Since(start) < longWait {
		r := <-done
		if r.err != nil {
			e.t.Fatalf("receive after resume: %v", r.err)
		}
		got = append(got, r.ds...)
		if len(got) < 2 {
			go func() {
				ds, err := e.api.Receive(e.ctx, q, chute.ReceiveOptions{Max: 10, Wait: longWait})
				done <- result{ds, err}
			}()
		}
	}
	e.wantBodies("after resume", got, "waiting", "published while paused")
	for _, d := range got {
		if d.Deliveries != 1 {
			e.t.Fatalf("%s: %d deliveries after a pause, want 1", d.Body, d.Deliveries)
		}
	}
	if s := e.stats(q); s.Paused {
		e.t.Fatal("still paused after resume")
	}
	e.wantErr("pause an unknown queue", e.api.PauseQueue(e.ctx, e.name("nope")), chute.ErrQueueNotFound)
	e.wantErr("resume an unknown queue", e.api.ResumeQueue(e.ctx, e.name("nope")), chute.ErrQueueNotFound)
}
