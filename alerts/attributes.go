package alerts

import (
	"fmt"
	"strconv"
	"strings"
)

// AttributePrefix starts the queue attributes (chute.QueueConfig.Attributes)
// that override alert rules for that queue:
//
//	alert.RULE.threshold    a number, or a duration such as 500ms (as in a rules file)
//	alert.RULE.for          a duration: how long the condition must hold
//	alert.RULE.resolve_for  a duration: how long it must clear
//	alert.RULE.hysteresis   a fraction of the threshold
//	alert.RULE.severity     info, warning or critical
//	alert.RULE.enabled      true or false
//
// For instance alert.queue_depth.threshold=50000 on one queue, or
// alert.queue_no_consumers.enabled=false on a queue meant to sit unconsumed.
// Attribute overrides apply over the rules file's (the queue's own layer
// is the last).
const AttributePrefix = "alert."

// OverridesFromAttributes reads the alert overrides among a queue's
// attributes; nil when there are none. Other attributes are ignored. The
// syntax is checked here; Evaluator.SetQueueOverrides checks that the
// rules exist and the resulting rules are valid.
func OverridesFromAttributes(attrs map[string]string) (map[string]Override, error) {
	var out map[string]Override
	for k, v := range attrs {
		rest, ok := strings.CutPrefix(k, AttributePrefix)
		if !ok {
			continue
		}
		rule, field, ok := strings.Cut(rest, ".")
		if !ok || rule == "" {
			return nil, fmt.Errorf("attribute %s: want %sRULE.FIELD", k, AttributePrefix)
		}
		if out == nil {
			out = map[string]Override{}
		}
		o := out[rule]
		if err := setField(&o, field, v); err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[rule] = o
	}
	return out, nil
}

func setField(o *Override, field, v string) error {
	switch field {
	case "threshold":
		q, err := parseQuantity(v)
		if err != nil {
			return err
		}
		o.Threshold = &q
	case "for", "resolve_for":
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		if field == "for" {
			o.For = &d
		} else {
			o.ResolveFor = &d
		}
	case "hysteresis":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("hysteresis %q: want a fraction such as 0.1", v)
		}
		o.Hysteresis = &f
	case "severity":
		s := Severity(strings.TrimSpace(v))
		if !s.valid() {
			return fmt.Errorf("severity %q: want info, warning or critical", v)
		}
		o.Severity = &s
	case "enabled":
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("enabled %q: want true or false", v)
		}
		o.Enabled = &b
	default:
		return fmt.Errorf("unknown field %q: want threshold, for, resolve_for, hysteresis, severity or enabled", field)
	}
	return nil
}

// CheckQueueOverrides reports whether overrides would be accepted by
// SetQueueOverrides (the rules exist, are per-queue, and stay valid).
func (e *Evaluator) CheckQueueOverrides(overrides map[string]Override) error {
	return e.rules.checkQueueOverrides(overrides)
}
