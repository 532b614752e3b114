package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/server"
)

func TestQueuePauseResume(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q")
	if out := s.must("queue", "pause", "q"); out != "paused queue q (paused)\n" {
		t.Fatalf("pause printed %q", out)
	}
	if st := s.stats("q"); !st.Paused {
		t.Fatal("not paused")
	}
	out := s.must("queue", "stat", "q")
	if !regexpMatch(`(?m)^paused\s+yes$`, out) || !regexpMatch(`(?m)^breaker\s+off$`, out) {
		t.Fatalf("stat of a paused queue:\n%s", out)
	}
	q := parseJSON[queueJSON](t, s.must("queue", "stat", "q", "--json"))
	if !q.Paused || q.Breaker != "closed" {
		t.Fatalf("stat --json: paused %v breaker %q", q.Paused, q.Breaker)
	}
	q = parseJSON[queueJSON](t, s.must("queue", "resume", "q", "--json"))
	if q.Paused {
		t.Fatal("resume --json: still paused")
	}
	if out := s.must("queue", "resume", "q"); out != "resumed queue q (delivering)\n" {
		t.Fatalf("resume printed %q", out)
	}
	s.wantExit(2, "queue", "pause")
	s.wantExit(2, "queue", "pause", "a", "b")
	s.wantExit(4, "queue", "pause", "nope")
}

func TestQueueBreakerGroupAttrFlags(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "q", "--breaker", "--breaker-threshold", "0.25", "--breaker-window", "2m",
		"--breaker-probes", "5", "--group", "billing", "--attr", "team=payments", "--attr", "tier=1")
	cfg := s.stats("q").Config
	want := chute.Breaker{Enabled: true, Threshold: 0.25, Window: 2 * time.Minute,
		MinDeliveries: chute.DefaultBreakerMinDeliveries, Cooldown: chute.DefaultBreakerCooldown, Probes: 5}
	if cfg.Breaker != want || cfg.Group != "billing" || cfg.Attributes["team"] != "payments" || cfg.Attributes["tier"] != "1" {
		t.Fatalf("created config %+v", cfg)
	}
	out := s.must("queue", "stat", "q")
	for _, line := range []string{`(?m)^breaker\s+closed$`, `(?m)^\s+breaker\s+on$`, `(?m)^\s+breaker-threshold\s+0.25$`,
		`(?m)^\s+breaker-probes\s+5$`, `(?m)^\s+group\s+billing$`, `(?m)^\s+attr\s+team=payments`} {
		if !regexpMatch(line, out) {
			t.Fatalf("stat lacks %s:\n%s", line, out)
		}
	}
	q := parseJSON[queueJSON](t, s.must("queue", "stat", "q", "--json"))
	if b := q.Config.Breaker; b == nil || b.Threshold != 0.25 || b.Window != "2m" || b.Probes != 5 ||
		q.Config.Group != "billing" || q.Config.Attributes["tier"] != "1" || q.Breaker != "closed" {
		t.Fatalf("stat --json config %+v breaker %+v", q.Config, q.Config.Breaker)
	}

	// update: a --breaker-* flag keeps the rest; --attr key= removes one.
	out = s.must("queue", "update", "q", "--breaker-cooldown", "10s", "--attr", "tier=")
	if !strings.Contains(out, "breaker-cooldown") || strings.Contains(out, "breaker-window") {
		t.Fatalf("update printed\n%s", out)
	}
	cfg = s.stats("q").Config
	want.Cooldown = 10 * time.Second
	if cfg.Breaker != want || len(cfg.Attributes) != 1 {
		t.Fatalf("updated config %+v", cfg)
	}
	s.must("queue", "update", "q", "--breaker=false")
	if cfg = s.stats("q").Config; cfg.Breaker.Enabled {
		t.Fatalf("breaker still on: %+v", cfg.Breaker)
	}
	// A --breaker-* flag alone turns it on.
	s.must("queue", "create", "r", "--breaker-probes", "2")
	if b := s.stats("r").Config.Breaker; !b.Enabled || b.Probes != 2 {
		t.Fatalf("--breaker-probes alone: %+v", b)
	}
	for _, args := range [][]string{
		{"--breaker=false", "--breaker-probes", "2"}, {"--breaker-threshold", "1.5"}, {"--breaker-probes", "-1"},
		{"--breaker-window", "-1s"}, {"--attr", "novalue"}, {"--attr", "=v"},
	} {
		s.wantExit(2, append([]string{"queue", "update", "q"}, args...)...)
	}
	// The broker checks the ranges (refused, 5).
	s.wantExit(5, "queue", "update", "q", "--breaker-window", "10ms")
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
