package main

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/client"
	"github.com/chutemq/chute/server"
)

func TestQueueCreateUpdate(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	out := s.must("queue", "create", "q", "--visibility", "45s", "--max-deliveries", "3", "--backoff", "fixed",
		"--backoff-delay", "2s", "--backoff-max", "1m", "--jitter", "none", "--dlq", "q-dead", "--max-messages", "100",
		"--max-bytes", "1MiB", "--overflow", "drop-oldest", "--ttl", "7d", "--dlq-expired", "--dedup-window", "none")
	if out != "created queue q\n" {
		t.Fatalf("create printed %q", out)
	}
	want := chute.QueueConfig{
		VisibilityTimeout: 45 * time.Second, MaxDeliveries: 3,
		Backoff:         chute.Backoff{Kind: chute.BackoffFixed, Delay: 2 * time.Second, Max: time.Minute, Jitter: chute.None},
		DeadLetterQueue: "q-dead", MaxMessages: 100, MaxBytes: 1 << 20, Overflow: chute.OverflowDropOldest,
		MessageTTL: 7 * 24 * time.Hour, DeadLetterExpired: true, DedupWindow: chute.None,
		MaxDedupIDs: chute.DefaultMaxDedupIDs, SessionWindow: chute.DefaultSessionWindow, // (no flags for them yet)
		SettledWindow: chute.DefaultDedupWindow, MaxSettled: chute.DefaultMaxSettled, // (de-dup off: the default window)
		CompressMin: chute.DefaultCompressMin,
	}
	if got := s.stats("q").Config; !reflect.DeepEqual(got, want) {
		t.Fatalf("created config\n%+v\nwant\n%+v", got, want)
	}

	// update changes only what it is given; none turns a setting off.
	out = s.must("queue", "update", "q", "--visibility", "1m", "--max-deliveries", "none")
	if !strings.Contains(out, "updated queue q") || !strings.Contains(out, "visibility") ||
		!strings.Contains(out, "no limit") || strings.Contains(out, "ttl") {
		t.Fatalf("update printed\n%s", out)
	}
	want.VisibilityTimeout, want.MaxDeliveries = time.Minute, chute.None
	if got := s.stats("q").Config; !reflect.DeepEqual(got, want) {
		t.Fatalf("updated config\n%+v\nwant\n%+v", got, want)
	}
	// 0 gives every setting its default back (the default of a depth limit
	// and of the TTL is none).
	s.must("queue", "update", "q", "--visibility", "0", "--max-deliveries", "0", "--backoff-delay", "0",
		"--backoff-max", "0", "--jitter", "0", "--max-messages", "0", "--max-bytes", "0", "--ttl", "0", "--dedup-window", "0")
	def := chute.QueueConfig{}.WithDefaults("q")
	want.VisibilityTimeout, want.MaxDeliveries, want.Backoff.Delay, want.Backoff.Max, want.Backoff.Jitter =
		def.VisibilityTimeout, def.MaxDeliveries, def.Backoff.Delay, def.Backoff.Max, def.Backoff.Jitter
	want.MaxMessages, want.MaxBytes, want.MessageTTL, want.DedupWindow = chute.None, chute.None, chute.None, def.DedupWindow
	if got := s.stats("q").Config; !reflect.DeepEqual(got, want) {
		t.Fatalf("config after 0s\n%+v\nwant\n%+v", got, want)
	}
	// --no-dlq, then a dead-letter queue again.
	s.must("queue", "update", "q", "--no-dlq")
	if got := s.stats("q").Config; !got.NoDeadLetter || got.DeadLetterQueue != "" || got.DeadLetterExpired {
		t.Fatalf("after --no-dlq: %+v", got)
	}
	q := parseJSON[queueJSON](t, s.must("queue", "update", "q", "--dlq", "other", "--json"))
	if q.Name != "q" || q.Config.DLQ != "other" || q.Config.NoDLQ || q.Config.Visibility != "30s" ||
		q.Config.Backoff != "fixed" || q.Config.Overflow != "drop-oldest" || q.Config.DedupWindow != "2m" {
		t.Fatalf("update --json: %+v", q)
	}
	// The broker checks what the command line cannot: a queue cannot
	// dead-letter into itself (refused, 5).
	s.wantExit(5, "queue", "update", "q", "--dlq", "q")
	// The command line checks the rest (usage, 2).
	for _, args := range [][]string{
		{"--max-deliveries", "-3"}, {"--max-deliveries", "many"}, {"--jitter", "-0.5"}, {"--jitter", "1.5"},
		{"--ttl", "-5s"}, {"--visibility", "none"}, {"--backoff-delay", "none"}, {"--max-bytes", "lots"},
		{"--dedup-window", "-2m"}, {"--max-messages", "-2"},
	} {
		s.wantExit(2, append([]string{"queue", "update", "q"}, args...)...)
	}
}

