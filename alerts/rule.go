package alerts

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// Op is a comparison between a figure and a threshold.
type Op string

// The comparisons.
const (
	Above        Op = ">"
	AboveOrEqual Op = ">="
	Below        Op = "<"
	BelowOrEqual Op = "<="
)

func (o Op) valid() bool {
	switch o {
	case Above, AboveOrEqual, Below, BelowOrEqual:
		return true
	}
	return false
}

// compare reports whether "v o t" holds.
func (o Op) compare(v, t float64) bool {
	switch o {
	case Above:
		return v > t
	case AboveOrEqual:
		return v >= t
	case Below:
		return v < t
	case BelowOrEqual:
		return v <= t
	}
	return false
}

// upward reports whether o fires on high values.
func (o Op) upward() bool { return o == Above || o == AboveOrEqual }

// Severity is an alert's severity, passed on as the "severity" label.
type Severity string

// The severities.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

func (s Severity) valid() bool {
	return s == SeverityInfo || s == SeverityWarning || s == SeverityCritical
}

// Condition is a figure compared with a threshold, without timing: a
// rule's When guard.
type Condition struct {
	Figure    Figure   `yaml:"figure" json:"figure"`
	Op        Op       `yaml:"op" json:"op"`
	Threshold Quantity `yaml:"threshold" json:"threshold"`
}

// Rule is one alert rule, fully resolved: DefaultRules and the rules that
// Config builds from a file hold every field, defaults included.
type Rule struct {
	// Name identifies the rule: the alert's name (Alertmanager's
	// "alertname" label). Letters, digits and underscores, not starting
	// with a digit, as Prometheus requires of alert names.
	Name string
	// Figure is what the rule watches. A broker-wide figure makes a
	// broker-wide rule: one alert with an empty queue, and no per-queue
	// overrides.
	Figure Figure
	// Op and Threshold are the condition: the rule fires when
	// "figure Op Threshold" has held for For. Latency thresholds are in
	// seconds.
	Op        Op
	Threshold float64
	// For is how long the condition must hold before the alert fires
	// (0: at the first evaluation where it holds).
	For time.Duration
	// ResolveFor is how long the condition must stay clear (with
	// hysteresis) before a firing alert resolves (0: at once).
	ResolveFor time.Duration
	// Hysteresis, in [0, 1), widens the clear side of the threshold: a
	// rule "> T" is clear only at or below T×(1−Hysteresis), a rule "< T"
	// only at or above T×(1+Hysteresis). Between the two a firing alert
	// keeps firing. Use 0 for small integers (consumers < 1: with 0.1 it
	// would need 2 consumers to resolve).
	Hysteresis float64
	// Severity is passed on as the "severity" label.
	Severity Severity
	// Summary is a text/template for the alert's summary. Its data has
	// string fields, already formatted: .Rule, .Queue, .Figure, .Value
	// (the figure when the alert fired), .Threshold and .Severity.
	Summary string
	// Enabled turns the rule on.
	Enabled bool
	// When, if set, is a further condition on a queue figure that must
	// hold too; an alert whose When stops holding is clear. Example:
	// queue_no_consumers fires only while messages are ready. Queue rules
	// only.
	When *Condition
	// SkipDeadLetterQueues leaves dead-letter queues out of the rule.
	SkipDeadLetterQueues bool
}

// The names of the built-in rules.
const (
	RuleQueueDepth         = "queue_depth"
	RuleQueueErrors        = "queue_errors"
	RuleQueueCompletionAvg = "queue_completion_avg"
	RuleQueueNoConsumers   = "queue_no_consumers"
	RuleQueueProcessingP99 = "queue_processing_p99"
	RuleConfirmP99         = "confirm_p99"
	RuleBreakerOpen        = "breaker_open"
)

// Defaults shared by the built-in rules and by custom rules that leave the
// field out (the package comment gives the reasons).
const (
	DefaultFor        = time.Minute
	DefaultResolveFor = 30 * time.Second
	DefaultHysteresis = 0.1
)

// DefaultRules returns the built-in rules, every one enabled.
func DefaultRules() []Rule {
	r := func(name string, f Figure, op Op, t float64, sev Severity, summary string) Rule {
		return Rule{Name: name, Figure: f, Op: op, Threshold: t, For: DefaultFor,
			ResolveFor: DefaultResolveFor, Hysteresis: DefaultHysteresis,
			Severity: sev, Summary: summary, Enabled: true}
	}
	noConsumers := r(RuleQueueNoConsumers, FigureConsumers, Below, 1, SeverityCritical,
		"queue {{.Queue}} has messages ready and {{.Value}} active consumers")
	noConsumers.Hysteresis = 0
	noConsumers.When = &Condition{Figure: FigureReady, Op: Above, Threshold: 0}
	noConsumers.SkipDeadLetterQueues = true
	// The breaker is a state, not a level: no hysteresis. It fires for an
	// open or half-open breaker (a half-open one is still failing over to
	// open until its probes succeed), not for a pause by hand.
	breakerOpen := r(RuleBreakerOpen, FigureBreaker, AboveOrEqual, 1, SeverityWarning,
		"queue {{.Queue}}: circuit breaker open, deliveries withheld")
	breakerOpen.Hysteresis = 0
	return []Rule{
		r(RuleQueueDepth, FigureDepth, Above, 10000, SeverityWarning,
			"queue {{.Queue}} holds {{.Value}} messages (threshold {{.Threshold}})"),
		r(RuleQueueErrors, FigureErrors, Above, 100, SeverityWarning,
			"queue {{.Queue}}: {{.Value}} nacks and dead letters per minute (threshold {{.Threshold}})"),
		r(RuleQueueCompletionAvg, FigureCompletionAvg, Above, 1, SeverityWarning,
			"queue {{.Queue}}: average completion latency {{.Value}} (threshold {{.Threshold}})"),
		noConsumers,
		r(RuleQueueProcessingP99, FigureProcessingP99, Above, 2, SeverityWarning,
			"queue {{.Queue}}: processing time p99 {{.Value}} (threshold {{.Threshold}})"),
		r(RuleConfirmP99, FigureConfirmP99, Above, 0.5, SeverityCritical,
			"producer confirm latency p99 {{.Value}} (threshold {{.Threshold}})"),
		breakerOpen,
	}
}

