package alerts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCustomRuleFromYAMLFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "alerts.yaml")
	err := os.WriteFile(file, []byte(`
custom:
  - name: orders_backlog
    figure: ready
    op: ">"
    threshold: 500
    for: 30s
    resolve_for: 0s
    hysteresis: 0.2
    severity: info
    summary: "{{.Queue}} has {{.Value}} ready (over {{.Threshold}})"
    when: {figure: consumers, op: ">=", threshold: 1}
queues:
  quiet:
    orders_backlog: {enabled: false}
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, cfg)
	s := Snapshot{Queues: []QueueFigures{
		{Queue: "orders", Depth: 600, Ready: 600, ActiveConsumers: 3},
		{Queue: "quiet", Depth: 600, Ready: 600, ActiveConsumers: 3},
	}}
	r.evalQuiet(30, s, "pending")
	a := one(t, r.eval(s), "orders_backlog", "orders", StatusFiring)
	if a.Severity != SeverityInfo || a.Summary != "orders has 600 ready (over 500)" {
		t.Errorf("severity %s summary %q", a.Severity, a.Summary)
	}
	s.Queues[0].Ready = 450 // above 500×0.8: still firing
	r.evalQuiet(10, s, "hysteresis")
	s.Queues[0].Ready = 400
	one(t, r.eval(s), "orders_backlog", "orders", StatusResolved)
}

func TestCustomRuleFromJSON(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{
  "rules": {"queue_completion_avg": {"enabled": false}},
  "custom": [{"name": "slow_completion", "figure": "completion_avg", "op": ">",
              "threshold": "750ms", "for": "0s", "severity": "critical"}]
}`))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, cfg)
	s := Snapshot{Queues: []QueueFigures{{Queue: "q", ActiveConsumers: 1, CompletionAvg: 800 * time.Millisecond}}}
	a := one(t, r.eval(s), "slow_completion", "q", StatusFiring)
	if a.Threshold != 0.75 || a.Severity != SeverityCritical {
		t.Errorf("threshold %v severity %s", a.Threshold, a.Severity)
	}
	if !strings.Contains(a.Summary, "800ms") {
		t.Errorf("default summary %q lacks the value", a.Summary)
	}
}

func TestConfigDurationsAndQuantities(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
rules:
  queue_processing_p99: {threshold: 2500ms, for: 1m30s, resolve_for: 45s, hysteresis: 0.25}
  queue_depth: {threshold: 2e4}
`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := cfg.EffectiveRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		switch r.Name {
		case RuleQueueProcessingP99:
			if r.Threshold != 2.5 || r.For != 90*time.Second || r.ResolveFor != 45*time.Second || r.Hysteresis != 0.25 {
				t.Errorf("processing rule %+v", r)
			}
		case RuleQueueDepth:
			if r.Threshold != 20000 || r.For != DefaultFor {
				t.Errorf("depth rule %+v", r)
			}
		}
	}
}

func TestConfigRefused(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown top-level key", "rulez: {}", "rulez"},
		{"unknown override key", "rules: {queue_depth: {treshold: 5}}", "treshold"},
		{"unknown custom key", "custom: [{name: x, figur: depth, op: '>', threshold: 1}]", "figur"},
		{"unknown pattern key", "patterns: [{mach: 'a*', rules: {}}]", "mach"},
		{"unknown when key", "custom: [{name: x, figure: depth, op: '>', threshold: 1, when: {figure: ready, op: '>', threshold: 0, also: 1}}]", "also"},
		{"unknown JSON key", `{"rules": {"queue_depth": {"for": "1m", "hysterisis": 0.2}}}`, "hysterisis"},
		{"unknown JSON top-level key", `{"custom": [], "extra": 1}`, "extra"},
		{"unknown rule", "rules: {queue_dept: {threshold: 5}}", `"queue_dept"`},
		{"unknown rule per queue", "queues: {orders: {nope: {enabled: false}}}", `"nope"`},
		{"broker rule per queue", "patterns: [{match: 'a*', rules: {confirm_p99: {threshold: 1}}}]", "broker-wide"},
		{"bad pattern", "patterns: [{match: '[a', rules: {}}]", "bad pattern"},
		{"bad duration", "rules: {queue_depth: {for: 5 minutes}}", "5 minutes"},
		{"number for a duration", "rules: {queue_depth: {for: 60}}", `"60"`},
		{"bad threshold", "rules: {queue_depth: {threshold: lots}}", "lots"},
		{"hysteresis out of range", "rules: {queue_depth: {hysteresis: 1}}", "hysteresis"},
		{"bad severity", "rules: {queue_depth: {severity: urgent}}", "urgent"},
		{"custom without threshold", "custom: [{name: x, figure: depth, op: '>'}]", "threshold is required"},
		{"custom with unknown figure", "custom: [{name: x, figure: lag, op: '>', threshold: 1}]", `"lag"`},
		{"custom with bad op", "custom: [{name: x, figure: depth, op: '=>', threshold: 1}]", `"=>"`},
		{"custom with bad name", "custom: [{name: 'my rule', figure: depth, op: '>', threshold: 1}]", "my rule"},
		{"custom named like a built-in", "custom: [{name: queue_depth, figure: depth, op: '>', threshold: 1}]", "already exists"},
		{"custom with a bad template", "custom: [{name: x, figure: depth, op: '>', threshold: 1, summary: '{{.Nope}}'}]", "Nope"},
		{"broker rule with when", "custom: [{name: x, figure: confirm_avg, op: '>', threshold: 1, when: {figure: ready, op: '>', threshold: 0}}]", "when"},
		{"negative recent", "recent: -1", "recent"},
		{"trailing JSON", `{"recent": 1} {}`, "after the JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.doc))
			if err == nil {
				t.Fatalf("accepted %s", c.doc)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestEmptyConfigFileIsDefaults(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "{}"} {
		cfg, err := ParseConfig([]byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		rules, err := cfg.EffectiveRules()
		if err != nil || len(rules) != len(DefaultRules()) {
			t.Fatalf("%q: %d rules, %v", doc, len(rules), err)
		}
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("err = %v", err)
	}
}