func TestQueueConfigJSON(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	// Defaults, as create without flags gives them: durations as
	// fmtDuration strings, counts and sizes as numbers, -1 and "none" for
	// none.
	raw := parseJSON[map[string]any](t, s.must("queue", "create", "plain", "--json"))
	cfg := raw["config"].(map[string]any)
	for k, want := range map[string]any{
		"visibility": "30s", "max_deliveries": 10.0, "backoff": "exponential", "backoff_delay": "1s", "backoff_max": "5m",
		"jitter": 0.2, "dlq": "plain.dlq", "no_dlq": false, "max_messages": -1.0, "max_bytes": -1.0,
		"overflow": "reject", "ttl": "none", "dlq_expired": false, "dedup_window": "2m",
		"max_dedup_ids": 1e6, "session_window": "1h", "breaker": nil, "group": "",
		"settled_window": "2m", "max_settled": 1e4, "compression": "none", "compress_min": 512.0,
	} {
		if cfg[k] != want {
			t.Errorf("default config %s = %#v, want %#v", k, cfg[k], want)
		}
	}
	if len(cfg) != 22 { // attributes: left out when there are none
		t.Errorf("config has %d keys, want 22: %v", len(cfg), cfg)
	}
	// Nothing ready: oldest_age is null, in queue stat and queue ls alike.
	if v, ok := raw["oldest_age"]; !ok || v != nil {
		t.Errorf("oldest_age of an empty queue: %#v (present %v), want null", v, ok)
	}
	// Limits and none as numbers and strings.
	raw = parseJSON[map[string]any](t, s.must("queue", "create", "lim", "--max-bytes", "64MiB", "--max-deliveries", "none",
		"--jitter", "none", "--ttl", "36h", "--dedup-window", "none", "--max-messages", "5",
		"--max-dedup-ids", "none", "--session-window", "none", "--json"))
	cfg = raw["config"].(map[string]any)
	for k, want := range map[string]any{
		"max_bytes": float64(64 << 20), "max_deliveries": -1.0, "jitter": -1.0, "ttl": "1d12h", "dedup_window": "none", "max_messages": 5.0,
		"max_dedup_ids": -1.0, "session_window": "none",
	} {
		if cfg[k] != want {
			t.Errorf("config %s = %#v, want %#v", k, cfg[k], want)
		}
	}
	s.must("pub", "lim", "x")
	qs := parseJSON[[]map[string]any](t, s.must("queue", "ls", "--json"))
	for _, q := range qs {
		age, isString := q["oldest_age"].(string)
		switch q["name"] {
		case "lim":
			if _, err := parseDuration(age); !isString || err != nil {
				t.Errorf("oldest_age of a queue with a ready message: %#v", q["oldest_age"])
			}
		case "plain":
			if q["oldest_age"] != nil {
				t.Errorf("queue ls: oldest_age of an empty queue: %#v", q["oldest_age"])
			}
		}
	}
	// Text: none and no limit, sizes for people.
	out := s.must("queue", "stat", "lim")
	for _, want := range []string{"64 MiB (67108864 bytes)", "1d12h", "max-deliveries  no limit", "jitter          none", "dedup-window    none"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue stat lacks %q:\n%s", want, out)
		}
	}
}

func TestQueuePeek(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	out, errOut, err := s.runIn(strings.NewReader(""), "queue", "peek", "q")
	if err != nil || out != "" || errOut != "no ready messages in q\n" {
		t.Fatalf("peek of an empty queue: %v, stdout %q, stderr %q", err, out, errOut)
	}
	s.must("pub", "q", "low")
	s.must("pub", "q", "high", "--priority", "9", "--header", "k=v")
	s.must("pub", "q", "later", "--delay", "1h")
	out = s.must("queue", "peek", "q")
	want := "seq=2 prio=9 deliveries=0 body=\"high\" headers=k=v\nseq=1 prio=0 deliveries=0 body=\"low\"\n"
	if out != want {
		t.Fatalf("peek printed\n%s\nwant\n%s", out, want)
	}
	ds := jsonLines[deliveryJSON](t, s.must("queue", "peek", "q", "--count", "1", "--json"))
	if len(ds) != 1 || ds[0].Seq != 2 || ds[0].Receipt != "" || ds[0].Queue != "q" {
		t.Fatalf("peek --count 1 --json: %+v", ds)
	}
	// Nothing was leased or delivered.
	if st := s.stats("q"); st.Ready != 2 || st.InFlight != 0 || st.Totals.Delivered != 0 {
		t.Fatalf("peek took messages: %+v", st)
	}
	s.wantExit(4, "queue", "peek", "nope")
	s.wantExit(2, "queue", "peek", "q", "--count", "0")
}

