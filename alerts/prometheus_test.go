package alerts

import (
	"bytes"
	"path"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// exported runs ExportPrometheus and parses its output back, refusing
// fields that a Prometheus rules file does not have.
func exported(t *testing.T, cfg Config) map[string][]promRule {
	t.Helper()
	var buf bytes.Buffer
	if err := ExportPrometheus(cfg, &buf); err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []promRule
		}
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("exported rules do not parse: %v\n%s", err, buf.String())
	}
	if len(f.Groups) != 1 || f.Groups[0].Name != "chute" {
		t.Fatalf("groups: %+v", f.Groups)
	}
	byName := map[string][]promRule{}
	for _, r := range f.Groups[0].Rules {
		checkPromQL(t, r.Expr)
		if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["value"] == "" {
			t.Errorf("%s: labels %v annotations %v", r.Alert, r.Labels, r.Annotations)
		}
		byName[r.Alert] = append(byName[r.Alert], r)
	}
	return byName
}

var knownMetrics = map[string]bool{
	"chute_queue_messages": true, "chute_queue_nacked_total": true, "chute_queue_dead_lettered_total": true,
	"chute_queue_completion_seconds_sum": true, "chute_queue_completion_seconds_count": true,
	"chute_queue_consumers": true, "chute_queue_is_dead_letter": true, "chute_queue_breaker_state": true,
	"chute_queue_processing_seconds_bucket": true, "chute_queue_processing_seconds_sum": true,
	"chute_queue_processing_seconds_count": true, "chute_confirm_seconds_bucket": true,
	"chute_confirm_seconds_sum": true, "chute_confirm_seconds_count": true,
}

