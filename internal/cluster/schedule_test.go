package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/chutemq/chute"
)

// TestScheduleFailover: a schedule created through the leader fires from
// the leader's timer; when the leader stops, the next one fires it on,
// and every firing is stored once (the messages received are the
// firings the schedule counts).
func TestScheduleFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := context.Background()
	l := c.leader()
	api := NewAPI(l.node)
	if err := api.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	if err := api.CreateSchedule(ctx, "tick", chute.ScheduleConfig{Target: "q", Every: time.Second,
		Message: chute.Message{Body: []byte("tick")}}); err != nil {
		t.Fatal(err)
	}
	got := 0
	receive := func(api *API) {
		ds, err := api.Receive(ctx, "q", chute.ReceiveOptions{Max: 10, Wait: 5 * time.Second})
		if err != nil || len(ds) == 0 {
			t.Fatalf("no firing within 5 s: %v", err)
		}
		for _, d := range ds {
			if string(d.Body) != "tick" {
				t.Fatalf("fired %q", d.Body)
			}
			if err := api.Ack(ctx, "q", d.Receipt); err != nil {
				t.Fatal(err)
			}
		}
		got += len(ds)
	}
	receive(api)
	c.stop(l.id)
	l2 := c.leader()
	api = NewAPI(l2.node)
	for before := got; got < before+2; {
		receive(api)
	}
	if err := api.PauseSchedule(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	// Every firing stored was received once: the count the schedule
	// keeps and the messages agree (one proposed before the pause may
	// still be on its way).
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos, err := api.Schedules(ctx)
		if err != nil || len(infos) != 1 || !infos[0].Paused {
			t.Fatalf("schedules: %+v %v", infos, err)
		}
		fired := infos[0].Fired
		switch {
		case int64(got) > fired:
			t.Fatalf("%d messages received, %d firings stored", got, fired)
		case int64(got) == fired:
		case time.Now().After(deadline):
			t.Fatalf("%d messages received within 10 s, %d firings stored", got, fired)
		default:
			ds, _ := api.Receive(ctx, "q", chute.ReceiveOptions{Max: 10, Wait: 100 * time.Millisecond})
			for _, d := range ds {
				api.Ack(ctx, "q", d.Receipt)
			}
			got += len(ds)
			continue
		}
		break
	}
	c.start(l.id)
	c.converge(nil)
}
