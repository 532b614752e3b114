package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// TestLogLevels: a failed call is logged at error only for a server
// fault; a client's cancellation, however it arrives, is debug.
func TestLogLevels(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{connect.NewError(connect.CodeCanceled, context.Canceled), "DEBUG"},
		{context.Canceled, "DEBUG"},
		{fmt.Errorf("consume: send: %w", context.Canceled), "DEBUG"},
		{connect.NewError(connect.CodeNotFound, errors.New("no queue")), "DEBUG"},
		{connect.NewError(connect.CodeUnavailable, errors.New("closed")), "WARN"},
		{connect.NewError(connect.CodeInternal, errors.New("bug")), "ERROR"},
		{errors.New("who knows"), "ERROR"},
	} {
		var buf bytes.Buffer
		s := &Server{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		(&logger{s: s}).report("/chute.v1.MessageService/Consume", "127.0.0.1:1", tc.err)
		if !strings.Contains(buf.String(), "level="+tc.want+" ") {
			t.Errorf("%v: logged %q, want level %s", tc.err, buf.String(), tc.want)
		}
	}
}
