package alerts

import (
	"context"
	"log/slog"
)

// Notifier receives every alert once when it fires and once when it
// resolves (Alert.Status says which). Notify is called on the goroutine
// that calls Evaluate, one alert at a time, in order; it must return at
// once: a notifier that does I/O hands the alert to a goroutine of its
// own (as Webhook does).
type Notifier interface {
	Notify(a Alert)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(Alert)

// Notify calls f(a).
func (f NotifierFunc) Notify(a Alert) { f(a) }

// logNotifier writes one line per notification.
type logNotifier struct{ log *slog.Logger }

// NewLogNotifier returns a notifier that writes one line to l when an
// alert fires — at level Error for critical alerts, Warn for warnings,
// Info for info — and one line at level Info when it resolves. A nil l
// means slog.Default().
func NewLogNotifier(l *slog.Logger) Notifier {
	if l == nil {
		l = slog.Default()
	}
	return logNotifier{l}
}

func (n logNotifier) Notify(a Alert) {
	attrs := []slog.Attr{
		slog.String("rule", a.Rule),
		slog.String("queue", a.Queue),
		slog.String("severity", string(a.Severity)),
		slog.String("value", a.Figure.format(a.Value)),
		slog.String("threshold", a.Figure.format(a.Threshold)),
		slog.String("summary", a.Summary),
		slog.Time("started", a.Started),
	}
	if a.Status == StatusResolved {
		attrs = append(attrs,
			slog.String("current", a.Figure.format(a.Current)),
			slog.Time("resolved", a.Resolved),
			slog.Duration("lasted", a.Resolved.Sub(a.Started)))
		n.log.LogAttrs(context.Background(), slog.LevelInfo, "alert resolved", attrs...)
		return
	}
	level := slog.LevelWarn
	switch a.Severity {
	case SeverityCritical:
		level = slog.LevelError
	case SeverityInfo:
		level = slog.LevelInfo
	}
	n.log.LogAttrs(context.Background(), level, "alert firing", attrs...)
}
