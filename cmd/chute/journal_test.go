package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestJournalVerifyAndDump(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "demo", "--data", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	out, err := runCLI(t, "journal", "verify", dir)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("verify of a sound journal: %v\n%s", err, out)
	}
	out, err = runCLI(t, "journal", "dump", dir)
	if err != nil || !strings.Contains(out, "create-queue   orders") || !strings.Contains(out, "publish        orders messages=5") {
		t.Fatalf("dump: %v\n%s", err, out)
	}
	out, err = runCLI(t, "journal", "dump", "--json", dir)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(out, "\n", 2)[0]
	var rec map[string]any
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec["type"] != "create-queue" {
		t.Fatalf("json dump line %q: %v", first, err)
	}

	// Damage a message body: verify finds it and exits with status 3.
	seg := filepath.Join(dir, "00000001.seg")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("URGENT"))
	data[i] ^= 0x20
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "journal", "verify", dir)
	if exitCode(err) != 3 || !strings.Contains(out, "DAMAGED: "+seg) {
		t.Fatalf("verify of a damaged journal: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if _, err := runCLI(t, "journal", "verify"); exitCode(err) != 2 {
		t.Fatalf("verify without a directory: exit %d", exitCode(err))
	}
}
