package main

import (
	"strings"
	"testing"

	"github.com/chutemq/chute/server"
)

func TestSubscriptionFanOut(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("topic", "create", "orders")
	if out := s.must("subscription", "create", "orders", "all"); !strings.Contains(out, "created subscription all of topic orders") {
		t.Fatalf("subscription create printed %q", out)
	}
	q := parseJSON[queueJSON](t, s.must("subscription", "create", "orders", "eu", "--filter", "region=eu",
		"--filter", "kind=new", "--max-deliveries", "2", "--json"))
	if q.Topic != "orders" || q.Filter["region"] != "eu" || q.Filter["kind"] != "new" || q.Config.MaxDeliveries != 2 {
		t.Fatalf("subscription create --json: %+v", q)
	}
	s.must("queue", "create", "plain")

	s.must("pub", "orders", "m1", "--header", "region=eu", "--header", "kind=new")
	s.must("pub", "orders", "m2", "--header", "region=us", "--header", "kind=new")
	s.must("pub", "orders", "m3", "--header", "region=eu")

	out := s.must("sub", "all", "--count", "3")
	for _, body := range []string{"m1", "m2", "m3"} {
		if !strings.Contains(out, `body="`+body+`"`) {
			t.Errorf("subscription all lacks %s:\n%s", body, out)
		}
	}
	// eu gets m1 only: after it, nothing is waiting (publish is
	// synchronous, so a wrongly routed m2 or m3 would be there already).
	out, _, err := s.runIn(strings.NewReader(""), "sub", "eu", "--count", "5", "--wait", "20ms")
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, `body="m1"`) || exitCode(err) != 9 {
		t.Fatalf("filtered subscription got (exit %d)\n%s", exitCode(err), out)
	}

	out = s.must("subscription", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "all ") ||
		!strings.Contains(lines[2], "kind=new,region=eu") || strings.Contains(out, "plain") {
		t.Fatalf("subscription ls:\n%s", out)
	}
	qs := parseJSON[[]queueJSON](t, s.must("subscription", "ls", "orders", "--json"))
	if len(qs) != 2 || qs[0].Name != "all" || qs[1].Name != "eu" || qs[1].Filter["region"] != "eu" {
		t.Fatalf("subscription ls orders --json: %+v", qs)
	}
	s.wantExit(4, "subscription", "ls", "nope")

	out = s.must("topic", "ls")
	if !strings.Contains(out, "SUBSCRIPTIONS") || !strings.Contains(out, "all,eu") {
		t.Fatalf("topic ls:\n%s", out)
	}
	ts := parseJSON[[]topicJSON](t, s.must("topic", "ls", "--json"))
	if len(ts) != 1 || ts[0].Name != "orders" || ts[0].Published != 3 || len(ts[0].Subscriptions) != 2 {
		t.Fatalf("topic ls --json: %+v", ts)
	}

	if out := s.must("subscription", "rm", "orders", "eu"); out != "deleted subscription eu of topic orders\n" {
		t.Fatalf("subscription rm printed %q", out)
	}
	s.wantExit(4, "queue", "stat", "eu")
	s.wantExit(4, "subscription", "rm", "orders", "plain")
	s.wantExit(4, "pub", "nowhere", "x")
}
