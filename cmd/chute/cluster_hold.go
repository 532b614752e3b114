package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chutemq/chute/internal/cluster"
)

// backupHold is how long each hold of `chute cluster backup` lasts; it
// is renewed before each shard's snapshot, and every holdRenewEvery
// while one downloads (a large shard's may take longer than a hold).
const backupHold = 2 * time.Minute

var holdRenewEvery = backupHold / 4 // (a variable for tests)

// forwardHold is `chute cluster backup`'s hold on the forwarders of a
// cluster of several shards (cluster.ForwardHoldPath; why:
// internal/cluster/forward.go): no dead letter is carried between two
// shards while their snapshots are taken.
type forwardHold struct {
	f     *clientFlags
	id    string
	addrs []string // the members holding

	mu     sync.Mutex // renewals: the ticker's and renew's
	failed error      // the ticker's first failed renewal
	stop   chan struct{}
	done   chan struct{}
}

// holdForwarders holds the forwarder of every member. A member that
// cannot be held fails the backup, unless force: then it is named on out
// and left out.
func (f *clientFlags) holdForwarders(members []cluster.Member, force bool, out io.Writer) (*forwardHold, error) {
	var b [8]byte
	rand.Read(b[:])
	h := &forwardHold{f: f, id: hex.EncodeToString(b[:])}
	var failed []string
	for _, m := range members {
		if _, err := h.post(m.Addr); err != nil {
			failed = append(failed, fmt.Sprintf("node %d: %v", m.ID, err))
			continue
		}
		h.addrs = append(h.addrs, m.Addr)
	}
	if len(failed) > 0 {
		if !force {
			h.release()
			return nil, fmt.Errorf("could not hold every member's forwarder of dead letters between shards (%s): "+
				"a dead letter carried between two shards' snapshots could then be in neither; "+
				"run again once every member answers, or with --force to take the backup without them",
				strings.Join(failed, "; "))
		}
		fmt.Fprintf(out, "not held (--force): %s\n", strings.Join(failed, "; "))
	}
	fmt.Fprintf(out, "held the forwarders of %d node(s): dead letters for other shards wait in their outboxes until the backup ends\n", len(h.addrs))
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(holdRenewEvery)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				if err := h.renew(); err != nil {
					return
				}
			}
		}
	}()
	return h, nil
}

// renew renews every hold, and fails if one lapsed since the last
// renewal (its process restarted, or the hold ran out), or a renewal
// failed: the forwarder may have carried meanwhile.
func (h *forwardHold) renew() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed != nil {
		return h.failed
	}
	for _, addr := range h.addrs {
		held, err := h.post(addr)
		if err != nil {
			h.failed = fmt.Errorf("renewing the hold on %s's forwarder: %w", addr, err)
			return h.failed
		}
		if !held {
			h.failed = fmt.Errorf("the hold on %s's forwarder lapsed during the backup (the process restarted?): a dead letter carried meanwhile could be in no shard's snapshot; take the backup again", addr)
			return h.failed
		}
	}
	return nil
}

// release stops the renewals and ends every hold (best effort: they run
// out anyway).
func (h *forwardHold) release() {
	if h.stop != nil {
		close(h.stop)
		<-h.done
	}
	for _, addr := range h.addrs {
		if resp, _, err := h.at(addr).clusterDo(http.MethodDelete, cluster.ForwardHoldPath+"?id="+url.QueryEscape(h.id), nil); err == nil {
			resp.Body.Close()
		}
	}
}

// post holds (or renews) addr's forwarder; held: a hold of this ID was
// in force already.
func (h *forwardHold) post(addr string) (held bool, err error) {
	body, _ := json.Marshal(cluster.ForwardHold{ID: h.id, Seconds: int(backupHold / time.Second)})
	resp, _, err := h.at(addr).clusterDo(http.MethodPost, cluster.ForwardHoldPath, body)
	var nc notClusterError
	if errors.As(err, &nc) {
		return false, fmt.Errorf("%s has no forwarder to hold (a node of an older release?)", addr)
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return false, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	var ans struct{ Held bool }
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return false, errors.New("an answer that is not a hold's")
	}
	return ans.Held, nil
}

// at is f aimed at addr alone.
func (h *forwardHold) at(addr string) *clientFlags {
	g := *h.f
	g.server = addr
	return &g
}
