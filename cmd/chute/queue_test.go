package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

func TestQueueCreateUpdate(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	out := s.must("queue", "create", "q", "--visibility", "45s", "--max-deliveries", "3", "--backoff", "fixed",
		"--backoff-delay", "2s", "--backoff-max", "1m", "--jitter", "0", "--dlq", "q-dead", "--max-messages", "100",
		"--max-bytes", "1000000", "--overflow", "drop-oldest", "--ttl", "1h", "--dlq-expired", "--dedup-window", "0")
	if out != "created queue q\n" {
		t.Fatalf("create printed %q", out)
	}
	want := chute.QueueConfig{
		VisibilityTimeout: 45 * time.Second, MaxDeliveries: 3,
		Backoff:         chute.Backoff{Kind: chute.BackoffFixed, Delay: 2 * time.Second, Max: time.Minute, Jitter: -1},
		DeadLetterQueue: "q-dead", MaxMessages: 100, MaxBytes: 1000000, Overflow: chute.OverflowDropOldest,
		MessageTTL: time.Hour, DeadLetterExpired: true, DedupWindow: -1,
	}
	if got := s.stats("q").Config; got != want {
		t.Fatalf("created config\n%+v\nwant\n%+v", got, want)
	}

	// update changes only what it is given.
	out = s.must("queue", "update", "q", "--visibility", "1m", "--max-deliveries", "0")
	if !strings.Contains(out, "updated queue q") || !strings.Contains(out, "visibility") ||
		!strings.Contains(out, "no limit") || strings.Contains(out, "ttl") {
		t.Fatalf("update printed\n%s", out)
	}
	want.VisibilityTimeout, want.MaxDeliveries = time.Minute, -1
	if got := s.stats("q").Config; got != want {
		t.Fatalf("updated config\n%+v\nwant\n%+v", got, want)
	}
	// --no-dlq, then a dead-letter queue again.
	s.must("queue", "update", "q", "--no-dlq")
	if got := s.stats("q").Config; !got.NoDeadLetter || got.DeadLetterQueue != "" || got.DeadLetterExpired {
		t.Fatalf("after --no-dlq: %+v", got)
	}
	q := parseJSON[queueJSON](t, s.must("queue", "update", "q", "--dlq", "other", "--json"))
	if q.Name != "q" || q.Config.DLQ != "other" || q.Config.NoDLQ || q.Config.Visibility != "1m0s" ||
		q.Config.Backoff != "fixed" || q.Config.Overflow != "drop-oldest" || q.Config.DedupWindow != "0s" {
		t.Fatalf("update --json: %+v", q)
	}
	// Defaults, as create without flags gives them, in JSON.
	q = parseJSON[queueJSON](t, s.must("queue", "create", "plain", "--json"))
	if c := q.Config; c.Visibility != "30s" || c.MaxDeliveries != 10 || c.Backoff != "exponential" ||
		c.DLQ != "plain.dlq" || c.Jitter != 0.2 || c.DedupWindow != "2m0s" || c.TTL != "0s" {
		t.Fatalf("default config as JSON: %+v", c)
	}
	// The broker checks what the command line cannot: a queue cannot
	// dead-letter into itself (refused, 5).
	s.wantExit(5, "queue", "update", "q", "--dlq", "q")
}

func TestQueueLsStatPurgeRm(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "b")
	s.must("queue", "create", "a")
	s.must("pub", "a", "one")
	s.must("pub", "a", "two")
	s.must("pub", "a", "later", "--delay", "1h")

	out := s.must("queue", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "IN FLIGHT") {
		t.Fatalf("queue ls:\n%s", out)
	}
	// Sorted by name: a, a.dlq, b, b.dlq; a has 2 ready and 1 delayed.
	if f := strings.Fields(lines[1]); f[0] != "a" || f[1] != "2" || f[2] != "1" || f[3] != "0" {
		t.Fatalf("queue ls row of a: %q", lines[1])
	}
	qs := parseJSON[[]queueJSON](t, s.must("queue", "ls", "--json"))
	if len(qs) != 4 || qs[0].Name != "a" || qs[0].Ready != 2 || qs[0].Delayed != 1 || qs[2].Name != "b" {
		t.Fatalf("queue ls --json: %+v", qs)
	}

	out = s.must("queue", "stat", "a")
	for _, want := range []string{"ready", "2 (", "delayed", "enqueued", "config", "visibility", "30s", "dlq", "a.dlq", "dedup-window"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue stat lacks %q:\n%s", want, out)
		}
	}
	q := parseJSON[queueJSON](t, s.must("queue", "stat", "a", "--json"))
	if q.Name != "a" || q.Ready != 2 || q.Totals.Enqueued != 3 || q.Config.MaxDeliveries != 10 {
		t.Fatalf("queue stat --json: %+v", q)
	}

	if out := s.must("queue", "purge", "a"); out != "purged 3 message(s) from queue a\n" {
		t.Fatalf("purge printed %q", out)
	}
	if st := s.stats("a"); st.Depth() != 0 {
		t.Fatalf("after purge: %+v", st)
	}
	s.must("pub", "b", "x")
	if m := parseJSON[map[string]any](t, s.must("queue", "purge", "b", "--json")); m["purged"] != 1.0 || m["queue"] != "b" {
		t.Fatalf("purge --json: %v", m)
	}
	if out := s.must("queue", "rm", "a"); out != "deleted queue a\n" {
		t.Fatalf("rm printed %q", out)
	}
	s.wantExit(4, "queue", "stat", "a")
	s.wantExit(4, "queue", "rm", "a")
	if m := parseJSON[map[string]any](t, s.must("queue", "rm", "b", "--json")); m["deleted"] != true {
		t.Fatalf("rm --json: %v", m)
	}
}
