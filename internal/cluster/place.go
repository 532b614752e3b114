package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/replica"
)

// The directory of a sharded cluster lives in shard 0's state
// (replica.OpPlace): which shard holds each queue, topic and schedule.
// Every process runs a node of shard 0, so each reads the directory from
// its own copy (Node.Placement, no call to the leader); only placing and
// unplacing a name go to shard 0's leader, from whichever node took the
// call (PlacePath), so that a create or delete taken by one shard's
// leader is not sent back and forth between it and shard 0's.

// PlacePath takes placements (POST, JSON PlaceRequest; the cluster's
// token) at shard 0's leader: 204 when done, 409 with {"error", "shard"}
// when the name is in another shard, 421 naming the leader elsewhere.
const PlacePath = "/chute.cluster.v1/place"

// PlaceRequest places Name in Shard, or (Unplace) frees it; with MinAge,
// only if it was placed (or placed again) at least that long ago.
type PlaceRequest struct {
	Name    string        `json:"name"`
	Shard   uint32        `json:"shard"`
	Unplace bool          `json:"unplace,omitempty"`
	MinAge  time.Duration `json:"min_age,omitempty"`
}

func (req PlaceRequest) command() replica.Command {
	if req.Unplace {
		return replica.Command{Op: replica.OpUnplace, Queue: req.Name, Lease: req.MinAge}
	}
	return replica.Command{Op: replica.OpPlace, Queue: req.Name, Max: int(req.Shard)}
}

// Placement is the shard the directory (this node's copy of shard 0's
// state, as of its last apply) places name in; only shard 0's node has
// one.
func (n *Node) Placement(name string) (uint32, bool) {
	dir := n.places.Load()
	if dir == nil {
		return 0, false
	}
	sh, ok := (*dir)[name]
	return sh, ok
}

// publishPlaces copies the directory for Placement (on the loop, after
// an apply that changed it).
func (n *Node) publishPlaces() {
	dir := maps.Clone(n.rep.Shard().Places())
	n.places.Store(&dir)
}

// Place places (or unplaces) a name: proposed here when this node leads
// shard 0 (it must be shard 0's node), else sent to the leader. A name
// in another shard is a *replica.PlacedError.
func (n *Node) Place(ctx context.Context, req PlaceRequest) error {
	body, _ := json.Marshal(req)
	return n.relay(ctx, req.command(), PlacePath, body, func(status int, msg []byte) error {
		var answer struct {
			Shard uint32 `json:"shard"`
		}
		if status == http.StatusConflict && json.Unmarshal(msg, &answer) == nil {
			return &replica.PlacedError{Name: req.Name, Shard: answer.Shard}
		}
		return fmt.Errorf("cluster: placing %q: %s: %s", req.Name, http.StatusText(status), bytes.TrimSpace(msg))
	})
}

// PlaceHandler takes placements at PlacePath (shard 0's node).
func (n *Node) PlaceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodPost) {
			return
		}
		var req PlaceRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || chute.ValidateName(req.Name) != nil {
			http.Error(w, fmt.Sprintf("a placement: %v", errors.Join(err, chute.ValidateName(req.Name))), http.StatusBadRequest)
			return
		}
		res, err := n.Do(r.Context(), req.command())
		if err == nil {
			err = res.Err
		}
		answerRelayed(w, err, func(w http.ResponseWriter, err error) {
			var pe *replica.PlacedError
			if !errors.As(err, &pe) {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(map[string]any{"error": pe.Error(), "shard": pe.Shard})
		})
	})
}
