//go:build !linux

package sysmon

import "time"

// Thread returns ErrUnsupported: only Linux shows the threads and their
// timer slack.
func Thread() (int, error) { return 0, ErrUnsupported }

// Slack returns ErrUnsupported.
func Slack(int) (time.Duration, error) { return 0, ErrUnsupported }

// SetSlack returns ErrUnsupported.
func SetSlack(time.Duration) (int, error) { return 0, ErrUnsupported }
