package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// TestConfigPrecedence: command line, then environment, then config file,
// then default.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "chute.json")
	os.WriteFile(file, []byte(`{"listen": "127.0.0.1:1111", "max-batch": 50, "sync-interval": "2s", "data": "from-file"}`), 0o644)
	t.Setenv("CHUTE_MAX_BATCH", "70")
	t.Setenv("CHUTE_DATA", "from-env")
	var got serveFlags
	cmd := newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnvAndConfig(cmd, file); err != nil {
			return err
		}
		fl := cmd.Flags()
		got.listen, _ = fl.GetString("listen")
		got.maxBatch, _ = fl.GetInt("max-batch")
		got.syncInterval, _ = fl.GetDuration("sync-interval")
		got.data, _ = fl.GetString("data")
		got.sync, _ = fl.GetString("sync")
		return nil
	}
	cmd.SetArgs([]string{"--data", "from-flag"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.data != "from-flag" || got.maxBatch != 70 || got.listen != "127.0.0.1:1111" || got.syncInterval != 2*time.Second || got.sync != "always" {
		t.Fatalf("got data=%q max-batch=%d listen=%q sync-interval=%v sync=%q", got.data, got.maxBatch, got.listen, got.syncInterval, got.sync)
	}
	os.WriteFile(file, []byte(`{"no-such-setting": 1}`), 0o644)
	cmd = newServeCmd()
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return applyEnvAndConfig(cmd, file) }
	cmd.SetArgs(nil)
	if err := cmd.Execute(); exitCode(err) != 2 {
		t.Fatalf("unknown setting in the config file: %v (exit %d)", err, exitCode(err))
	}
}
