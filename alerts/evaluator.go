package alerts

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/chutemq/chute"
)

// Status is an alert's status, named as Alertmanager names it.
type Status string

// The statuses a notifier sees.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one rule firing (or having fired) for one queue.
type Alert struct {
	Rule     string
	Queue    string // empty for a broker-wide rule
	Severity Severity
	Status   Status
	Figure   Figure
	// Value is the figure when the alert fired; Current is its latest
	// value (at resolution, the value that cleared it; for a queue that
	// disappeared, the last value seen).
	Value, Current float64
	// Threshold is the rule's threshold when the alert fired.
	Threshold float64
	// Since is when the condition began to hold (the alert went
	// pending); Started is when it fired; Resolved is when it resolved,
	// zero while it fires.
	Since, Started, Resolved time.Time
	// Summary is the rule's summary template, rendered when the alert
	// fired.
	Summary string
}

// Evaluator evaluates the rules against snapshots and keeps the state of
// every alert. It has no goroutine: its owner calls Evaluate, about once a
// second. Firing, Recent and SetQueueOverrides may be called from any
// goroutine.
//
// Lock order: evalMu, then mu. Notifiers are called holding evalMu only,
// so a notifier may call Firing or Recent.
type Evaluator struct {
	clock     chute.Clock
	notifiers []Notifier
	rules     *ruleSet // immutable after New

	evalMu sync.Mutex // serialises Evaluate, so that notifications keep their order

	mu      sync.Mutex
	states  map[alertKey]*alertState       // guarded by mu
	recent  []Alert                        // guarded by mu; resolved alerts, oldest first
	runtime map[string]map[string]Override // guarded by mu; SetQueueOverrides
	cache   map[string][]Rule              // guarded by mu; queue → its rules
}

type alertKey struct{ rule, queue string }

// alertState is one (rule, queue) that is pending or firing; inactive
// ones have no state.
type alertState struct {
	firing   bool
	clearing time.Time // firing: when the condition became clear; zero if not clear
	alert    Alert     // Since is set when pending; the rest when firing
}

// New returns an evaluator of cfg's rules that notifies notifiers. clock
// supplies the time of snapshots that carry none (nil: the system clock).
// It fails if cfg does not validate.
func New(cfg Config, clock chute.Clock, notifiers ...Notifier) (*Evaluator, error) {
	rs, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = chute.SystemClock()
	}
	return &Evaluator{clock: clock, notifiers: notifiers, rules: rs,
		states: map[alertKey]*alertState{}, runtime: map[string]map[string]Override{},
		cache: map[string][]Rule{}}, nil
}

// SetQueueOverrides sets the run-time overrides of one queue's rules —
// for instance from the queue's attributes — replacing any set before; nil
// removes them. They apply from the next Evaluate, over every override
// from Config. Broker-wide rules cannot be overridden per queue.
func (e *Evaluator) SetQueueOverrides(queue string, overrides map[string]Override) error {
	if err := e.rules.checkQueueOverrides(overrides); err != nil {
		return fmt.Errorf("alerts: queue %s: %w", queue, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if overrides == nil {
		delete(e.runtime, queue)
	} else {
		e.runtime[queue] = overrides
	}
	delete(e.cache, queue)
	return nil
}

// Evaluate advances every alert to the snapshot's figures, then notifies
// what fired and what resolved, in that order of events. It returns as
// soon as the notifiers have taken the events (they must not block).
func (e *Evaluator) Evaluate(s Snapshot) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := s.Time
	if now.IsZero() {
		now = e.clock.Now()
	}
	e.mu.Lock()
	events := e.stepLocked(s, now)
	e.mu.Unlock()
	for _, a := range events {
		for _, n := range e.notifiers {
			n.Notify(a)
		}
	}
}

// stepLocked moves every state one step and returns the alerts that fired
// or resolved.
func (e *Evaluator) stepLocked(s Snapshot, now time.Time) []Alert {
	var events []Alert
	seen := make(map[alertKey]bool, len(e.states))
	queues := make(map[string]bool, len(s.Queues))
	for i := range s.Queues {
		q := &s.Queues[i]
		queues[q.Queue] = true
		for _, r := range e.rulesForLocked(q.Queue) {
			if !r.applies(*q) {
				continue
			}
			k := alertKey{r.Name, q.Queue}
			seen[k] = true
			events = e.stepOneLocked(k, r, r.Figure.of(*q), q, now, events)
		}
	}
	for _, r := range e.rules.base {
		if r.Enabled && r.Figure.Broker() {
			k := alertKey{r.Name, ""}
			seen[k] = true
			events = e.stepOneLocked(k, r, r.Figure.ofBroker(s.Broker), nil, now, events)
		}
	}
	// What was not evaluated — its queue is gone, or its rule is now
	// disabled for it — resolves at once (or, if pending, is forgotten).
	var gone []alertKey
	for k := range e.states {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b alertKey) int {
		return cmp.Or(cmp.Compare(a.queue, b.queue), cmp.Compare(a.rule, b.rule))
	})
	for _, k := range gone {
		if st := e.states[k]; st.firing {
			events = append(events, e.resolveLocked(k, st, now))
		}
		delete(e.states, k)
	}
	for q := range e.cache {
		if !queues[q] {
			delete(e.cache, q)
		}
	}
	return events
}

