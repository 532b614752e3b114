// Package sysmon widens the timer slack of the Go runtime's monitor
// thread (sysmon), the one thread of a Go process that runs no
// goroutines.
//
// While any P is busy, sysmon sleeps 20µs at a time: it retakes Ps
// from goroutines blocked in system calls, preempts long-running ones
// and polls the network. A broker that goes busy and idle again once
// per commit round wakes it from its deep sleep with every first system
// call, so sysmon stays at 20µs steps: measured on the two-core
// virtual machine of docs/replication.md ("The latency tail, tenth
// session"), about 3,600 wake-ups a second in each node of a
// three-node cluster at 2,000 msgs/s, half of every context switch the
// node made. With a slack of a few milliseconds the kernel may run
// those wake-ups late, together with other timers, and the nodes used
// 10–17 % less CPU and gave a shorter latency tail.
//
// Nothing of sysmon's work needs 20µs: a goroutine runs 10ms before
// sysmon preempts it, and a P held by a blocking system call is
// retaken only when no other P is idle to run what waits.
package sysmon

import "errors"

// ErrUnsupported is returned where the operating system has no
// per-thread timer slack that another thread may set (all but Linux).
var ErrUnsupported = errors.New("sysmon: timer slack is not supported on this system")

// ErrNotPermitted is returned when the process may not set another
// thread's timer slack: Linux asks for CAP_SYS_NICE (root has it).
var ErrNotPermitted = errors.New("sysmon: setting the monitor thread's timer slack needs CAP_SYS_NICE")

// thread is one of the process's threads as /proc shows it.
type thread struct {
	tid   int
	start uint64 // clock ticks after boot (stat field 22)
}

// pick returns the monitor thread: the first thread the process made
// after its main thread (runtime.main starts sysmon before anything
// else runs). Threads made in the same clock tick are told apart by
// their IDs, which the kernel hands out in increasing order.
func pick(pid int, threads []thread) (int, bool) {
	best, found := thread{}, false
	for _, t := range threads {
		if t.tid == pid {
			continue
		}
		if !found || t.start < best.start || (t.start == best.start && t.tid < best.tid) {
			best, found = t, true
		}
	}
	return best.tid, found
}
