package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
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

// TestJournalLockAndForce: verify and dump refuse a directory a broker
// holds, naming it; --force reads anyway, with a warning.
func TestJournalLockAndForce(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "demo", "--data", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	b, err := broker.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, cmd := range []string{"verify", "dump"} {
		out, err := runCLI(t, "journal", cmd, dir)
		var le *broker.LockedError
		if !errors.As(err, &le) || le.PID != os.Getpid() || exitCode(err) != 1 || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("%s of a directory in use: %v\n%s", cmd, err, out)
		}
		out, err = runCLI(t, "journal", cmd, "--force", dir)
		if err != nil || !strings.Contains(out, "warning: --force") {
			t.Fatalf("%s --force: %v\n%s", cmd, err, out)
		}
	}
	if _, err := runCLI(t, "journal", "repair", "--dry-run", dir); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("repair of a directory in use: %v", err)
	}
}

// TestJournalDamagedServeExits3: serve on a damaged journal fails at Open with
// the damage, and main's exit status is 3 (chute.ErrJournalCorrupt is the
// sentinel exitCode tests).
func TestJournalDamagedServeExits3(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "demo", "--data", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	ckpts, _ := filepath.Glob(filepath.Join(dir, "*.ckpt"))
	if len(ckpts) != 1 {
		t.Fatalf("checkpoints %v", ckpts)
	}
	data, _ := os.ReadFile(ckpts[0])
	data[len(data)/2] ^= 1
	os.WriteFile(ckpts[0], data, 0o644)
	out, err := runCLI(t, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	if exitCode(err) != 3 || !errors.Is(err, chute.ErrJournalCorrupt) || !strings.Contains(err.Error(), "chute journal repair --dry-run") {
		t.Fatalf("serve on a damaged journal: exit %d, %v\n%s", exitCode(err), err, out)
	}
}

// TestJournalRepair: a damaged body behind the checkpoint: verify exits 3
// and says what to do; repair --dry-run names the lost message, exits 3
// and changes nothing; repair repairs; verify is then clean.
func TestJournalRepair(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "demo", "--data", dir); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	seg := filepath.Join(dir, "00000001.seg")
	data, _ := os.ReadFile(seg)
	i := bytes.Index(data, []byte("poison order 4")) // the message still queued
	data[i] ^= 0x20
	os.WriteFile(seg, data, 0o644)
	out, err := runCLI(t, "journal", "verify", dir)
	if exitCode(err) != 3 || !strings.Contains(out, "chute journal repair --dry-run "+dir) {
		t.Fatalf("verify: exit %d %v\n%s", exitCode(err), err, out)
	}
	out, err = runCLI(t, "journal", "repair", "--dry-run", dir)
	if exitCode(err) != 3 || !strings.Contains(out, "dry run: nothing changed") || !strings.Contains(out, "damage (1):") ||
		!strings.Contains(out, "lost messages (1)") || !strings.Contains(out, "orders seq 7 (body at "+seg) {
		t.Fatalf("repair --dry-run: exit %d %v\n%s", exitCode(err), err, out)
	}
	t.Log(out)
	if after, _ := os.ReadFile(seg); !bytes.Equal(after, data) {
		t.Fatal("dry run changed the segment")
	}
	out, err = runCLI(t, "journal", "repair", dir)
	if err != nil || !strings.Contains(out, "repaired") || !strings.Contains(out, "quarantined: "+seg) {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "journal", "verify", dir); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("verify after repair: %v\n%s", err, out)
	}
	if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*", "00000001.seg")); len(q) != 1 {
		t.Fatalf("quarantine holds %v", q)
	}
}
