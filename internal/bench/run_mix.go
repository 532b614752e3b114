package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The priority and delay mixes of `chute bench run` (RunConfig.Priorities,
// RunConfig.Delays).

// Mix is a weighted choice, parsed from "value:weight,…" (ParsePriorityMix,
// ParseDelayMix). The zero Mix always gives T's zero value.
type Mix[T any] struct {
	Text    string // as given, for the report
	Values  []T
	Weights []int
	total   int
}

// pick draws a value with probability weight/total.
func (m Mix[T]) pick(rng *rand.Rand) T {
	var zero T
	if m.total == 0 {
		return zero
	}
	n := rng.IntN(m.total)
	for i, w := range m.Weights {
		if n < w {
			return m.Values[i]
		}
		n -= w
	}
	return zero
}

// maxDelay is the longest delay of a mix (the drain waits for it).
func maxDelay(m Mix[time.Duration]) time.Duration {
	var best time.Duration
	for _, v := range m.Values {
		best = max(best, v)
	}
	return best
}

// MarshalText reports the mix as given.
func (m Mix[T]) MarshalText() ([]byte, error) { return []byte(m.Text), nil }

// parseMix parses "value:weight,…" with parse for the values; weights are
// positive integers and a value appears once.
func parseMix[T comparable](flag, s string, parse func(string) (T, error)) (Mix[T], error) {
	m := Mix[T]{Text: s}
	if strings.TrimSpace(s) == "" {
		return Mix[T]{}, nil
	}
	seen := map[T]bool{}
	for _, part := range strings.Split(s, ",") {
		vs, ws, ok := strings.Cut(strings.TrimSpace(part), ":")
		w, err := strconv.Atoi(ws)
		if !ok || err != nil || w < 1 {
			return Mix[T]{}, fmt.Errorf("%w: %s %q: want value:weight,… with weights ≥ 1", ErrBadConfig, flag, s)
		}
		v, err := parse(vs)
		if err != nil {
			return Mix[T]{}, fmt.Errorf("%w: %s %q: %v", ErrBadConfig, flag, s, err)
		}
		if seen[v] {
			return Mix[T]{}, fmt.Errorf("%w: %s %q: %s appears twice", ErrBadConfig, flag, s, vs)
		}
		seen[v] = true
		m.Values, m.Weights, m.total = append(m.Values, v), append(m.Weights, w), m.total+w
	}
	return m, nil
}

// ParsePriorityMix parses "priority:weight,…", e.g. "0:50,9:50".
func ParsePriorityMix(s string) (Mix[int], error) {
	return parseMix("--priority-mix", s, func(v string) (int, error) {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 9 {
			return 0, fmt.Errorf("priority %q: want 0 to 9", v)
		}
		return p, nil
	})
}

// ParseDelayMix parses "delay:weight,…", e.g. "0:90,1s:10" (Go durations;
// "0" is no delay).
func ParseDelayMix(s string) (Mix[time.Duration], error) {
	return parseMix("--delay-mix", s, func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 24*time.Hour {
			return 0, fmt.Errorf("delay %q: want a duration from 0 to 24h", v)
		}
		return d, nil
	})
}
