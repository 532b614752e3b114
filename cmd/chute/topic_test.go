package main

import (
	"testing"

	"github.com/chutemq/chute/server"
)

func TestTopicCreateRm(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	tj := parseJSON[topicJSON](t, s.must("topic", "create", "t", "--dedup-window", "10s", "--json"))
	if tj.Name != "t" || tj.DedupWindow != "10s" || tj.Subscriptions == nil {
		t.Fatalf("topic create --json: %+v", tj)
	}
	s.must("topic", "create", "nodedup", "--dedup-window", "none")
	s.must("topic", "create", "zero", "--dedup-window", "0")
	s.must("topic", "create", "plain")
	ts := parseJSON[[]topicJSON](t, s.must("topic", "ls", "--json"))
	got := map[string]string{}
	for _, x := range ts {
		got[x.Name] = x.DedupWindow
	}
	if got["nodedup"] != "none" || got["plain"] != "2m" || got["zero"] != "2m" || got["t"] != "10s" {
		t.Fatalf("dedup windows: %v", got)
	}
	s.wantExit(5, "topic", "create", "t")
	if out := s.must("topic", "rm", "t"); out != "deleted topic t\n" {
		t.Fatalf("topic rm printed %q", out)
	}
	s.wantExit(4, "topic", "rm", "t")
	s.wantExit(2, "topic")
}
