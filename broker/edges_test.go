package broker_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/broker"
	"github.com/chutemq/chute/internal/chutetest"
)

// TestInputEdges: the smaller holes of issue 8. Limits mean what they
// say, far-away times are refused rather than wrapped, receipts of another
// queue are invalid (not stale), and bad input is never echoed back whole.
func TestInputEdges(t *testing.T) {
	b := chutetest.MustOpen(t, "", &broker.Options{MaxMessageSize: 1000})
	ctx := chutetest.Ctx(t)
	mustCreate(t, b, "q", chute.QueueConfig{})
	mustCreate(t, b, "other", chute.QueueConfig{})

	// A documented maximum accepts a message of exactly that size.
	if _, err := b.Publish(ctx, "q", chute.Message{Body: make([]byte, 1000)}); err != nil {
		t.Errorf("a body of exactly MaxMessageSize: %v", err)
	}
	_, err := b.Publish(ctx, "q", chute.Message{Body: make([]byte, 990), ID: "0123456789", Key: "k"})
	if !errors.Is(err, chute.ErrMessageTooLarge) {
		t.Errorf("1001 bytes of body, ID and key: %v, want ErrMessageTooLarge", err)
	}

	// After 2262 UnixNano overflows: refused, not delivered at once.
	_, err = b.Publish(ctx, "q", chute.Message{Body: []byte("x"), DeliverAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)})
	if !errors.Is(err, chute.ErrInvalidMessage) {
		t.Errorf("deliver-at 2300: %v, want ErrInvalidMessage", err)
	}
	// NaN jitter is not a fraction.
	err = b.CreateQueue(ctx, "nan", chute.QueueConfig{Backoff: chute.Backoff{Jitter: math.NaN()}})
	if !errors.Is(err, chute.ErrInvalidConfig) {
		t.Errorf("NaN jitter: %v, want ErrInvalidConfig", err)
	}

	// A publish with no target is a mistake even without messages.
	if _, err := b.Publish(ctx, ""); !errors.Is(err, chute.ErrInvalidName) {
		t.Errorf("publish with no target and no messages: %v, want ErrInvalidName", err)
	}
	if _, err := b.Publish(ctx, "nope"); !errors.Is(err, chute.ErrNotFound) {
		t.Errorf("publish of nothing to a missing target: %v, want ErrNotFound", err)
	}

	// A receipt of another queue is invalid; one of a deleted queue stale.
	mustPublish(t, b, "other", chute.Message{Body: []byte("o")})
	d := mustReceive(t, b, "other", chute.ReceiveOptions{Max: 1})[0]
	if err := b.Ack(ctx, "q", d.Receipt); !errors.Is(err, chute.ErrInvalidReceipt) || errors.Is(err, chute.ErrStaleReceipt) {
		t.Errorf("ack on q of a receipt of other: %v, want ErrInvalidReceipt", err)
	}
	if err := b.DeleteQueue(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, b, "other", chute.QueueConfig{})
	if err := b.Ack(ctx, "other", d.Receipt); !errors.Is(err, chute.ErrStaleReceipt) {
		t.Errorf("ack of a receipt of a deleted queue: %v, want ErrStaleReceipt", err)
	}

	// The longest valid name gets its default dead-letter queue.
	long := strings.Repeat("n", chute.MaxNameLen)
	mustCreate(t, b, long, chute.QueueConfig{})
	if s, err := b.QueueStats(ctx, long+chute.DeadLetterSuffix); err != nil || s.Config.DeadLetterQueue != "" {
		t.Errorf("dead-letter queue of a %d-byte name: %+v, %v", len(long), s, err)
	}

	// An 8 MiB name is not echoed back whole.
	huge := strings.Repeat("x", 8<<20)
	for what, err := range map[string]error{
		"create":  b.CreateQueue(ctx, huge, chute.QueueConfig{}),
		"stats":   second(b.QueueStats(ctx, huge)),
		"ack":     b.Ack(ctx, huge, "1.1.1"),
		"receive": second(b.Receive(ctx, huge, chute.ReceiveOptions{Wait: -1})),
	} {
		if err == nil || len(err.Error()) > 300 {
			t.Errorf("%s with an 8 MiB name: %d bytes of error", what, len(errString(err)))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
