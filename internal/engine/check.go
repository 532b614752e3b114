package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/chutemq/chute"
)

// Bounds of a message's headers (and of a nack's error text, kept like a
// header value).
const (
	MaxHeaderName  = 256
	MaxHeaderValue = 4096
)

// NackError is a nack's error text as kept: at most MaxHeaderValue bytes
// (a longer one is cut, not refused: the consumer is reporting a failure).
func NackError(s string) string { return s[:min(len(s), MaxHeaderValue)] }

// CheckMessage enforces what a published message may be: a priority in
// range, no negative delay or TTL, at most maxHeaders headers of bounded
// names and values, a deliver-at time UnixNano can hold, and at most
// maxSize bytes (MessageSize). The broker and a cluster node check with it
// before a message reaches the engine.
func CheckMessage(m *chute.Message, maxHeaders, maxSize int) error {
	switch {
	case m.Priority < 0 || m.Priority > MaxPriority:
		return fmt.Errorf("%w: priority %d outside 0..9", chute.ErrInvalidMessage, m.Priority)
	case m.Delay < 0:
		return fmt.Errorf("%w: negative delay", chute.ErrInvalidMessage)
	case m.TTL < 0:
		return fmt.Errorf("%w: negative TTL", chute.ErrInvalidMessage)
	case len(m.Headers) > maxHeaders:
		return fmt.Errorf("%w: %d headers, at most %d", chute.ErrInvalidMessage, len(m.Headers), maxHeaders)
	}
	for k, v := range m.Headers {
		if k == "" || len(k) > MaxHeaderName || len(v) > MaxHeaderValue {
			return fmt.Errorf("%w: header %.40q: names are 1..%d bytes, values at most %d", chute.ErrInvalidMessage, k, MaxHeaderName, MaxHeaderValue)
		}
	}
	if !m.DeliverAt.IsZero() && m.DeliverAt.After(maxTime) {
		// Beyond 2262 UnixNano overflows: refuse it here rather than let it
		// wrap into the past and go out at once (the engine refuses anything
		// beyond MaxTTL from now too).
		return fmt.Errorf("%w: deliver-at %v is more than %v away", chute.ErrInvalidMessage, m.DeliverAt.Format(time.RFC3339), chute.MaxTTL)
	}
	if n := MessageSize(m); n > maxSize {
		return fmt.Errorf("%w: %d bytes, at most %d", chute.ErrMessageTooLarge, n, maxSize)
	}
	return nil
}

// maxTime is the latest time UnixNano can represent.
var maxTime = time.Unix(0, math.MaxInt64)

// MessageSize is what MaxMessageSize bounds: the bytes of the body, ID,
// key and header names and values, not the framing the journal adds (so
// that a limit of 1 MiB accepts a body of exactly 1 MiB).
func MessageSize(m *chute.Message) int {
	n := len(m.Body) + len(m.ID) + len(m.Key)
	for k, v := range m.Headers {
		n += len(k) + len(v)
	}
	return n
}

// CheckRefs refuses more than max refs for one call (to what: "cancel",
// "redrive") and any invalid ref.
func CheckRefs(refs []chute.MessageRef, max int, what string) error {
	if len(refs) > max {
		return fmt.Errorf("%w: %d messages to %s (at most %d)", chute.ErrBatchTooLarge, len(refs), what, max)
	}
	for _, r := range refs {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// SessionOf reads a batch's producer session from its messages: none, or
// one session with consecutive numbers from 1 up.
func SessionOf(msgs []chute.Message) (Session, error) {
	s := Session{ID: msgs[0].Session, First: msgs[0].SessionSeq}
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Session != s.ID:
			return Session{}, fmt.Errorf("%w: message %d: the messages of a publish name one producer session (or none)", chute.ErrInvalidMessage, i)
		case s.ID == "" && m.SessionSeq != 0:
			return Session{}, fmt.Errorf("%w: message %d: a session number without a session", chute.ErrInvalidMessage, i)
		case s.ID != "" && m.SessionSeq != s.First+uint64(i):
			return Session{}, fmt.Errorf("%w: message %d: session number %d, want %d (consecutive from the first message's)", chute.ErrInvalidMessage, i, m.SessionSeq, s.First+uint64(i))
		}
	}
	if len(s.ID) > chute.MaxSessionLen {
		return Session{}, fmt.Errorf("%w: session ID longer than %d bytes", chute.ErrInvalidMessage, chute.MaxSessionLen)
	}
	if s.ID != "" && s.First == 0 {
		return Session{}, fmt.Errorf("%w: session numbers start at 1", chute.ErrInvalidMessage)
	}
	if IsScheduleSession(s.ID) {
		return Session{}, fmt.Errorf("%w: session IDs starting %q belong to schedules", chute.ErrInvalidMessage, ScheduleSessionPrefix)
	}
	return s, nil
}
