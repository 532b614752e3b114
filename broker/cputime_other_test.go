//go:build !unix

package broker_test

import "time"

// cpuTime is not measured here (see cputime_unix_test.go): benchmarks
// report 0 CPU time.
func cpuTime() time.Duration { return 0 }