// stepOneLocked moves one (rule, queue) state given the figure's value v
// (q is nil for a broker-wide rule).
func (e *Evaluator) stepOneLocked(k alertKey, r Rule, v float64, q *QueueFigures, now time.Time, events []Alert) []Alert {
	st := e.states[k]
	if st == nil {
		if !r.holds(v, q) {
			return events
		}
		st = &alertState{alert: Alert{Rule: r.Name, Queue: k.queue, Figure: r.Figure, Since: now}}
		e.states[k] = st
	}
	if !st.firing {
		switch {
		case !r.holds(v, q):
			delete(e.states, k) // pending ends quietly
		case now.Sub(st.alert.Since) >= r.For:
			st.firing = true
			a := &st.alert
			a.Status, a.Severity, a.Started = StatusFiring, r.Severity, now
			a.Value, a.Current, a.Threshold = v, v, r.Threshold
			a.Summary = render(e.rules.tmpl[r.Name], summaryData{
				Rule: r.Name, Queue: k.queue, Figure: string(r.Figure), Value: r.Figure.format(v),
				Threshold: r.Figure.format(r.Threshold), Severity: string(r.Severity)})
			events = append(events, *a)
		}
		return events
	}
	st.alert.Current = v
	if !r.clear(v, q) {
		st.clearing = time.Time{}
		return events
	}
	if st.clearing.IsZero() {
		st.clearing = now
	}
	if now.Sub(st.clearing) >= r.ResolveFor {
		events = append(events, e.resolveLocked(k, st, now))
		delete(e.states, k)
	}
	return events
}

// resolveLocked marks a firing alert resolved and keeps it in recent.
func (e *Evaluator) resolveLocked(k alertKey, st *alertState, now time.Time) Alert {
	a := st.alert
	a.Status, a.Resolved = StatusResolved, now
	e.recent = append(e.recent, a)
	if over := len(e.recent) - e.rules.recent; over > 0 {
		e.recent = slices.Delete(e.recent, 0, over)
	}
	return a
}

// rulesForLocked returns queue q's rules, from the cache when it can.
func (e *Evaluator) rulesForLocked(q string) []Rule {
	rules, ok := e.cache[q]
	if !ok {
		rules = e.rules.forQueue(q, e.runtime[q])
		e.cache[q] = rules
	}
	return rules
}

// Firing returns the alerts firing now, oldest first.
func (e *Evaluator) Firing() []Alert {
	e.mu.Lock()
	var out []Alert
	for _, st := range e.states {
		if st.firing {
			out = append(out, st.alert)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.Queue, b.Queue), cmp.Compare(a.Rule, b.Rule))
	})
	return out
}

// Recent returns the latest resolved alerts, newest first: at most
// Config.Recent of them.
func (e *Evaluator) Recent() []Alert {
	e.mu.Lock()
	out := slices.Clone(e.recent)
	e.mu.Unlock()
	slices.Reverse(out)
	return out
}
