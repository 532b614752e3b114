package text

import (
	"strings"
	"testing"
)

func TestQuote(t *testing.T) {
	if got := Quote("jobs"); got != `"jobs"` {
		t.Errorf("Quote(jobs) = %s", got)
	}
	long := strings.Repeat("x", 8<<20)
	got := Quote(long)
	if len(got) > MaxQuoted+40 || !strings.Contains(got, "8388608 bytes") {
		t.Errorf("Quote of 8 MiB gave %d bytes: %.100s", len(got), got)
	}
}
