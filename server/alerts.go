package server

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/alerts"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/hist"
)

// Alert evaluation (issue 9, item 2). The server owns one goroutine that,
// every AlertOptions.Interval, takes the broker's statistics
// (broker.Stats) and its own consumer counts (activity.go), turns them
// into an alerts.Snapshot and hands it to an alerts.Evaluator, which
// notifies the log (always) and any other notifiers (webhooks) when an
// alert fires or resolves. Serve starts it; Shutdown stops it and waits.
//
// Rates and latencies are "over the last minute": the difference between
// the statistics now and a baseline taken about a minute ago. Baselines
// are kept every baselineEvery, so that between 60 and 70 s separate the
// baseline used from now (until the server has run for a minute: the
// oldest baseline, i.e. since it started), and memory stays at a few
// baselines however often the loop runs. Errors per minute is the count
// in the window scaled to one minute when the window is longer than that,
// and the raw count while it is shorter: an early figure errs low rather
// than extrapolating one nack in the first second to sixty a minute.

// AlertOptions turn on alert evaluation inside the server.
type AlertOptions struct {
	// Config is the rules and their overrides (alerts.LoadConfig); the
	// zero value is alerts.DefaultRules. It must validate, or New logs
	// the error and evaluates nothing.
	Config alerts.Config
	// Notifiers receive every alert that fires or resolves, after the
	// log notifier, which is always on (on Options.Logger). They must not
	// block (alerts.Webhook does not); their owner closes them after
	// Shutdown.
	Notifiers []alerts.Notifier
	// Stats gives the broker's statistics; default: the API's Stats
	// method, if it has one (*broker.Broker has). Without either, New
	// logs an error and evaluates nothing.
	Stats func() broker.Stats
	// Interval is the time between evaluations; default 1 s. Tests that
	// drive evaluation themselves (Server.EvaluateAlerts) give a fake
	// Options.Clock and never advance it by Interval.
	Interval time.Duration
}

// baselineEvery is how often a baseline for "last minute" figures is kept.
const baselineEvery = 10 * time.Second

// alertWindow is the "last minute" of the figures.
const alertWindow = time.Minute

// alerter is the server's alert evaluation.
type alerter struct {
	eval     *alerts.Evaluator
	stats    func() broker.Stats
	interval time.Duration

	mu        sync.Mutex // serialises evaluate (the loop and EvaluateAlerts)
	baselines []baseline // guarded by mu; oldest first
	// attrs is, per queue with alert attributes, those attributes as last
	// given to the evaluator (guarded by mu; see syncOverridesLocked).
	attrs map[string]string
}

// baseline is the cumulative figures at one moment.
type baseline struct {
	at      time.Time
	queues  map[string]queueBaseline
	confirm hist.Snapshot
}

type queueBaseline struct {
	errors                 int64 // nacked + dead-lettered
	processing, completion hist.Snapshot
}

// newAlerter builds the evaluator, or returns nil (logged) when alerts
// cannot run.
func (s *Server) newAlerter(o *AlertOptions) *alerter {
	stats := o.Stats
	if stats == nil {
		if src, ok := s.api.(interface{ Stats() broker.Stats }); ok {
			stats = src.Stats
		}
	}
	if stats == nil {
		s.log.Error("alerts off: the API gives no broker statistics (set AlertOptions.Stats)")
		return nil
	}
	notifiers := append([]alerts.Notifier{alerts.NewLogNotifier(s.log)}, o.Notifiers...)
	eval, err := alerts.New(o.Config, s.opts.Clock, notifiers...)
	if err != nil {
		s.log.Error("alerts off: invalid rules", "err", err)
		return nil
	}
	interval := o.Interval
	if interval <= 0 {
		interval = time.Second
	}
	return &alerter{eval: eval, stats: stats, interval: interval}
}

// alertLoop evaluates every interval until Shutdown.
func (s *Server) alertLoop() {
	for {
		t := s.opts.Clock.NewTimer(s.alerter.interval)
		select {
		case <-t.C():
			s.EvaluateAlerts()
		case <-s.stop.Done():
			t.Stop()
			return
		}
	}
}

