package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/chutemq/chute"
)

// moreQueueFlags are the queue config flags of the circuit breaker, the
// placement group and the attributes (part of queueFlags).
//
// Any --breaker-* flag turns the breaker on (as --breaker does);
// --breaker=false turns it off and cannot be given with them. --attr
// key=value sets an attribute and may be repeated; on update, --attr key=
// (an empty value) removes one.
type moreQueueFlags struct {
	breaker          bool
	breakerThreshold float64
	breakerWindow    time.Duration
	breakerMinDeliv  int
	breakerCooldown  time.Duration
	breakerProbes    int
	group            string
	attrs            []string
}

// breakerFlagNames are the --breaker-* flags, in help order.
var breakerFlagNames = []string{"breaker-threshold", "breaker-window", "breaker-min-deliveries", "breaker-cooldown", "breaker-probes"}

func (m *moreQueueFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&m.breaker, "breaker", false,
		"turn on the queue's circuit breaker: stop delivering while too many deliveries fail (--breaker=false: off)")
	fs.Float64Var(&m.breakerThreshold, "breaker-threshold", 0,
		fmt.Sprintf("failed share of settled deliveries that opens the breaker, in (0, 1] (0: the default, %v)", chute.DefaultBreakerThreshold))
	flagVar(fs, newDurationValue(&m.breakerWindow, 0, false), "breaker-window", "DURATION",
		fmt.Sprintf("sliding window of the failed share (0: the default, %s)", fmtDuration(chute.DefaultBreakerWindow)))
	fs.IntVar(&m.breakerMinDeliv, "breaker-min-deliveries", 0,
		fmt.Sprintf("settled deliveries the window needs before the breaker may open (0: the default, %d)", chute.DefaultBreakerMinDeliveries))
	flagVar(fs, newDurationValue(&m.breakerCooldown, 0, false), "breaker-cooldown", "DURATION",
		fmt.Sprintf("how long the breaker stays open before probing (0: the default, %s)", fmtDuration(chute.DefaultBreakerCooldown)))
	fs.IntVar(&m.breakerProbes, "breaker-probes", 0,
		fmt.Sprintf("deliveries let through half-open, all to succeed for it to close (0: the default, %d)", chute.DefaultBreakerProbes))
	fs.StringVar(&m.group, "group", "", "placement group: a transaction touches queues of one group (set at creation)")
	fs.StringArrayVar(&m.attrs, "attr", nil, "attribute key=value (repeatable; on update key= removes it)")
}

// apply writes the given flags into cfg.
func (m *moreQueueFlags) apply(set func(string) bool, cfg *chute.QueueConfig) error {
	anyBreaker := slices.ContainsFunc(breakerFlagNames, set)
	if set("breaker") && !m.breaker && anyBreaker {
		return usageError{errors.New("--breaker=false turns the breaker off: give no --breaker-* flag with it")}
	}
	if set("breaker") || anyBreaker {
		cfg.Breaker.Enabled = !set("breaker") || m.breaker
		if !cfg.Breaker.Enabled {
			cfg.Breaker = chute.Breaker{}
		}
	}
	b := &cfg.Breaker
	if set("breaker-threshold") {
		if m.breakerThreshold < 0 || m.breakerThreshold > 1 || m.breakerThreshold != m.breakerThreshold {
			return usageError{fmt.Errorf("--breaker-threshold %v: want a fraction in (0, 1] (0: the default)", m.breakerThreshold)}
		}
		b.Threshold = m.breakerThreshold
	}
	for _, c := range []struct {
		name string
		v    int
		p    *int
	}{{"breaker-min-deliveries", m.breakerMinDeliv, &b.MinDeliveries}, {"breaker-probes", m.breakerProbes, &b.Probes}} {
		if set(c.name) {
			if c.v < 0 {
				return usageError{fmt.Errorf("--%s %d: must not be negative (0: the default)", c.name, c.v)}
			}
			*c.p = c.v
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		p    *time.Duration
	}{{"breaker-window", m.breakerWindow, &b.Window}, {"breaker-cooldown", m.breakerCooldown, &b.Cooldown}} {
		if set(d.name) {
			if d.v < 0 {
				return usageError{fmt.Errorf("--%s %v: must not be negative (0: the default)", d.name, d.v)}
			}
			*d.p = d.v
		}
	}
	if set("group") {
		cfg.Group = m.group
	}
	if set("attr") {
		attrs := maps.Clone(cfg.Attributes)
		if attrs == nil {
			attrs = make(map[string]string)
		}
		for _, kv := range m.attrs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError{fmt.Errorf("--attr %q: want key=value", kv)}
			}
			if v == "" {
				delete(attrs, k)
				continue
			}
			attrs[k] = v
		}
		cfg.Attributes = attrs
	}
	return nil
}

// moreConfigRows are the rows of queueConfigRows for these settings, named
// after their flags.
func moreConfigRows(cfg chute.QueueConfig) [][2]string {
	rows := [][2]string{{"group", orDash(cfg.Group)}, {"attr", orDash(fmtKV(cfg.Attributes))}}
	b := cfg.Breaker
	if !b.Enabled {
		return append(rows, [2]string{"breaker", "off"})
	}
	return append(rows,
		[2]string{"breaker", "on"},
		[2]string{"breaker-threshold", strconv.FormatFloat(b.Threshold, 'g', -1, 64)},
		[2]string{"breaker-window", fmtDuration(b.Window)},
		[2]string{"breaker-min-deliveries", strconv.Itoa(b.MinDeliveries)},
		[2]string{"breaker-cooldown", fmtDuration(b.Cooldown)},
		[2]string{"breaker-probes", strconv.Itoa(b.Probes)})
}

// breakerJSON is a breaker config in --json; null when it is off.
type breakerJSON struct {
	Threshold     float64 `json:"threshold"`
	Window        string  `json:"window"`
	MinDeliveries int     `json:"min_deliveries"`
	Cooldown      string  `json:"cooldown"`
	Probes        int     `json:"probes"`
}

func newBreakerJSON(b chute.Breaker) *breakerJSON {
	if !b.Enabled {
		return nil
	}
	return &breakerJSON{Threshold: b.Threshold, Window: fmtDuration(b.Window), MinDeliveries: b.MinDeliveries,
		Cooldown: fmtDuration(b.Cooldown), Probes: b.Probes}
}
