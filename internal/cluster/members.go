package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/chutemq/chute/internal/consensus"
)

// Membership from the outside (issue 12): a new node joins as a learner
// (it gets the log or a snapshot, and does not vote), is promoted to a
// voter once caught up, and a member is removed; one change at a time,
// at the leader. A member's address travels with its addition in the
// log, so that every member (and every later leader) can reach it;
// Config.OnPeers lets the server keep the addresses it learned.

// MembersPath takes membership changes (POST, JSON MemberRequest; the
// cluster's token if it has one): `chute cluster add|promote|remove`.
const MembersPath = "/chute.cluster.v1/members"

// MemberRequest asks for a membership change: Op "add" (ID at Addr, a
// base URL like the ones in Config.Peers), "promote" or "remove".
type MemberRequest struct {
	Op   string `json:"op"`
	ID   uint64 `json:"id"`
	Addr string `json:"addr,omitempty"`
}

// Errors of ChangeMembers.
var (
	// ErrMemberChange: the change is refused as asked (an unknown
	// member, a voter to promote, an address that is not a URL, …).
	ErrMemberChange = errors.New("cluster: membership change refused")
	// ErrChangePending: an earlier change is not applied yet.
	ErrChangePending = errors.New("cluster: a membership change is in progress")
	// ErrNotCaughtUp: the learner to promote is too far behind.
	ErrNotCaughtUp = errors.New("cluster: the learner has not caught up")
)

// promoteLag is how far behind the leader's commit index a learner may
// be when it is promoted.
const promoteLag = 1000

// ChangeMembers makes a membership change at the leader (a follower
// answers with a *NotLeaderError) and returns once this node applied it.
// Adding a member the group has already, removing one it does not have,
// and promoting a learner that is more than promoteLag entries behind are
// refused; so is a change while another is in flight.
func (n *Node) ChangeMembers(ctx context.Context, req MemberRequest) error {
	kind, err := memberKind(req)
	if err != nil {
		return err
	}
	var perr error
	if err := n.onLoop(ctx, func() { perr = n.proposeMembers(kind, req) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	for {
		var applied, leading bool
		if err := n.onLoop(ctx, func() {
			voters, learners := n.rn.Membership()
			switch kind {
			case consensus.AddLearner:
				applied = slices.Contains(learners, req.ID) || slices.Contains(voters, req.ID)
			case consensus.Promote:
				applied = slices.Contains(voters, req.ID)
			case consensus.Remove:
				applied = !slices.Contains(learners, req.ID) && !slices.Contains(voters, req.ID)
			}
			leading = n.rn.Status().IsLeader
		}); err != nil {
			return err
		}
		if applied {
			return nil
		}
		if !leading { // it may still be applied by the next leader
			return ErrOutcomeUnknown
		}
		t := n.cfg.Clock.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func memberKind(req MemberRequest) (consensus.MemberChangeKind, error) {
	if req.ID == 0 {
		return 0, fmt.Errorf("%w: member ID 0", ErrMemberChange)
	}
	switch req.Op {
	case "add":
		u, err := url.Parse(req.Addr)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return 0, fmt.Errorf("%w: address %q is not http://host:port or https://host:port", ErrMemberChange, req.Addr)
		}
		return consensus.AddLearner, nil
	case "promote":
		return consensus.Promote, nil
	case "remove":
		return consensus.Remove, nil
	}
	return 0, fmt.Errorf("%w: op %q (want add, promote or remove)", ErrMemberChange, req.Op)
}

// proposeMembers checks and proposes a change, on the loop.
func (n *Node) proposeMembers(kind consensus.MemberChangeKind, req MemberRequest) error {
	st := n.rn.Status()
	if !st.IsLeader {
		return &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
	}
	if n.confPending {
		return ErrChangePending
	}
	voters, learners := n.rn.Membership()
	isVoter, isLearner := slices.Contains(voters, req.ID), slices.Contains(learners, req.ID)
	switch kind {
	case consensus.AddLearner:
		if isVoter || isLearner {
			return fmt.Errorf("%w: node %d is a member already", ErrMemberChange, req.ID)
		}
	case consensus.Promote:
		if !isLearner {
			return fmt.Errorf("%w: node %d is not a learner", ErrMemberChange, req.ID)
		}
		if m := n.rn.Match(req.ID); m+promoteLag < st.Commit {
			return fmt.Errorf("%w: node %d is %d entries behind", ErrNotCaughtUp, req.ID, st.Commit-m)
		}
	case consensus.Remove:
		if !isVoter && !isLearner {
			return fmt.Errorf("%w: node %d is not a member", ErrMemberChange, req.ID)
		}
		if isVoter && len(voters) == 1 {
			return fmt.Errorf("%w: node %d is the last voter", ErrMemberChange, req.ID)
		}
	}
	var context []byte
	if kind == consensus.AddLearner {
		context = []byte(strings.TrimRight(req.Addr, "/"))
	}
	if err := n.rn.ProposeMemberChange(kind, req.ID, context); err != nil {
		if errors.Is(err, consensus.ErrNotLeader) {
			return &NotLeaderError{Leader: st.Leader, Addr: n.cfg.Peers[st.Leader]}
		}
		return err
	}
	n.confPending = true
	return nil
}

// membersChanged applies what the node's membership changes mean to its
// peers, on the loop: a member added with an address is sent to, one
// removed is not any more.
func (n *Node) membersChanged(changes []consensus.MemberChange) {
	if len(changes) == 0 {
		return
	}
	n.confPending = false
	changed := false
	for _, c := range changes {
		switch {
		case c.ID == n.cfg.ID:
			if c.Kind == consensus.Remove {
				n.cfg.Logger.Warn("this node was removed from the cluster")
			}
		case c.Kind == consensus.Remove:
			if p := n.peers[c.ID]; p != nil {
				p.close()
				delete(n.peers, c.ID)
			}
			delete(n.cfg.Peers, c.ID)
			changed = true
		case len(c.Context) > 0 && n.cfg.Peers[c.ID] != string(c.Context):
			if p := n.peers[c.ID]; p != nil {
				p.close()
			}
			n.cfg.Peers[c.ID] = string(c.Context)
			n.peers[c.ID] = newPeer(n, c.ID, string(c.Context))
			changed = true
		}
	}
	if changed && n.cfg.OnPeers != nil {
		n.cfg.OnPeers(maps.Clone(n.cfg.Peers))
	}
}

// MembersHandler takes membership changes at MembersPath: 204 once
// applied here; 421 with {"leader": addr} at a follower; 409 for a change
// in progress or a learner behind; 400 for one refused as asked.
func (n *Node) MembersHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodPost) {
			return
		}
		var req MemberRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "a JSON membership request: "+err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		err := n.ChangeMembers(ctx, req)
		var nl *NotLeaderError
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
			return
		case errors.As(err, &nl):
			misdirected(w, nl)
			return
		case errors.Is(err, ErrChangePending), errors.Is(err, ErrNotCaughtUp):
			http.Error(w, err.Error(), http.StatusConflict)
		case errors.Is(err, ErrMemberChange):
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
}
