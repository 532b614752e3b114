package main

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/server"
)

// complete runs cobra's hidden __complete command, as a shell's completion
// script does, and returns the completions and the directive.
func (s *testServer) complete(args ...string) ([]string, cobra.ShellCompDirective) {
	s.t.Helper()
	s.t.Setenv("CHUTE_SERVER", s.addr)
	var out, errOut strings.Builder
	if err := s.runWith(strings.NewReader(""), &out, &errOut, append([]string{cobra.ShellCompRequestCmd}, args...)...); err != nil {
		s.t.Fatalf("__complete %q: %v\n%s", args, err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	var directive int
	if _, err := fmt.Sscanf(last, ":%d", &directive); err != nil {
		s.t.Fatalf("__complete %q: no directive line in %q", args, out.String())
	}
	return lines[:len(lines)-1], cobra.ShellCompDirective(directive)
}

func TestCompletion(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	s.must("queue", "create", "jobs")
	s.must("queue", "create", "jam")
	s.must("topic", "create", "orders")
	s.must("subscription", "create", "orders", "billing")
	s.must("subscription", "create", "orders", "shipping")
	s.must("topic", "create", "other")

	const noFiles = cobra.ShellCompDirectiveNoFileComp
	queues := []string{"billing", "billing.dlq", "jam", "jam.dlq", "jobs", "jobs.dlq", "shipping", "shipping.dlq"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"queue", "stat", ""}, queues},
		{[]string{"queue", "stat", "j"}, []string{"jam", "jam.dlq", "jobs", "jobs.dlq"}},
		{[]string{"queue", "stat", "jobs", ""}, nil}, // one argument only
		{[]string{"queue", "create", ""}, nil},       // a new name
		{[]string{"queue", "peek", "ja"}, []string{"jam", "jam.dlq"}},
		{[]string{"sub", "b"}, []string{"billing", "billing.dlq"}},
		{[]string{"ack", "jo"}, []string{"jobs", "jobs.dlq"}},
		{[]string{"ack", "jobs", ""}, nil}, // receipts
		{[]string{"pub", "o"}, []string{"orders", "other"}},
		{[]string{"pub", "j"}, []string{"jam", "jam.dlq", "jobs", "jobs.dlq"}},
		{[]string{"topic", "rm", ""}, []string{"orders", "other"}},
		{[]string{"subscription", "create", ""}, []string{"orders", "other"}},
		{[]string{"subscription", "rm", "orders", ""}, []string{"billing", "shipping"}},
		{[]string{"subscription", "rm", "other", ""}, nil},
		{[]string{"dlq", "peek", ""}, []string{"billing.dlq", "jam.dlq", "jobs.dlq", "shipping.dlq"}},
		{[]string{"dlq", "redrive", "jo"}, []string{"jobs.dlq"}},
		{[]string{"queue", "create", "x", "--backoff", ""}, []string{"exponential", "fixed", "none"}},
		{[]string{"queue", "update", "jobs", "--overflow", ""}, []string{"reject", "drop-oldest"}},
		{[]string{"subscription", "create", "orders", "x", "--backoff", "f"}, []string{"fixed"}},
	} {
		got, directive := s.complete(tc.args...)
		if !slices.Equal(got, tc.want) || directive != noFiles {
			t.Errorf("complete %q: %q (directive %d), want %q (directive %d)", tc.args, got, directive, tc.want, noFiles)
		}
	}

	// No server: nothing to offer, and no file names either, soon.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := &testServer{t: t, addr: ln.Addr().String()}
	ln.Close()
	start := time.Now()
	if got, directive := gone.complete("queue", "stat", ""); len(got) != 0 || directive != noFiles {
		t.Errorf("complete without a server: %q (directive %d)", got, directive)
	}
	if took := time.Since(start); took > completeTimeout+time.Second {
		t.Errorf("completion without a server took %v", took)
	}
	// A server that takes the connection and never answers: the timeout
	// ends the wait.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	start = time.Now()
	if got, directive := (&testServer{t: t, addr: mute.Addr().String()}).complete("queue", "stat", ""); len(got) != 0 || directive != noFiles {
		t.Errorf("complete with a mute server: %q (directive %d)", got, directive)
	}
	if took := time.Since(start); took > completeTimeout+time.Second {
		t.Errorf("completion with a mute server took %v, want about %v", took, completeTimeout)
	}
}

func TestCompletionScripts(t *testing.T) {
	s := &testServer{t: t}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out, errOut strings.Builder
		if err := s.runWith(strings.NewReader(""), &out, &errOut, "completion", shell); err != nil || !strings.Contains(out.String(), "__complete") {
			t.Errorf("chute completion %s: %v (%d bytes)", shell, err, out.Len())
		}
	}
}
