package alerts

import (
	"testing"
	"time"
)

// TestOverridesFromAttributes reads every field from attributes, ignores
// attributes that are not alert overrides, and refuses bad syntax.
func TestOverridesFromAttributes(t *testing.T) {
	o, err := OverridesFromAttributes(map[string]string{
		"team":                                 "payments",
		"alert.queue_depth.threshold":          "50000",
		"alert.queue_depth.for":                "2m",
		"alert.queue_depth.resolve_for":        "30s",
		"alert.queue_depth.hysteresis":         "0.2",
		"alert.queue_depth.severity":           "critical",
		"alert.queue_no_consumers.enabled":     "false",
		"alert.queue_completion_avg.threshold": "1500ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := o["queue_depth"]
	if len(o) != 3 || d.Threshold == nil || *d.Threshold != 50000 || d.For == nil || d.For.D() != 2*time.Minute ||
		d.ResolveFor == nil || d.ResolveFor.D() != 30*time.Second || d.Hysteresis == nil || *d.Hysteresis != 0.2 ||
		d.Severity == nil || *d.Severity != SeverityCritical || d.Enabled != nil {
		t.Fatalf("queue_depth override %+v (of %d)", d, len(o))
	}
	if e := o["queue_no_consumers"].Enabled; e == nil || *e {
		t.Fatalf("queue_no_consumers enabled %v", e)
	}
	if c := o["queue_completion_avg"].Threshold; c == nil || *c != 1.5 {
		t.Fatalf("completion_avg threshold %v", c)
	}
	if o, err := OverridesFromAttributes(map[string]string{"team": "x"}); err != nil || o != nil {
		t.Fatalf("no alert attributes: %v, %v", o, err)
	}
	for _, bad := range []map[string]string{
		{"alert.queue_depth": "5"},
		{"alert..threshold": "5"},
		{"alert.queue_depth.threshold": "lots"},
		{"alert.queue_depth.for": "soon"},
		{"alert.queue_depth.severity": "panic"},
		{"alert.queue_depth.enabled": "maybe"},
		{"alert.queue_depth.colour": "red"},
	} {
		if _, err := OverridesFromAttributes(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