// checkPromQL checks what can be checked without a PromQL parser:
// brackets balance outside strings, and only known metrics are named.
func checkPromQL(t *testing.T, expr string) {
	t.Helper()
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for i := 0; i < len(expr); i++ {
		c := rune(expr[i])
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				t.Errorf("unbalanced %q at %d in %s", c, i, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 || inString {
		t.Errorf("unbalanced brackets or quotes in %s", expr)
	}
	for _, m := range regexp.MustCompile(`chute_[a-z_]+`).FindAllString(expr, -1) {
		if !knownMetrics[m] {
			t.Errorf("unknown metric %s in %s", m, expr)
		}
	}
}

func TestExportDefaults(t *testing.T) {
	rules := exported(t, Config{})
	if len(rules) != len(DefaultRules()) {
		t.Fatalf("%d rules: %v", len(rules), rules)
	}
	depth := rules[RuleQueueDepth][0]
	const wantDepth = `(sum by (queue) (chute_queue_messages) > 10000 or ` +
		`(sum by (queue) (chute_queue_messages) > 9000 and on (queue) ALERTS{alertname="queue_depth",alertstate="firing"}))`
	if depth.Expr != wantDepth || depth.For != "1m" || depth.KeepFiringFor != "30s" || depth.Labels["severity"] != "warning" {
		t.Errorf("queue_depth: %+v\nwant expr %s", depth, wantDepth)
	}
	if s := depth.Annotations["summary"]; s != "queue {{ $labels.queue }} holds {{ $value }} messages (threshold 10000)" {
		t.Errorf("summary %q", s)
	}
	contains := map[string][]string{
		RuleQueueErrors: {
			`sum by (queue) (rate({__name__=~"chute_queue_nacked_total|chute_queue_dead_lettered_total"}[1m])) * 60 > 100`},
		RuleQueueCompletionAvg: {
			`sum by (queue) (rate(chute_queue_completion_seconds_sum[1m])) / sum by (queue) (rate(chute_queue_completion_seconds_count[1m])) > 1 or`},
		RuleQueueNoConsumers: {
			`sum by (queue) (chute_queue_consumers) < 1) and on (queue) (sum by (queue) (chute_queue_messages{state="ready"}) > 0)`,
			`unless on (queue) (chute_queue_is_dead_letter == 1)`},
		RuleQueueProcessingP99: {
			`histogram_quantile(0.99, sum by (le, queue) (rate(chute_queue_processing_seconds_bucket[5m]))) > 2 or`,
			`> 1.8 and on (queue) ALERTS{alertname="queue_processing_p99"`},
		RuleBreakerOpen: {
			`max by (queue) (chute_queue_breaker_state != 3) >= 1`},
		RuleConfirmP99: {
			`histogram_quantile(0.99, sum by (le) (rate(chute_confirm_seconds_bucket[5m]))) > 0.5 or`,
			`> 0.45 and on () ALERTS{alertname="confirm_p99"`},
	}
	for name, parts := range contains {
		for _, p := range parts {
			if !strings.Contains(rules[name][0].Expr, p) {
				t.Errorf("%s: expr %s\nlacks %s", name, rules[name][0].Expr, p)
			}
		}
	}
	if e := rules[RuleQueueNoConsumers][0].Expr; strings.Contains(e, "ALERTS") {
		t.Errorf("no hysteresis wanted for queue_no_consumers: %s", e)
	}
	if s := rules[RuleConfirmP99][0].Annotations["summary"]; s != "producer confirm latency p99 {{ humanizeDuration $value }} (threshold 500ms)" {
		t.Errorf("confirm summary %q", s)
	}
}

func TestExportOverridesAndCustom(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
rules:
  queue_errors: {enabled: false}
  queue_depth: {for: 2m}
patterns:
  - match: "orders-*"
    rules: {queue_depth: {threshold: 500}}
  - match: "tmp-?"
    rules: {queue_depth: {enabled: false}}
queues:
  orders.eu:
    queue_depth: {threshold: 50, severity: critical}
custom:
  - name: slow_processing_avg
    figure: processing_avg
    op: ">"
    threshold: 250ms
    for: 0s
    hysteresis: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	rules := exported(t, cfg)
	if _, ok := rules[RuleQueueErrors]; ok {
		t.Error("disabled rule exported")
	}
	depth := rules[RuleQueueDepth]
	if len(depth) != 3 { // everyone else, orders-*, orders.eu; tmp-? only excluded
		t.Fatalf("queue_depth rules: %+v", depth)
	}
	wantSel := []string{
		`chute_queue_messages{queue!~"orders-[^/]*|tmp-[^/]|orders\\.eu"}) > 10000`,
		`chute_queue_messages{queue=~"orders-[^/]*",queue!~"tmp-[^/]|orders\\.eu"}) > 500`,
		`chute_queue_messages{queue=~"orders\\.eu"}) > 50`,
	}
	for i, w := range wantSel {
		if !strings.Contains(depth[i].Expr, w) || depth[i].For != "2m" {
			t.Errorf("queue_depth[%d]: for %s expr %s\nlacks %s", i, depth[i].For, depth[i].Expr, w)
		}
	}
	if depth[2].Labels["severity"] != "critical" {
		t.Errorf("orders.eu severity %v", depth[2].Labels)
	}
	custom := rules["slow_processing_avg"]
	if len(custom) != 1 || custom[0].For != "" ||
		custom[0].Expr != `sum by (queue) (rate(chute_queue_processing_seconds_sum[5m])) / sum by (queue) (rate(chute_queue_processing_seconds_count[5m])) > 0.25` {
		t.Errorf("custom rule %+v", custom)
	}
}

// TestGlobRegexp checks that a pattern and its regular expression agree
// on every name tried.
func TestGlobRegexp(t *testing.T) {
	patterns := []string{"orders-*", "tmp-?", "*.dlq", "[a-c]*", "[^a-c]x", `a\*b`, "*", "a.b", "[\\]x]z",
		"a+b(c)|d", "q[0-9][0-9]", "x/*", "é?"}
	names := []string{"", "orders-", "orders-eu", "orders", "tmp-1", "tmp-12", "a.dlq", ".dlq", "b", "cat", "dx",
		"ax", "/x", "a*b", "axb", "a.b", "aXb", "]z", "xz", "a+b(c)|d", "q12", "q1", "x/y", "x/y/z", "éa", "é"}
	for _, p := range patterns {
		re := regexp.MustCompile("^(?:" + globRegexp(p) + ")$")
		for _, n := range names {
			want, err := path.Match(p, n)
			if err != nil {
				t.Fatalf("%q: %v", p, err)
			}
			if got := re.MatchString(n); got != want {
				t.Errorf("pattern %q (regexp %s) on %q: %v, path.Match says %v", p, re, n, got, want)
			}
		}
	}
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[string]string{"0s": "", "1m0s": "1m", "90s": "1m30s", "1h0m0.5s": "1h500ms", "250ms": "250ms"} {
		v, err := parseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := promDuration(v.D()); got != want {
			t.Errorf("promDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
