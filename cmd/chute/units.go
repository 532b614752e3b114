package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/xhit/go-str2duration/v2"
)

// Human sizes and durations for every flag, config-file value and
// environment variable (issue 7): sizes as "64MiB", "1.5GB", "512k" or
// plain bytes; durations as Go durations plus days and weeks ("90s",
// "1h30m", "7d", "2w"). "none" (or -1) means None where a flag allows it.
//
// Parsing is done by well-kept libraries (go-humanize for sizes,
// go-str2duration for durations); this file only adapts them to pflag.

// parseSize parses a human size into bytes.
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("size %q: want bytes or a unit such as 64MiB, 1.5GB, 512KiB", s)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// fmtSize prints bytes for people: "64 MiB".
func fmtSize(n int64) string {
	if n < 0 {
		return "none"
	}
	return humanize.IBytes(uint64(n))
}

// parseDuration parses a Go duration, also taking days and weeks.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := str2duration.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number and a unit such as 500ms, 90s, 1h30m, 7d", s)
	}
	return d, nil
}

// fmtDuration prints a duration for people and for --json: "30s", "7d",
// "none" for a negative one.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return str2duration.String(d)
}

// sizeValue is a pflag.Value for a size in bytes; with none set it also
// takes "none" or -1 (stored as -1).
type sizeValue struct {
	p    *int64
	none bool
}

func newSizeValue(p *int64, def int64, none bool) *sizeValue {
	*p = def
	return &sizeValue{p: p, none: none}
}

func (v *sizeValue) Set(s string) error {
	if v.none && isNone(s) {
		*v.p = -1
		return nil
	}
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v *sizeValue) String() string {
	if *v.p < 0 {
		return "none"
	}
	return humanize.IBytes(uint64(*v.p))
}

func (v *sizeValue) Type() string { return "size" }

// durationValue is a pflag.Value for a duration; with none set it also
// takes "none" or -1 (stored as -1ns, the API's None).
type durationValue struct {
	p    *time.Duration
	none bool
}

func newDurationValue(p *time.Duration, def time.Duration, none bool) *durationValue {
	*p = def
	return &durationValue{p: p, none: none}
}

func (v *durationValue) Set(s string) error {
	if v.none && isNone(s) {
		*v.p = -1
		return nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (v *durationValue) String() string { return fmtDuration(*v.p) }
func (v *durationValue) Type() string   { return "duration" }

// isNone reports whether s spells None on the command line.
func isNone(s string) bool {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "none" || s == "unlimited" || s == "off" {
		return true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n == -1
}
