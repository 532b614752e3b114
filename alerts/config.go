package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Config is the alert configuration: overrides of the built-in rules,
// globally and per queue, and custom rules. The zero value runs the
// built-in rules unchanged. A rules file (YAML or JSON, see ParseConfig)
// has the same shape:
//
//	rules:                    # global overrides, by rule name
//	  queue_depth: {threshold: 50000, for: 5m}
//	  queue_completion_avg: {threshold: 2s}
//	queues:                   # exact queue names
//	  orders:
//	    queue_depth: {threshold: 1000, severity: critical}
//	patterns:                 # path.Match patterns, in order
//	  - match: "tmp-*"
//	    rules:
//	      queue_no_consumers: {enabled: false}
//	custom:                   # rules of your own over the same figures
//	  - name: orders_ready
//	    figure: ready
//	    op: ">"
//	    threshold: 500
//	    for: 30s
//	recent: 100
//
// For one queue and one rule, the settings are layered, each layer
// overriding only the fields it sets: the rule's defaults; Rules; every
// entry of Patterns that matches the queue, in order (later entries win);
// Queues; then the run-time overrides of Evaluator.SetQueueOverrides.
type Config struct {
	// Rules overrides rules (built-in or custom) for every queue, by rule
	// name.
	Rules map[string]Override `yaml:"rules,omitempty" json:"rules,omitempty"`
	// Queues overrides queue rules for single queues: queue name → rule
	// name → override.
	Queues map[string]map[string]Override `yaml:"queues,omitempty" json:"queues,omitempty"`
	// Patterns overrides queue rules for the queues whose names match a
	// path.Match pattern ("orders-*", "tmp-?", "[a-c]*").
	Patterns []PatternOverride `yaml:"patterns,omitempty" json:"patterns,omitempty"`
	// Custom adds rules of one's own.
	Custom []CustomRule `yaml:"custom,omitempty" json:"custom,omitempty"`
	// Recent is how many resolved alerts Evaluator.Recent keeps; 0 means
	// 100.
	Recent int `yaml:"recent,omitempty" json:"recent,omitempty"`
}

// DefaultRecent is the number of resolved alerts kept when Config.Recent
// is 0.
const DefaultRecent = 100

