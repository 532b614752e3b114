package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/replica"
)

// Commands a node runs for another process at its shard's leader: the
// directory's placements (PlacePath) and carried messages (CarryPath).
// The caller proposes here when this node leads, else posts the command
// to the leader named; the leader answers with answerRelayed.

// relay runs cmd at this node's shard's leader: proposed here when this
// node leads, else posted (body, in the form path takes) to the leader
// named, and once more if that one moved meanwhile. nil once applied;
// the command's own refusal as an error; a leader's answer other than
// 204, 421 or 503 is refused(status, its text).
func (n *Node) relay(ctx context.Context, cmd replica.Command, path string, body []byte, refused func(status int, msg []byte) error) error {
	res, err := n.Do(ctx, cmd)
	var nl *NotLeaderError
	if !errors.As(err, &nl) {
		if err == nil {
			err = res.Err
		}
		return err
	}
	for range 2 {
		if nl.Addr == "" {
			return nl
		}
		resp, err := n.peerRequest(ctx, http.MethodPost, nl.Addr+path, body)
		if err != nil {
			return fmt.Errorf("cluster: %v at shard %d's leader %s: %w", cmd.Op, n.cfg.Shard, nl.Addr, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusNoContent:
			return nil
		case http.StatusMisdirectedRequest:
			var answer struct{ Leader string }
			json.Unmarshal(msg, &answer)
			nl = &NotLeaderError{Addr: answer.Leader}
			continue
		case http.StatusServiceUnavailable:
			return fmt.Errorf("%w: %v at %s: %s", chute.ErrOutcomeUnknown, cmd.Op, nl.Addr, bytes.TrimSpace(msg))
		}
		return refused(resp.StatusCode, msg)
	}
	return nl
}

// answerRelayed answers a relayed command with its outcome err: 204 when
// applied, 421 naming the leader, 503 when its outcome is unknown; a
// refusal by refused.
func answerRelayed(w http.ResponseWriter, err error, refused func(http.ResponseWriter, error)) {
	var nl *NotLeaderError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.As(err, &nl):
		misdirected(w, nl)
	case errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrClosed):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		refused(w, err)
	}
}