func TestQueueLsStatPurgeRm(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "b")
	s.must("queue", "create", "a")
	s.must("pub", "a", "one")
	s.must("pub", "a", "two")
	s.must("pub", "a", "later", "--delay", "1h")

	// Sorted by name: a, b; a has 2 ready and 1 delayed. Their dead-letter
	// queues, created with them and never used, are left out.
	out := s.must("queue", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "IN FLIGHT") || strings.Contains(out, ".dlq") {
		t.Fatalf("queue ls:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[0] != "a" || f[1] != "2" || f[2] != "1" || f[3] != "0" {
		t.Fatalf("queue ls row of a: %q", lines[1])
	}
	qs := parseJSON[[]queueJSON](t, s.must("queue", "ls", "--json"))
	if len(qs) != 2 || qs[0].Name != "a" || qs[0].Ready != 2 || qs[0].Delayed != 1 || qs[1].Name != "b" {
		t.Fatalf("queue ls --json: %+v", qs)
	}
	// --all shows them.
	qs = parseJSON[[]queueJSON](t, s.must("queue", "ls", "--all", "--json"))
	if len(qs) != 4 || qs[1].Name != "a.dlq" || qs[3].Name != "b.dlq" {
		t.Fatalf("queue ls --all --json: %+v", qs)
	}
	// A queue named *.dlq that is nobody's dead-letter queue is listed, and
	// so is a dead-letter queue once something was in it.
	s.must("queue", "create", "mine.dlq")
	s.must("pub", "b.dlq", "by hand")
	out = s.must("queue", "ls")
	if !strings.Contains(out, "mine.dlq") || !strings.Contains(out, "b.dlq") || strings.Contains(out, "a.dlq") {
		t.Fatalf("queue ls after using b.dlq:\n%s", out)
	}
	s.must("queue", "purge", "b.dlq")
	if out := s.must("queue", "ls"); !strings.Contains(out, "b.dlq") {
		t.Fatalf("queue ls hides an emptied dead-letter queue that was used:\n%s", out)
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
	// A dead-letter queue in use is not deleted: refused, with what to do.
	_, err := s.run("queue", "rm", "a.dlq")
	if exitCode(err) != 5 || err.Error() != "queue a.dlq is the dead-letter queue of a: give it another one first (chute queue update a --dlq NAME, or --no-dlq), or delete it" {
		t.Fatalf("rm of a dead-letter queue in use: exit %d, %v", exitCode(err), err)
	}
	if out := s.must("queue", "rm", "a"); out != "deleted queue a\n" {
		t.Fatalf("rm printed %q", out)
	}
	s.wantExit(4, "queue", "stat", "a")
	s.wantExit(4, "queue", "rm", "a")
	if m := parseJSON[map[string]any](t, s.must("queue", "rm", "b", "--json")); m["deleted"] != true {
		t.Fatalf("rm --json: %v", m)
	}
	// Unused now, a.dlq can go.
	s.must("queue", "rm", "a.dlq")
}

// TestQueueStatLatencyAndClients: queue stat shows the server's consumer
// and producer counts and the latency summaries, as text and JSON.
func TestQueueStatLatencyAndClients(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "orders")
	c, err := client.Dial(s.addr, client.WithClientID("worker-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Publish(ctx, "orders", chute.Message{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	ds, err := c.Receive(ctx, "orders", chute.ReceiveOptions{Max: 1, Wait: -1})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Receive: %v, %v", ds, err)
	}
	if err := c.Ack(ctx, "orders", ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
	out := s.must("queue", "stat", "orders")
	for _, re := range []string{`(?m)^consumers +1$`, `(?m)^producers +1$`,
		`(?m)^processing latency +avg \S+, p50 \S+, p99 \S+ \(1\)$`, `(?m)^completion latency +avg .* \(1\)$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("queue stat lacks %s:\n%s", re, out)
		}
	}
	j := parseJSON[map[string]any](t, s.must("queue", "stat", "orders", "--json"))
	if j["consumers"] != 1.0 || j["producers"] != 1.0 {
		t.Errorf("queue stat --json: consumers %v, producers %v; want 1, 1", j["consumers"], j["producers"])
	}
	lat, _ := j["latency"].(map[string]any)
	for _, k := range []string{"wait", "processing", "completion"} {
		l, _ := lat[k].(map[string]any)
		if l["count"] != 1.0 || len(l) != 4 {
			t.Errorf("latency.%s = %v; want count 1 and avg, p50, p99", k, l)
		}
		for _, d := range []string{"avg", "p50", "p99"} {
			if v, ok := l[d].(string); !ok {
				t.Errorf("latency.%s.%s = %#v; want a duration string", k, d, l[d])
			} else if _, err := parseDuration(v); err != nil {
				t.Errorf("latency.%s.%s = %q: %v", k, d, v, err)
			}
		}
	}
}
