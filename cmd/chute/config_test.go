package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/chutemq/chute/broker"
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
	cmd.SetErr(io.Discard) // no usage text in the test's output
	if err := cmd.Execute(); exitCode(err) != 2 {
		t.Fatalf("unknown setting in the config file: %v (exit %d)", err, exitCode(err))
	}
}

// isolateEnv unsets every CHUTE_ variable for the test, so that the
// machine's environment cannot reach serve's settings.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "CHUTE_") {
			t.Setenv(k, "") // restored when the test ends
			os.Unsetenv(k)
		}
	}
}

// serveSettings runs chute serve with args up to the point where it would
// start, and returns its settings.
func serveSettings(t *testing.T, args ...string) (serveFlags, error) {
	t.Helper()
	var got serveFlags
	cmd := serveCommand(func(_ *cobra.Command, f *serveFlags, _ *slog.Logger) error {
		got = *f
		return nil
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return got, cmd.Execute()
}

// writeFile writes a file named name in a new temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigFormats: YAML, TOML and JSON files give the same settings, units
// included, and the environment still wins over them.
func TestConfigFormats(t *testing.T) {
	isolateEnv(t)
	files := map[string]string{
		"chute.yaml": "# a comment\nlisten: 127.0.0.1:1111\nmemory-budget: 128MiB\nsegment-size: 1048576\n" +
			"sync: interval\nsync-interval: 250ms\nshutdown-timeout: 2m\nmax-batch: 50\nmax-message-size: 2 MiB\n" +
			"max-request-size: 8MiB\ninsecure: true\ntoken:\n",
		"chute.yml": "listen: \"127.0.0.1:1111\"\nmemory-budget: \"128MiB\"\nsegment-size: 1MiB\nsync: interval\n" +
			"sync-interval: 250ms\nshutdown-timeout: 120s\nmax-batch: 50\nmax-message-size: 2MiB\nmax-request-size: 8MiB\ninsecure: true\n",
		"chute.toml": "listen = \"127.0.0.1:1111\"\nmemory-budget = \"128MiB\"\nsegment-size = 1048576\nsync = \"interval\"\n" +
			"sync-interval = \"250ms\"\nshutdown-timeout = \"2m\"\nmax-batch = 50\nmax-message-size = \"2MiB\"\n" +
			"max-request-size = \"8MiB\"\ninsecure = true\n",
		"chute.json": `{"listen": "127.0.0.1:1111", "memory-budget": "128MiB", "segment-size": 1048576, "sync": "interval",
			"sync-interval": "250ms", "shutdown-timeout": "2m", "max-batch": 50, "max-message-size": "2MiB",
			"max-request-size": "8MiB", "insecure": true, "token": null}`,
	}
	for name, content := range files {
		t.Run(name, func(t *testing.T) {
			f, err := serveSettings(t, "--config", writeFile(t, name, content))
			if err != nil {
				t.Fatal(err)
			}
			bo, so, err := f.options()
			if err != nil {
				t.Fatal(err)
			}
			if f.listen != "127.0.0.1:1111" || bo.MemoryBudget != 128<<20 || bo.SegmentSize != 1<<20 ||
				bo.Sync != broker.SyncInterval || bo.SyncInterval != 250*time.Millisecond || f.shutdownWait != 2*time.Minute ||
				bo.MaxBatch != 50 || bo.MaxMessageSize != 2<<20 || so.MaxRequestBytes != 8<<20 || !f.insecure || so.Token != "" {
				t.Fatalf("settings from %s: %+v\nbroker %+v\nserver %+v", name, f, bo, so)
			}
			t.Setenv("CHUTE_MEMORY_BUDGET", "1GiB")
			if f, err := serveSettings(t, "--config", writeFile(t, name, content)); err != nil || f.memBudget != 1<<30 {
				t.Fatalf("CHUTE_MEMORY_BUDGET=1GiB over the file: memory budget %d, %v", f.memBudget, err)
			}
		})
	}
}

// TestConfigRefused: a key that names no setting, a value a setting does
// not take, a file that does not parse and an unknown format are usage
// errors (exit 2) that name what is wrong; a file that is not there is a
// failure (exit 1).
func TestConfigRefused(t *testing.T) {
	isolateEnv(t)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"typo.yaml", "memory-budget: 1MiB\nmemory-budjet: 2MiB\n", `"memory-budjet"`},
		{"typo.toml", "max-batch = 5\nmax_batch = 6\n", `"max_batch"`},
		{"typo.json", `{"listen": "127.0.0.1:1", "listne": "x"}`, `"listne"`},
		{"nested.yaml", "tls:\n  cert: a.pem\n", `"tls.cert"`},
		{"own-name.yaml", "config: other.yaml\n", `"config"`},
		{"print.yaml", "print-config: true\n", `"print-config"`},
		{"list.yaml", "listen: [a, b]\n", `"listen"`},
		{"badsize.yaml", "memory-budget: lots\n", `"memory-budget"`},
		{"badduration.toml", "sync-interval = \"soon\"\n", `"sync-interval"`},
		{"badint.json", `{"max-batch": "many"}`, `"max-batch"`},
		{"broken.yaml", "listen: [\n", "broken.yaml"},
		{"broken.toml", "listen = \n", "broken.toml"},
		{"broken.json", `{"listen": `, "broken.json"},
		{"chute.ini", "listen=x\n", `".ini"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := serveSettings(t, "--config", writeFile(t, tc.name, tc.content))
			if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("err %v (exit %d), want a usage error naming %s", err, exitCode(err), tc.want)
			}
		})
	}
	_, err := serveSettings(t, "--config", filepath.Join(t.TempDir(), "absent.yaml"))
	if exitCode(err) != 1 || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("absent config file: %v (exit %d), want exit 1", err, exitCode(err))
	}
	t.Setenv("CHUTE_SEGMENT_SIZE", "big")
	if _, err := serveSettings(t); exitCode(err) != 2 || !strings.Contains(err.Error(), "CHUTE_SEGMENT_SIZE") {
		t.Fatalf("CHUTE_SEGMENT_SIZE=big: %v (exit %d)", err, exitCode(err))
	}
}
