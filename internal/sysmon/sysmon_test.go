package sysmon

import "testing"

func TestPick(t *testing.T) {
	for _, c := range []struct {
		name    string
		threads []thread
		want    int
		found   bool
	}{
		{"main only", []thread{{100, 5}}, 0, false},
		{"none", nil, 0, false},
		{"earliest start", []thread{{100, 5}, {130, 9}, {101, 7}, {140, 6}}, 140, true},
		{"same tick: lowest ID", []thread{{100, 5}, {120, 5}, {103, 5}, {101, 6}}, 103, true},
		{"main thread is never picked", []thread{{100, 1}, {102, 2}}, 102, true},
	} {
		got, found := pick(100, c.threads)
		if got != c.want || found != c.found {
			t.Errorf("%s: pick = %d, %v; want %d, %v", c.name, got, found, c.want, c.found)
		}
	}
}