var ruleName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// validate checks a rule on its own.
func (r Rule) validate() error {
	switch {
	case !ruleName.MatchString(r.Name):
		return fmt.Errorf("rule %q: name must be letters, digits and underscores, not starting with a digit", r.Name)
	case !r.Figure.valid():
		return fmt.Errorf("rule %s: unknown figure %q (known: %s)", r.Name, r.Figure, joinFigures())
	case !r.Op.valid():
		return fmt.Errorf("rule %s: unknown op %q (want >, >=, < or <=)", r.Name, r.Op)
	case r.For < 0 || r.ResolveFor < 0:
		return fmt.Errorf("rule %s: for and resolve_for must not be negative", r.Name)
	case r.Hysteresis < 0 || r.Hysteresis >= 1:
		return fmt.Errorf("rule %s: hysteresis %v is outside [0, 1)", r.Name, r.Hysteresis)
	case !r.Severity.valid():
		return fmt.Errorf("rule %s: unknown severity %q (want info, warning or critical)", r.Name, r.Severity)
	}
	if r.When != nil {
		w := r.When
		switch {
		case r.Figure.Broker():
			return fmt.Errorf("rule %s: when: broker-wide rules take no when", r.Name)
		case !w.Figure.valid() || w.Figure.Broker():
			return fmt.Errorf("rule %s: when: unknown queue figure %q", r.Name, w.Figure)
		case !w.Op.valid():
			return fmt.Errorf("rule %s: when: unknown op %q", r.Name, w.Op)
		}
	}
	if _, err := parseSummary(r); err != nil {
		return err
	}
	return nil
}

func joinFigures() string {
	var b strings.Builder
	for i, f := range Figures() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(f))
	}
	return b.String()
}

// holds reports whether the rule's condition holds for value v (and, for
// a queue rule, its When holds on q).
func (r Rule) holds(v float64, q *QueueFigures) bool {
	return r.Op.compare(v, r.Threshold) && r.whenHolds(q)
}

// clear reports whether a firing alert's condition is clear: the When no
// longer holds, or v is past the hysteresis threshold on the safe side.
func (r Rule) clear(v float64, q *QueueFigures) bool {
	return !r.whenHolds(q) || !r.Op.compare(v, r.clearThreshold())
}

// clearThreshold is the threshold that a firing alert must cross back.
func (r Rule) clearThreshold() float64 {
	if r.Op.upward() {
		return r.Threshold * (1 - r.Hysteresis)
	}
	return r.Threshold * (1 + r.Hysteresis)
}

func (r Rule) whenHolds(q *QueueFigures) bool {
	if r.When == nil || q == nil {
		return true
	}
	return r.When.Op.compare(r.When.Figure.of(*q), float64(r.When.Threshold))
}

// applies reports whether a queue rule watches queue q.
func (r Rule) applies(q QueueFigures) bool {
	return r.Enabled && !r.Figure.Broker() && !(r.SkipDeadLetterQueues && q.DeadLetterQueue)
}

// summaryData is what a summary template sees: strings, so that the same
// template renders for Prometheus with its own placeholders in them.
type summaryData struct {
	Rule, Queue, Figure, Value, Threshold, Severity string
}

func parseSummary(r Rule) (*template.Template, error) {
	t, err := template.New(r.Name).Option("missingkey=error").Parse(r.Summary)
	if err != nil {
		return nil, fmt.Errorf("rule %s: summary: %w", r.Name, err)
	}
	// Render once with sample data, so that a template that names an
	// unknown field fails at load time rather than at 3 a.m.
	if err := t.Execute(new(strings.Builder), summaryData{}); err != nil {
		return nil, fmt.Errorf("rule %s: summary: %w", r.Name, err)
	}
	return t, nil
}

// render executes a parsed summary; on error (which validation makes
// unlikely) it falls back to a plain description.
func render(t *template.Template, d summaryData) string {
	var b strings.Builder
	if t == nil || t.Execute(&b, d) != nil {
		return fmt.Sprintf("%s: %s %s is %s (threshold %s)", d.Rule, d.Queue, d.Figure, d.Value, d.Threshold)
	}
	return b.String()
}
