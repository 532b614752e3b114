package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// A replica whose log is damaged is not salvaged in place (its state
// would diverge from the others') nor brought back under its ID (it may
// have voted or acknowledged entries it no longer holds): it is rebuilt
// from its peers under a new ID, by the procedure an operator follows for
// a lost disk (docs/operations.md), run by the node itself. Config.Replaces
// names the ID it replaces; the node starts empty as a joiner, and a
// goroutine of its own asks the leader, one change at a time, to remove
// the old ID, add this one as a learner at its address, and promote it
// once it has caught up. Each step is decided from the leader's view of
// the membership, so the procedure resumes where it was after a restart
// or a change of leader.

// rejoinPause is the pause between two looks at the membership.
const rejoinPause = 200 * time.Millisecond

// rejoin drives the membership until this node is a voter and the ID it
// replaces is gone; it returns when done or when the node stops.
func (n *Node) rejoin(old uint64, peers map[uint64]string) {
	defer n.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan struct{})
	go func() { // ends a request in flight when the node stops
		defer close(watched)
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-watched }()
	for {
		done, err := n.rejoinStep(ctx, old, peers)
		switch {
		case done:
			n.cfg.Logger.Info("rebuilt from the peers", "node", n.cfg.ID, "replaces", old)
			if n.cfg.OnRebuilt != nil {
				n.cfg.OnRebuilt()
			}
			return
		case err != nil:
			n.cfg.Logger.Debug("rebuild: membership step", "err", err)
		}
		t := time.NewTimer(rejoinPause)
		select {
		case <-t.C:
		case <-n.stop:
			t.Stop()
			return
		}
	}
}

// rejoinStep takes the next step from the leader's view: remove old, add
// this node as a learner, promote it; done once none is left.
// (peers: the addresses the node started with, its own among them; the
// loop's own map changes with the membership.)
func (n *Node) rejoinStep(ctx context.Context, old uint64, peers map[uint64]string) (done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	in, leader, err := n.leaderInfo(ctx, peers)
	if err != nil {
		return false, err
	}
	member := func(id uint64) (Member, bool) {
		i := slices.IndexFunc(in.Members, func(m Member) bool { return m.ID == id })
		if i < 0 {
			return Member{}, false
		}
		return in.Members[i], true
	}
	var req MemberRequest
	me, isMember := member(n.cfg.ID)
	switch _, oldThere := member(old); {
	case oldThere:
		req = MemberRequest{Op: "remove", ID: old}
	case !isMember:
		req = MemberRequest{Op: "add", ID: n.cfg.ID, Addr: peers[n.cfg.ID]}
	case !me.Voter:
		req = MemberRequest{Op: "promote", ID: n.cfg.ID}
	default:
		return true, nil
	}
	body, _ := json.Marshal(req)
	resp, err := n.peerRequest(ctx, http.MethodPost, leader+ShardPath(MembersPath, n.cfg.Shard), body)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return false, fmt.Errorf("%s %d: %s: %s", req.Op, req.ID, resp.Status, bytes.TrimSpace(msg))
	}
	n.cfg.Logger.Info("rebuild: membership changed", "op", req.Op, "id", req.ID)
	return false, nil
}

// leaderInfo asks the peers for the leader and returns the leader's own
// view (with each member's match) and its address.
func (n *Node) leaderInfo(ctx context.Context, peers map[uint64]string) (Info, string, error) {
	var lastErr error = fmt.Errorf("no peer answered")
	for id, addr := range peers {
		if id == n.cfg.ID {
			continue
		}
		in, err := n.peerInfo(ctx, addr)
		if err != nil {
			lastErr = err
			continue
		}
		if !in.IsLeader {
			i := slices.IndexFunc(in.Members, func(m Member) bool { return m.Leading })
			if i < 0 || in.Members[i].Addr == "" {
				lastErr = fmt.Errorf("%s knows no leader", addr)
				continue
			}
			addr = in.Members[i].Addr
			if in, err = n.peerInfo(ctx, addr); err != nil || !in.IsLeader {
				lastErr = fmt.Errorf("%s: not the leader it was said to be (%v)", addr, err)
				continue
			}
		}
		return in, addr, nil
	}
	return Info{}, "", lastErr
}

func (n *Node) peerInfo(ctx context.Context, addr string) (Info, error) {
	var in Info
	resp, err := n.peerRequest(ctx, http.MethodGet, addr+ShardPath(StatusPath, n.cfg.Shard), nil)
	if err != nil {
		return in, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return in, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&in)
	return in, err
}

// peerRequest sends a request to a peer with the cluster's token.
func (n *Node) peerRequest(ctx context.Context, method, url string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if n.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Token)
	}
	return n.cfg.HTTP.Do(req)
}
