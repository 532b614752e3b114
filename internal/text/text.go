// Package text formats user input for error messages and logs.
package text

import "fmt"

// MaxQuoted is how much of a string Quote shows.
const MaxQuoted = 64

// Quote quotes s for an error message or a log line, cut to its first
// MaxQuoted bytes, so that hostile input (an 8 MiB "queue name") is never
// echoed back whole (issue 8).
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:MaxQuoted], len(s))
}
