package main

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"64MiB": 64 << 20, "1.5GB": 1_500_000_000, "512KiB": 512 << 10, "1048576": 1 << 20, "64 MiB": 64 << 20, "1kb": 1000,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1", "1.5XB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "2w": 14 * 24 * time.Hour,
		"500ms": 500 * time.Millisecond, "0": 0, "1d12h": 36 * time.Hour,
	} {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "7", "soon", "1y"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
	if s := fmtDuration(3 * 24 * time.Hour); s != "3d" {
		t.Errorf("fmtDuration(3d) = %q", s)
	}
	if s := fmtDuration(-1); s != "none" {
		t.Errorf("fmtDuration(-1) = %q", s)
	}
}

func TestNoneValues(t *testing.T) {
	var n int64
	v := newSizeValue(&n, 5, true)
	for _, s := range []string{"none", "-1", "unlimited"} {
		n = 5
		if err := v.Set(s); err != nil || n != -1 {
			t.Errorf("size Set(%q): %d, %v", s, n, err)
		}
	}
	if err := newSizeValue(&n, 0, false).Set("none"); err == nil {
		t.Error(`a size flag without None took "none"`)
	}
	var d time.Duration
	if err := newDurationValue(&d, 0, true).Set("none"); err != nil || d != -1 {
		t.Errorf(`duration Set("none"): %v, %v`, d, err)
	}
}
