package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// applyEnvAndConfig fills the flags of cmd that were not given on the
// command line: first from the environment (CHUTE_ and the flag name in
// upper case with '-' as '_': --max-batch is CHUTE_MAX_BATCH), then from the
// JSON config file (an object whose keys are flag names), if any.
// Precedence: command line, environment, config file, default.
func applyEnvAndConfig(cmd *cobra.Command, configFile string) error {
	var file map[string]any
	if configFile != "" {
		b, err := os.ReadFile(configFile)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := json.Unmarshal(b, &file); err != nil {
			return usageError{fmt.Errorf("config file %s: %w", configFile, err)}
		}
		for k := range file {
			if cmd.Flags().Lookup(k) == nil {
				return usageError{fmt.Errorf("config file %s: unknown setting %q", configFile, k)}
			}
		}
	}
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)}
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			s := fmt.Sprint(v)
			if f, isFloat := v.(float64); isFloat && f == float64(int64(f)) {
				s = fmt.Sprint(int64(f))
			}
			if serr := f.Value.Set(s); serr != nil {
				err = usageError{fmt.Errorf("config file setting %q: %w", f.Name, serr)}
			}
		}
	})
	return err
}

func envName(flag string) string {
	return "CHUTE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// newLogger builds the slog logger for --log-format and --log-level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("log level %q: use debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("log format %q: use text or json", format)}
}
