package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"demo", "--data", t.TempDir()})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`received "URGENT order 3"`,
		"delivery 3 → nack",
		"chute-dead-reason=max-deliveries",
		`received "order 5, delayed by 1s"`,
		"redrove 1 dead letter",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// Priority: the urgent order is the first received.
	if i, j := strings.Index(out.String(), "URGENT"), strings.Index(out.String(), `received "order 1"`); i < 0 || j < i {
		t.Errorf("urgent order not received first:\n%s", out.String())
	}
}

func TestExitCodes(t *testing.T) {
	root := newRootCmd()
	root.SetArgs([]string{"demo", "extra-arg"})
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err == nil || exitCode(err) == 0 {
		t.Fatalf("bad arguments: %v (exit %d)", err, exitCode(err))
	}
	if exitCode(nil) != 0 {
		t.Fatal("success must exit 0")
	}
}
