package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
	"github.com/chutemq/chute/server"
)

// bkStartDiskServer serves a broker with its journal in dir.
func bkStartDiskServer(t *testing.T, dir string) (*broker.Broker, string) {
	t.Helper()
	clearClientEnv(t)
	b := chutetest.MustOpen(t, dir, nil)
	return b, chutetest.StartServer(t, b, server.Options{})
}

// bkFill makes queue q with n messages, one of them leased and one acked.
func bkFill(t *testing.T, api chute.API, n int) {
	t.Helper()
	ctx := chutetest.Ctx(t)
	if err := api.CreateQueue(ctx, "q", chute.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := api.Publish(ctx, "q", chute.Message{Body: []byte{byte('a' + i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := api.Receive(ctx, "q", chute.ReceiveOptions{Max: 2, Wait: -1, Lease: time.Hour})
	if err != nil || len(ds) != 2 {
		t.Fatalf("receive: %d, %v", len(ds), err)
	}
	if err := api.Ack(ctx, "q", ds[0].Receipt); err != nil {
		t.Fatal(err)
	}
}

func TestBackupRestoreServer(t *testing.T) {
	b, addr := bkStartDiskServer(t, t.TempDir())
	bkFill(t, b, 5)
	out := filepath.Join(t.TempDir(), "backup")
	text, err := runCLI(t, "backup", "--server", addr, out)
	if err != nil || !strings.Contains(text, "backed up "+addr+" into "+out) || !strings.Contains(text, "publishes paused") {
		t.Fatalf("backup: %v\n%s", err, text)
	}
	if _, err := os.Stat(filepath.Join(out, broker.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	// JSON, for scripts.
	text, err = runCLI(t, "backup", "--server", addr, "--json", filepath.Join(t.TempDir(), "b2"))
	var s backupSummary
	if err != nil || json.Unmarshal([]byte(text), &s) != nil || s.Kind != "live" || s.Files != 2 || s.Bytes == 0 {
		t.Fatalf("backup --json: %v\n%s", err, text)
	}

	dir := filepath.Join(t.TempDir(), "restored")
	text, err = runCLI(t, "restore", out, dir)
	if err != nil || !strings.Contains(text, "it holds 2 queues, 0 topics, 4 messages") || !strings.Contains(text, "chute serve --data "+dir) {
		t.Fatalf("restore: %v\n%s", err, text)
	}
	r := chutetest.MustOpen(t, dir, nil)
	st, err := r.QueueStats(context.Background(), "q")
	if err != nil || st.Ready != 4 || st.InFlight != 0 || st.Totals.Acked != 1 {
		t.Fatalf("restored q: %+v, %v (the lease ends, the acked message stays gone)", st, err)
	}
}

func TestBackupRestoreRefusals(t *testing.T) {
	dir := t.TempDir()
	b, addr := bkStartDiskServer(t, dir)
	bkFill(t, b, 3)
	out := filepath.Join(t.TempDir(), "backup")
	if text, err := runCLI(t, "backup", "--server", addr, out); err != nil {
		t.Fatalf("backup: %v\n%s", err, text)
	}

	want := func(code int, wantText string, args ...string) {
		t.Helper()
		text, err := runCLI(t, args...)
		if got := exitCode(err); got != code || err != nil && !strings.Contains(err.Error(), wantText) {
			t.Errorf("chute %s: exit %d, want %d with %q: %v\n%s", strings.Join(args, " "), got, code, wantText, err, text)
		}
	}
	// Usage.
	want(2, "--link needs --data", "backup", "--link", "--server", addr, filepath.Join(t.TempDir(), "x"))
	want(2, "give one", "backup", "--data", dir, "--server", addr, filepath.Join(t.TempDir(), "x"))
	want(2, "takes 2 argument(s)", "restore", out)
	// A running broker's directory, and a backup directory in use.
	want(1, "in use by process", "backup", "--data", dir, filepath.Join(t.TempDir(), "x"))
	want(1, "chute backup --server", "backup", "--data", dir, filepath.Join(t.TempDir(), "x"))
	want(1, "not empty", "backup", "--server", addr, out)
	// Restore into a non-empty directory, and into one in use.
	want(1, "not empty", "restore", out, dir)
	want(1, "in use by process", "restore", "--force", out, dir)

	// A damaged backup: exit 3, the file named, nothing written.
	seg := filepath.Join(out, "00000001.seg")
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "restored")
	want(3, "00000001.seg: SHA-256", "restore", out, target)
	want(3, "nothing was changed", "restore", out, target)
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a refused restore made %s: %v", target, err)
	}
	if err := os.Remove(filepath.Join(out, broker.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	want(3, "manifest.json: missing", "restore", out, target)
}

// TestBackupData: a stopped broker's directory, copied and linked, and a
// restore with --force over an old journal.
func TestBackupData(t *testing.T) {
	dir := t.TempDir()
	b, err := broker.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	bkFill(t, b, 4)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"", "--link"} {
		out := filepath.Join(t.TempDir(), "backup")
		args := []string{"backup", "--data", dir, out}
		if link != "" {
			args = append(args, link)
		}
		text, err := runCLI(t, args...)
		if err != nil || !strings.Contains(text, "backed up "+dir) || strings.Contains(text, "paused") {
			t.Fatalf("chute %s: %v\n%s", strings.Join(args, " "), err, text)
		}
		old := t.TempDir()
		demo, err := runCLI(t, "demo", "--data", old)
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, demo)
		}
		text, err = runCLI(t, "restore", "--force", "--json", out, old)
		var s restoreSummary
		if err != nil || json.Unmarshal([]byte(text), &s) != nil || s.Messages != 3 || len(s.Removed) == 0 || s.Kind != "stopped" {
			t.Fatalf("restore --force --json: %v\n%s", err, text)
		}
	}
}