// EvaluateAlerts evaluates the alert rules now, as the server's loop does
// every AlertOptions.Interval (tests call it to drive evaluation step by
// step). It does nothing when alerts are off.
func (s *Server) EvaluateAlerts() {
	a := s.alerter
	if a == nil {
		return
	}
	st := a.stats()
	now := s.now()
	consumers := map[string]int{}
	for _, qc := range s.activity.counts() {
		consumers[qc.Queue] = qc.Consumers
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.syncOverridesLocked(st, s.log)
	cur := baselineOf(st, now)
	base := a.baselineLocked(cur)
	a.eval.Evaluate(snapshotOf(st, now, cur, base, consumers))
}

// syncOverridesLocked hands the evaluator the alert overrides in each
// queue's attributes (alerts.AttributePrefix) when they changed since the
// last evaluation, and drops those of deleted queues. The server checks
// them when a queue is created or updated (checkAlertAttributes), so an
// error here means the rules changed under the queue: it is logged once
// per change and the queue keeps the rules' defaults.
func (a *alerter) syncOverridesLocked(st broker.Stats, log *slog.Logger) {
	seen := make(map[string]bool, len(a.attrs))
	for _, q := range st.Queues {
		key := alertAttributes(q.Config.Attributes)
		if key == "" && a.attrs[q.Name] == "" {
			continue
		}
		seen[q.Name] = true
		if a.attrs[q.Name] == key {
			continue
		}
		if a.attrs == nil {
			a.attrs = map[string]string{}
		}
		a.attrs[q.Name] = key
		o, err := alerts.OverridesFromAttributes(q.Config.Attributes)
		if err == nil {
			err = a.eval.SetQueueOverrides(q.Name, o)
		}
		if err != nil {
			log.Warn("alert attributes ignored", "queue", q.Name, "err", err)
			_ = a.eval.SetQueueOverrides(q.Name, nil)
		}
	}
	for name := range a.attrs {
		if !seen[name] {
			delete(a.attrs, name)
			_ = a.eval.SetQueueOverrides(name, nil)
		}
	}
}

// alertAttributes is the alert attributes of a queue in one string (""
// for none), to notice a change.
func alertAttributes(attrs map[string]string) string {
	var keys []string
	for k := range attrs {
		if strings.HasPrefix(k, alerts.AttributePrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(attrs[k])
		b.WriteByte(0)
	}
	return b.String()
}

// checkAlertAttributes refuses, with ErrInvalidConfig, a queue config
// whose alert attributes do not parse or name rules the server does not
// have (when it evaluates alerts).
func (s *Server) checkAlertAttributes(cfg chute.QueueConfig) error {
	o, err := alerts.OverridesFromAttributes(cfg.Attributes)
	if err == nil && o != nil && s.alerter != nil {
		err = s.alerter.eval.CheckQueueOverrides(o)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", chute.ErrInvalidConfig, err)
	}
	return nil
}

// baselineLocked returns the baseline to compare cur with — the newest
// one at least a minute old, else the oldest — and keeps cur as a
// baseline when the last one is baselineEvery old.
func (a *alerter) baselineLocked(cur baseline) baseline {
	if n := len(a.baselines); n == 0 || cur.at.Sub(a.baselines[n-1].at) >= baselineEvery {
		a.baselines = append(a.baselines, cur)
	}
	cutoff := cur.at.Add(-alertWindow)
	for len(a.baselines) > 1 && !a.baselines[1].at.After(cutoff) {
		a.baselines = a.baselines[1:]
	}
	return a.baselines[0]
}

func baselineOf(st broker.Stats, now time.Time) baseline {
	b := baseline{at: now, queues: make(map[string]queueBaseline, len(st.Queues)), confirm: st.Confirm}
	for _, q := range st.Queues {
		b.queues[q.Name] = queueBaseline{errors: q.Totals.Nacked + q.Totals.DeadLettered,
			processing: q.Histograms.Processing, completion: q.Histograms.Completion}
	}
	return b
}

// since is cur minus earlier, or cur when earlier is not earlier (the
// queue was deleted and made again).
func since(cur, earlier hist.Snapshot) hist.Snapshot {
	if earlier.Count > cur.Count || earlier.Sum > cur.Sum {
		return cur
	}
	return cur.Sub(earlier)
}

// snapshotOf computes the figures of st against the baseline.
func snapshotOf(st broker.Stats, now time.Time, cur, base baseline, consumers map[string]int) alerts.Snapshot {
	window := cur.at.Sub(base.at)
	confirm := since(cur.confirm, base.confirm)
	snap := alerts.Snapshot{Time: now, Queues: make([]alerts.QueueFigures, len(st.Queues)),
		Broker: alerts.BrokerFigures{ConfirmP99: confirm.Quantile(0.99), ConfirmAvg: confirm.Avg()}}
	for i, q := range st.Queues {
		c, b := cur.queues[q.Name], base.queues[q.Name]
		errs := c.errors - b.errors
		if errs < 0 {
			errs = c.errors
		}
		rate := float64(errs)
		if window > alertWindow {
			rate = rate * float64(alertWindow) / float64(window)
		}
		processing := since(c.processing, b.processing)
		snap.Queues[i] = alerts.QueueFigures{
			Queue: q.Name, DeadLetterQueue: q.DeadLetterQueue,
			Depth: q.Ready + q.Delayed + q.InFlight, Ready: q.Ready,
			Errors:          rate,
			CompletionAvg:   since(c.completion, b.completion).Avg(),
			ActiveConsumers: consumers[q.Name],
			ProcessingP99:   processing.Quantile(0.99), ProcessingAvg: processing.Avg(),
			Breaker: breakerFigure(q.QueueStats),
		}
	}
	return snap
}

// Alerts returns the firing alerts, oldest first, and the latest resolved
// ones, newest first; enabled is false when the server evaluates none.
func (s *Server) Alerts() (firing, resolved []alerts.Alert, enabled bool) {
	if s.alerter == nil {
		return nil, nil, false
	}
	return s.alerter.eval.Firing(), s.alerter.eval.Recent(), true
}