// Override changes some fields of a rule; nil fields leave them alone.
type Override struct {
	Threshold  *Quantity `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	For        *Duration `yaml:"for,omitempty" json:"for,omitempty"`
	ResolveFor *Duration `yaml:"resolve_for,omitempty" json:"resolve_for,omitempty"`
	Hysteresis *float64  `yaml:"hysteresis,omitempty" json:"hysteresis,omitempty"`
	Severity   *Severity `yaml:"severity,omitempty" json:"severity,omitempty"`
	Enabled    *bool     `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// apply returns r with o's fields set.
func (o Override) apply(r Rule) Rule {
	if o.Threshold != nil {
		r.Threshold = float64(*o.Threshold)
	}
	if o.For != nil {
		r.For = o.For.D()
	}
	if o.ResolveFor != nil {
		r.ResolveFor = o.ResolveFor.D()
	}
	if o.Hysteresis != nil {
		r.Hysteresis = *o.Hysteresis
	}
	if o.Severity != nil {
		r.Severity = *o.Severity
	}
	if o.Enabled != nil {
		r.Enabled = *o.Enabled
	}
	return r
}

// PatternOverride overrides queue rules for the queues whose names match
// a path.Match pattern.
type PatternOverride struct {
	Match string              `yaml:"match" json:"match"`
	Rules map[string]Override `yaml:"rules" json:"rules"`
}

// CustomRule is a rule of one's own in a Config. Fields left out take
// these defaults: For 1m, ResolveFor 30s, Hysteresis 0.1, Severity
// warning, Enabled true, and a plain summary.
type CustomRule struct {
	Name                 string     `yaml:"name" json:"name"`
	Figure               Figure     `yaml:"figure" json:"figure"`
	Op                   Op         `yaml:"op" json:"op"`
	Threshold            *Quantity  `yaml:"threshold" json:"threshold"`
	For                  *Duration  `yaml:"for,omitempty" json:"for,omitempty"`
	ResolveFor           *Duration  `yaml:"resolve_for,omitempty" json:"resolve_for,omitempty"`
	Hysteresis           *float64   `yaml:"hysteresis,omitempty" json:"hysteresis,omitempty"`
	Severity             Severity   `yaml:"severity,omitempty" json:"severity,omitempty"`
	Summary              string     `yaml:"summary,omitempty" json:"summary,omitempty"`
	Enabled              *bool      `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	When                 *Condition `yaml:"when,omitempty" json:"when,omitempty"`
	SkipDeadLetterQueues bool       `yaml:"skip_dead_letter_queues,omitempty" json:"skip_dead_letter_queues,omitempty"`
}

// rule turns c into a Rule with the defaults filled in.
func (c CustomRule) rule() (Rule, error) {
	if c.Threshold == nil {
		return Rule{}, fmt.Errorf("rule %s: threshold is required", c.Name)
	}
	r := Rule{Name: c.Name, Figure: c.Figure, Op: c.Op, Threshold: float64(*c.Threshold),
		For: DefaultFor, ResolveFor: DefaultResolveFor, Hysteresis: DefaultHysteresis,
		Severity: c.Severity, Summary: c.Summary, Enabled: true,
		When: c.When, SkipDeadLetterQueues: c.SkipDeadLetterQueues}
	r = Override{For: c.For, ResolveFor: c.ResolveFor, Hysteresis: c.Hysteresis, Enabled: c.Enabled}.apply(r)
	if r.Severity == "" {
		r.Severity = SeverityWarning
	}
	if r.Summary == "" {
		r.Summary = "{{.Rule}}: queue {{.Queue}}: {{.Figure}} is {{.Value}} (threshold {{.Threshold}})"
		if r.Figure.Broker() {
			r.Summary = "{{.Rule}}: {{.Figure}} is {{.Value}} (threshold {{.Threshold}})"
		}
	}
	return r, nil
}

// ParseConfig reads a rules file: JSON if it starts with '{', YAML
// otherwise. Unknown keys are refused, with an error naming the key;
// the result is validated.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return Config{}, fmt.Errorf("alerts config: %w", err)
		}
		if dec.More() {
			return Config{}, errors.New("alerts config: data after the JSON object")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("alerts config: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadConfig reads and validates a rules file (the --alerts flag).
func LoadConfig(file string) (Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return Config{}, fmt.Errorf("load alerts config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

// Validate checks the configuration: every rule name known, every
// pattern well formed, every value in range.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// EffectiveRules returns the rules that c gives every queue: the built-in rules
// and the custom ones, with the global overrides applied (disabled ones
// included, with Enabled false).
func (c Config) EffectiveRules() ([]Rule, error) {
	rs, err := c.compile()
	if err != nil {
		return nil, err
	}
	return slices.Clone(rs.base), nil
}

// ruleSet is a validated Config, ready to resolve rules per queue.
type ruleSet struct {
	base     []Rule         // built-in then custom rules, global overrides applied
	index    map[string]int // rule name → position in base
	tmpl     map[string]*template.Template
	patterns []PatternOverride
	queues   map[string]map[string]Override
	recent   int
}

// compile validates c and builds its ruleSet.
func (c Config) compile() (*ruleSet, error) {
	rs := &ruleSet{index: map[string]int{}, tmpl: map[string]*template.Template{},
		patterns: c.Patterns, queues: c.Queues, recent: c.Recent}
	if c.Recent < 0 {
		return nil, errors.New("alerts config: recent must not be negative")
	}
	if rs.recent == 0 {
		rs.recent = DefaultRecent
	}
	rs.base = DefaultRules()
	for _, cr := range c.Custom {
		r, err := cr.rule()
		if err != nil {
			return nil, fmt.Errorf("alerts config: custom: %w", err)
		}
		rs.base = append(rs.base, r)
	}
	for i, r := range rs.base {
		if _, dup := rs.index[r.Name]; dup {
			return nil, fmt.Errorf("alerts config: custom: rule %s already exists", r.Name)
		}
		rs.index[r.Name] = i
	}
	for _, name := range sortedKeys(c.Rules) {
		i, ok := rs.index[name]
		if !ok {
			return nil, fmt.Errorf("alerts config: rules: %w", rs.unknown(name))
		}
		rs.base[i] = c.Rules[name].apply(rs.base[i])
	}
	for _, r := range rs.base {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("alerts config: %w", err)
		}
		rs.tmpl[r.Name], _ = parseSummary(r) // validate parsed it already
	}
	for _, q := range sortedKeys(c.Queues) {
		if err := rs.checkQueueOverrides(c.Queues[q]); err != nil {
			return nil, fmt.Errorf("alerts config: queues: %s: %w", q, err)
		}
	}
	for i, p := range c.Patterns {
		if _, err := path.Match(p.Match, ""); err != nil || p.Match == "" {
			return nil, fmt.Errorf("alerts config: patterns[%d]: bad pattern %q", i, p.Match)
		}
		if err := rs.checkQueueOverrides(p.Rules); err != nil {
			return nil, fmt.Errorf("alerts config: patterns[%d] (%s): %w", i, p.Match, err)
		}
	}
	return rs, nil
}

func (rs *ruleSet) unknown(name string) error {
	names := make([]string, len(rs.base))
	for i, r := range rs.base {
		names[i] = r.Name
	}
	return fmt.Errorf("unknown rule %q (known: %s)", name, strings.Join(names, ", "))
}

// checkQueueOverrides checks per-queue overrides: known queue rules, and
// values that keep every rule valid.
func (rs *ruleSet) checkQueueOverrides(m map[string]Override) error {
	for _, name := range sortedKeys(m) {
		i, ok := rs.index[name]
		if !ok {
			return rs.unknown(name)
		}
		r := rs.base[i]
		if r.Figure.Broker() {
			return fmt.Errorf("rule %s is broker-wide: override it under rules, not per queue", name)
		}
		if err := m[name].apply(r).validate(); err != nil {
			return err
		}
	}
	return nil
}

// forQueue returns every rule as it applies to queue q: the layers of
// Config's comment, with run-time overrides last.
func (rs *ruleSet) forQueue(q string, runtime map[string]Override) []Rule {
	out := slices.Clone(rs.base)
	layer := func(m map[string]Override) {
		for name, o := range m {
			if i, ok := rs.index[name]; ok && !out[i].Figure.Broker() {
				out[i] = o.apply(out[i])
			}
		}
	}
	for _, p := range rs.patterns {
		if ok, _ := path.Match(p.Match, q); ok {
			layer(p.Rules)
		}
	}
	layer(rs.queues[q])
	layer(runtime)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
