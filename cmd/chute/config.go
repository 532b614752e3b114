package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/knadh/koanf/parsers/json"
	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Settings of chute serve come from four places; the first that has one
// wins:
//
//  1. the command line;
//  2. the environment: CHUTE_ and the flag name in upper case with '-' as
//     '_' (--max-batch is CHUTE_MAX_BATCH);
//  3. the config file (--config): YAML (.yaml, .yml), TOML (.toml) or JSON
//     (.json), chosen by extension, whose keys are flag names;
//  4. the flag's default.
//
// Every value, wherever it comes from, goes through the flag's own Set, so
// units work the same everywhere ("memory-budget: 128MiB",
// CHUTE_SYNC_INTERVAL=7d). A key that names no setting is refused, so a
// typo does not silently leave the default in force.

// notSettable are the flags that only the command line sets: the config
// file's own name, help, and --print-config (an environment that makes
// every start print and exit would be a trap).
var notSettable = map[string]bool{"config": true, "help": true, "print-config": true}

// applyEnvAndConfig fills the flags of cmd that were not given on the
// command line, from the environment and then from configFile (if any).
func applyEnvAndConfig(cmd *cobra.Command, configFile string) error {
	settings, err := loadConfigFile(configFile, cmd.Flags())
	if err != nil {
		return err
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || notSettable[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)}
			}
			return
		}
		if v, ok := settings[f.Name]; ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usageError{fmt.Errorf("config file %s: setting %q: %w", configFile, f.Name, serr)}
			}
		}
	})
	return err
}

// loadConfigFile reads path (nothing if it is "") with koanf and returns
// its settings as the strings a flag's Set takes. A file that cannot be
// read is a plain error; one that does not parse, or has a key that names
// no setting, is a usage error.
func loadConfigFile(path string, flags *pflag.FlagSet) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	parser, err := configParser(path)
	if err != nil {
		return nil, usageError{err}
	}
	// Read the file ourselves (koanf's file provider would link a file
	// watcher the server never uses), then let koanf parse it.
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	k := koanf.New(".")
	if err := k.Load(rawbytes.Provider(data), parser); err != nil {
		return nil, usageError{fmt.Errorf("config file %s: %w", path, err)}
	}
	all := k.All()
	keys := make([]string, 0, len(all))
	for key := range all {
		keys = append(keys, key)
	}
	sort.Strings(keys) // the first unknown key in order, every time
	settings := make(map[string]string, len(all))
	for _, key := range keys {
		if flags.Lookup(key) == nil || notSettable[key] {
			return nil, usageError{fmt.Errorf("config file %s: unknown setting %q (keys are the flag names of chute serve --help)", path, key)}
		}
		v := all[key]
		if v == nil { // "key:" or null: not set
			continue
		}
		s, ok := configString(v)
		if !ok {
			return nil, usageError{fmt.Errorf("config file %s: setting %q: want a single value, not %T", path, key, v)}
		}
		settings[key] = s
	}
	return settings, nil
}

// configParser picks the parser for a config file by its extension.
func configParser(path string) (koanf.Parser, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		return yaml.Parser(), nil
	case ".toml":
		return toml.Parser(), nil
	case ".json":
		return json.Parser(), nil
	default:
		return nil, fmt.Errorf("config file %s: unknown format %q: use .yaml, .yml, .toml or .json", path, ext)
	}
}

// configString turns a parsed scalar into the text a flag's Set takes.
// JSON numbers arrive as float64: whole ones are written without a
// fraction or exponent, so that "max-batch": 50 sets 50.
func configString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<63 {
			return strconv.FormatInt(int64(v), 10), true
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case float32:
		return configString(float64(v))
	case []any, map[string]any:
		return "", false
	}
	return fmt.Sprint(v), true // TOML dates and times
}

func envName(flag string) string {
	return "CHUTE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// secretAnnotation marks a flag whose value --print-config masks; see
// markSecret.
const secretAnnotation = "chute_secret"

// markSecret marks flag name of fl as a secret: --print-config shows "****"
// for it when it is set.
func markSecret(fl *pflag.FlagSet, name string) {
	fl.SetAnnotation(name, secretAnnotation, []string{"true"})
}

// notSecretAnnotation marks a flag whose name looks like a secret's but
// whose value is not one (--tokens is a file's name); see markNotSecret.
const notSecretAnnotation = "chute_not_secret"

// markNotSecret marks flag name of fl as no secret despite its name:
// --print-config shows its value.
func markNotSecret(fl *pflag.FlagSet, name string) {
	fl.SetAnnotation(name, notSecretAnnotation, []string{"true"})
}

// isSecret reports a flag marked with markSecret, or one whose name says
// it holds a secret, in case a new one was not marked, unless it is
// marked with markNotSecret.
func isSecret(f *pflag.Flag) bool {
	if _, ok := f.Annotations[secretAnnotation]; ok {
		return true
	}
	if _, ok := f.Annotations[notSecretAnnotation]; ok {
		return false
	}
	for _, word := range []string{"token", "password", "secret"} {
		if strings.Contains(f.Name, word) {
			return true
		}
	}
	return false
}

// printConfig writes every setting of fl with its final value as YAML, in
// a form the config file takes back, with secrets masked.
func printConfig(w io.Writer, fl *pflag.FlagSet) error {
	settings := map[string]any{}
	fl.VisitAll(func(f *pflag.Flag) {
		if !notSettable[f.Name] {
			settings[f.Name] = configValue(f)
		}
	})
	b, err := yaml.Parser().Marshal(settings)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "# chute serve: the settings in force (command line, then environment, then config file, then default)\n"); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// configValue is a flag's value for printConfig: a YAML bool or number
// where the flag is one, its text otherwise ("64 MiB", "100ms").
func configValue(f *pflag.Flag) any {
	s := f.Value.String()
	if isSecret(f) {
		if s == "" {
			return ""
		}
		return "****"
	}
	switch f.Value.Type() {
	case "bool":
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case "int", "int8", "int16", "int32", "int64":
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case "uint", "uint8", "uint16", "uint32", "uint64":
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	}
	return s
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
