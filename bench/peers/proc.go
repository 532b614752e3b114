package peers

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// procID names a process across time: a pid and its start time (field 22
// of /proc/PID/stat), so that a recycled pid is never mistaken for it.
type procID struct {
	pid   int
	start uint64
}

// procStat is what descendants and alive need from /proc/PID/stat.
type procStat struct {
	ppid  int
	state byte
	start uint64
}

// readStat parses /proc/pid/stat; ok is false when the process is gone.
func readStat(pid int) (st procStat, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, false
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, false
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return st, false
	}
	st.state = f[0][0]
	st.ppid, _ = strconv.Atoi(string(f[1]))
	st.start, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return st, true
}

// descendants returns every process below root now (children of children
// included), read from /proc; none where /proc is not available.
func descendants(root int) []procID {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]procID{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			children[st.ppid] = append(children[st.ppid], procID{pid, st.start})
		}
	}
	var out []procID
	todo := []int{root}
	for len(todo) > 0 && len(out) < 10000 {
		pid := todo[0]
		todo = todo[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			todo = append(todo, c.pid)
		}
	}
	return out
}

// alive reports whether the process id names is still running: same pid,
// same start time, and not a zombie waiting to be reaped.
func alive(id procID) bool {
	st, ok := readStat(id.pid)
	return ok && st.start == id.start && st.state != 'Z' && st.state != 'X'
}

// Alive reports whether pid is a running process (not a zombie); the
// tests use it to check that nothing survives Stop.
func Alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// killAll gives the processes in ids (descendants of a server that has
// exited) grace to exit on their own, SIGKILLs those still running, and
// waits up to grace again for them to go.
func killAll(ids []procID, grace time.Duration) error {
	left := waitGone(ids, grace)
	for _, id := range left {
		_ = syscall.Kill(id.pid, syscall.SIGKILL)
	}
	if left = waitGone(left, grace); len(left) > 0 {
		return fmt.Errorf("stop: %d processes survive SIGKILL (first pid %d)", len(left), left[0].pid)
	}
	return nil
}

// waitGone polls every 20 ms, for at most limit, until none of ids is
// alive, and returns those that still are.
func waitGone(ids []procID, limit time.Duration) []procID {
	deadline := time.Now().Add(limit)
	for {
		var left []procID
		for _, id := range ids {
			if alive(id) {
				left = append(left, id)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		ids = left
		time.Sleep(20 * time.Millisecond)
	}
}
