package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chutemq/chute/server"
)

// TestAlertsExport works offline: the built-in rules, or a file's.
func TestAlertsExport(t *testing.T) {
	s := &testServer{t: t}
	var out, errOut bytes.Buffer
	if err := s.runWith(strings.NewReader(""), &out, &errOut, "alerts", "export"); err != nil {
		t.Fatalf("alerts export: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "alert: queue_depth") || !strings.Contains(out.String(), "10000") {
		t.Fatalf("alerts export printed\n%s", out.String())
	}
	file := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  queue_depth:\n    threshold: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := s.runWith(strings.NewReader(""), &out, &errOut, "alerts", "export", "--alerts", file); err != nil {
		t.Fatalf("alerts export --alerts: %v", err)
	}
	if !strings.Contains(out.String(), "> 5") {
		t.Fatalf("alerts export --alerts printed\n%s", out.String())
	}
	if err := os.WriteFile(file, []byte("rules:\n  no_such_rule: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.runWith(strings.NewReader(""), &out, &errOut, "alerts", "export", "--alerts", file)
	if exitCode(err) != 2 {
		t.Fatalf("alerts export of a bad file: %v (exit %d)", err, exitCode(err))
	}
}

func TestAlertsLs(t *testing.T) {
	s := startCLIServer(t, server.Options{})
	if out := s.must("alerts", "ls"); !strings.Contains(out, "evaluates no alerts") {
		t.Fatalf("alerts ls without alerts printed\n%s", out)
	}
	s = startCLIServer(t, server.Options{Alerts: &server.AlertOptions{}})
	if out := s.must("alerts", "ls"); out != "no alerts\n" {
		t.Fatalf("alerts ls printed\n%s", out)
	}
	j := parseJSON[alertsJSON](t, s.must("alerts", "ls", "--json"))
	if !j.Enabled || len(j.Firing) != 0 {
		t.Fatalf("alerts ls --json: %+v", j)
	}
}
