//go:build linux

package sysmon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"
)

// Thread returns the ID of the process's monitor thread.
func Thread() (int, error) {
	pid := os.Getpid()
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("sysmon: %w", err)
	}
	var threads []thread
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || tid == pid {
			continue
		}
		start, err := startTime(tid)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended while we read
		}
		if err != nil {
			return 0, err
		}
		threads = append(threads, thread{tid, start})
	}
	tid, ok := pick(pid, threads)
	if !ok {
		return 0, errors.New("sysmon: the process has no thread but its main one")
	}
	return tid, nil
}

// startTime reads field 22 of /proc/self/task/TID/stat. The second
// field, the command's name in parentheses, may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func startTime(tid int) (uint64, error) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("sysmon: thread %d: stat without a name", tid)
	}
	fields := strings.Fields(s[i+1:]) // fields 3 onwards
	if len(fields) < 20 {
		return 0, fmt.Errorf("sysmon: thread %d: stat has %d fields", tid, len(fields)+2)
	}
	start, err := strconv.ParseUint(fields[22-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysmon: thread %d: start time: %w", tid, err)
	}
	return start, nil
}

// Slack reads a thread's timer slack.
func Slack(tid int) (time.Duration, error) {
	b, err := os.ReadFile(slackPath(tid))
	if err != nil {
		return 0, fmt.Errorf("sysmon: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysmon: thread %d: timer slack: %w", tid, err)
	}
	return time.Duration(ns), nil
}

// SetSlack sets the monitor thread's timer slack to d (at least 1ns:
// Linux reads 0 as "the thread's default") and returns the thread's ID.
func SetSlack(d time.Duration) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("sysmon: timer slack %v: must be positive", d)
	}
	tid, err := Thread()
	if err != nil {
		return 0, err
	}
	return tid, setSlack(tid, d)
}

func setSlack(tid int, d time.Duration) error {
	err := os.WriteFile(slackPath(tid), []byte(strconv.FormatInt(d.Nanoseconds(), 10)), 0)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (thread %d)", ErrNotPermitted, tid)
	}
	if err != nil {
		return fmt.Errorf("sysmon: %w", err)
	}
	return nil
}

// The file is in /proc/TID, not /proc/self/task/TID: Linux has it per
// process directory only, and a thread's ID names one too.
func slackPath(tid int) string { return "/proc/" + strconv.Itoa(tid) + "/timerslack_ns" }
