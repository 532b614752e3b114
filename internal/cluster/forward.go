package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// The forwarder of a sharded process: dead letters to a dead-letter
// queue in another shard, and back by redrive.
//
// A queue's dead-letter queue may be in another shard than the queue (a
// dead-letter queue shared by queues of several groups, or by
// subscriptions of topics in several shards). The queue's shard cannot
// put a dead letter there in the command that kills it, so its engine
// dead-letters, as always, into a queue of that name in its own shard:
// an outbox, which no client reaches (the directory sends every call on
// the name to the other shard, and lists leave it out). A redrive of
// such letters goes the other way: the dead-letter queue's shard moves
// each into an outbox named after its source queue (Sharded.Redrive).
// The leader of an outbox's shard carries what it holds to the shard the
// directory places its name in:
//
//  1. it takes the outbox's oldest ready messages (lowest sequences
//     first, up to forwardBatch, or forwardBytes of bodies);
//  2. it proposes them, each as what it is (a dead letter with its death,
//     or a redriven message) with its original publish time, to the
//     name's shard (replica.OpCarry), at that shard's leader (CarryPath
//     when another process leads it), as client
//     "chute.fwd/<shard>/<outbox>" numbered by the highest sequence
//     carried: that shard puts in only the messages above the last
//     number it applied for the outbox, so a retry after a failure or a
//     failover, even of a batch that grew, puts each in once;
//  3. once that is done, it cancels them in the outbox.
//
// A failure between 2 and 3 leaves messages in the outbox that the next
// attempt carries again, and the other shard skips. Messages leave the
// outbox only after they are in: none is lost. Sequences in a shard only
// grow, so a message that arrives in the outbox later has a higher
// number than any carried before, and a batch is always the outbox's
// oldest. A carry the other shard refuses (a redriven message whose
// queue is gone) is not remembered there: the messages wait in the
// outbox, to be carried if the queue is made again.

// CarryPath takes carried messages (POST, an encoded replica.Command of
// op OpCarry; the cluster's token) at ShardPath of the shard they go to:
// 204 once applied, 422 with the refusal, 421 naming the leader
// elsewhere.
const CarryPath = "/chute.cluster.v1/carry"

const (
	forwardEvery   = 100 * time.Millisecond // between two looks at the outboxes
	forwardBatch   = 256                    // messages per carry, at most
	forwardBytes   = 4 << 20                // bodies per carry, at most (one message at least)
	forwardTimeout = 10 * time.Second       // one pass, at most
	maxCarry       = 64 << 20               // a carry CarryHandler takes
)

// Forwarder carries what the outboxes of the shards this process leads
// hold to their names' shards (see above). It runs until Close.
type Forwarder struct {
	nodes  []*Node // nodes[k]: shard k's
	cancel context.CancelFunc
	done   chan struct{}

	// A hold (a backup of several shards, below): mu is taken by each
	// pass, so that a hold begins once the pass under way has ended.
	mu      sync.Mutex
	holdID  string
	until   time.Time    // by nodes[0]'s clock
	skipped atomic.Int64 // passes not made under a hold
}

// StartForwarder starts the forwarder of a process's nodes (nodes[k] of
// shard k), timed by the first node's clock.
func StartForwarder(nodes []*Node) *Forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Forwarder{nodes: nodes, cancel: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f
}

// Close stops the forwarder; a carry in progress is abandoned (the next
// leader carries it again).
func (f *Forwarder) Close() error {
	f.cancel()
	<-f.done
	return nil
}

func (f *Forwarder) run(ctx context.Context) {
	defer close(f.done)
	clock := f.nodes[0].cfg.Clock
	for {
		t := clock.NewTimer(forwardEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		f.mu.Lock()
		if f.holdID != "" && clock.Now().Before(f.until) {
			f.skipped.Add(1)
		} else {
			pctx, cancel := context.WithTimeout(ctx, forwardTimeout)
			f.pass(pctx)
			cancel()
		}
		f.mu.Unlock()
	}
}

// outbox is one outbox's next batch.
type outbox struct {
	name    string
	to      uint32 // the shard the directory places its name in
	letters []replica.Delivery
}

// pass carries one batch of every outbox of the shards this node leads.
func (f *Forwarder) pass(ctx context.Context) {
	dir := f.nodes[0]
	for k, n := range f.nodes {
		if !n.Status().IsLeader {
			n.outboxed.Store(0)
			continue
		}
		var boxes []outbox
		var waiting int64
		err := n.ReadLocal(ctx, func(sh *replica.Shard) {
			sh.ReadyQueues(func(name string) {
				if to, ok := dir.Placement(name); ok && to != uint32(k) && int(to) < len(f.nodes) {
					boxes = append(boxes, outbox{name: name, to: to})
				}
			})
			for i := range boxes {
				ready, _, _, _ := sh.Counts(boxes[i].name)
				waiting += ready
				boxes[i].letters, _ = sh.Oldest(boxes[i].name, forwardBatch)
			}
		})
		if err != nil {
			return
		}
		n.outboxed.Store(waiting)
		for _, b := range boxes {
			carried, err := f.carry(ctx, uint32(k), b)
			n.carried.Add(int64(carried))
			if err != nil {
				n.carryFailures.Add(1)
				n.cfg.Logger.Debug("carrying an outbox", "outbox", b.name, "shard", k, "to", b.to, "err", err)
			}
		}
	}
}

// carry puts b's messages into its name's shard, then cancels them in
// the outbox of shard from, and returns how many it carried.
func (f *Forwarder) carry(ctx context.Context, from uint32, b outbox) (int, error) {
	cmd := replica.Command{Op: replica.OpCarry, Queue: b.name, Client: carryClient(from, b.name)}
	var refs []chute.MessageRef
	size := 0
	for _, d := range b.letters {
		if size += len(d.Body); size > forwardBytes && len(cmd.Carry) > 0 {
			break
		}
		m := replica.CarryMsg{Seq: d.Seq, Msg: replica.Msg{Prio: d.Prio, ID: d.ID, Key: d.Key, Headers: d.Headers, Body: d.Body, Zstd: d.Zstd},
			CarryIn: engine.CarryIn{Pub: d.Pub, Redriven: d.Dead == nil}}
		if d.Dead != nil {
			m.Info = *d.Dead
		}
		cmd.Carry = append(cmd.Carry, m)
		refs = append(refs, chute.MessageRef{Seq: d.Seq})
		cmd.ClientSeq = d.Seq
	}
	if len(refs) == 0 {
		return 0, nil
	}
	if err := f.nodes[b.to].Carry(ctx, cmd); err != nil {
		return 0, err
	}
	res, err := f.nodes[from].Do(ctx, replica.Command{Op: replica.OpCancel, Queue: b.name, Refs: refs})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return len(refs), fmt.Errorf("carried, not yet cancelled in the outbox (the next carry skips them): %w", err)
	}
	return len(refs), nil
}

// carryClient names an outbox as the client of its carries.
func carryClient(shard uint32, outbox string) string {
	return "chute.fwd/" + strconv.FormatUint(uint64(shard), 10) + "/" + outbox
}

// Carry proposes cmd (an OpCarry) at this node's shard's leader: here
// when this node leads, else at the leader (CarryPath). nil once it is
// applied, or was before.
func (n *Node) Carry(ctx context.Context, cmd replica.Command) error {
	return n.relay(ctx, cmd, ShardPath(CarryPath, n.cfg.Shard), cmd.Encode(nil), func(status int, msg []byte) error {
		return fmt.Errorf("cluster: carrying messages to shard %d: %s: %s", n.cfg.Shard, http.StatusText(status), bytes.TrimSpace(msg))
	})
}

// CarryHandler takes carried messages at ShardPath(CarryPath, its
// shard).
func (n *Node) CarryHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.admit(w, r, http.MethodPost) {
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxCarry+1))
		var cmd *replica.Command
		if err == nil && len(b) > maxCarry {
			err = fmt.Errorf("over %d bytes", maxCarry)
		}
		if err == nil {
			cmd, err = replica.Decode(b)
		}
		if err == nil && cmd.Op != replica.OpCarry {
			err = fmt.Errorf("op %v", cmd.Op)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("carried messages: %v", err), http.StatusBadRequest)
			return
		}
		res, err := n.Do(r.Context(), *cmd)
		if err == nil {
			err = res.Err
		}
		answerRelayed(w, err, func(w http.ResponseWriter, err error) {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		})
	})
}

// Holding the forwarders during a backup of several shards.
//
// A backup takes each shard's snapshot from its leader, one after
// another, not at one instant. A message the forwarder carried between
// two of them (put into its shard, then cancelled in the outbox) could
// be in neither: cancelled in the source's snapshot, taken after, and
// not yet in the other's, taken before. So `chute cluster backup` first
// holds the forwarder of every member (a hold of its own ID, for a
// while, renewed before each shard), takes the snapshots, checks that
// every hold lasted throughout, and releases them. A hold begins once
// the pass under way has ended: a carry and its outbox's cancel were
// both applied before it, or the cancel was not proposed (the messages
// are still in the outbox, and the other shard skips them when they are
// carried again after a restore). A process restarted meanwhile has
// lost its hold, and the check fails the backup. Nothing is lost by a
// hold: dead letters wait in their outboxes until it ends.

// ForwardHoldPath holds and releases a process's forwarder (the
// cluster's token): POST {"id", "seconds"} holds it for that long (again:
// renews it), answering {"held": true} if a hold of that ID was already
// in force (false: a new hold, or one that lapsed), 409 while another ID
// holds it; GET ?id= answers {"held"}; DELETE ?id= releases it.
const ForwardHoldPath = "/chute.cluster.v1/forward-hold"

// maxHold bounds one hold.
const maxHold = time.Hour

// ForwardHold is ForwardHoldPath's request.
type ForwardHold struct {
	ID      string `json:"id"`
	Seconds int    `json:"seconds"`
}

// ErrHeld is a hold refused while another one is in force.
var ErrHeld = errors.New("cluster: the forwarder is held by another backup")

// Hold holds the forwarder for d under id (or renews id's hold), once
// the pass under way has ended. It reports whether id's hold was in
// force already; ErrHeld while another id's is.
func (f *Forwarder) Hold(id string, d time.Duration) (continued bool, err error) {
	if id == "" || d <= 0 || d > maxHold {
		return false, fmt.Errorf("cluster: a hold needs an ID and a duration up to %v", maxHold)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.nodes[0].cfg.Clock.Now()
	inForce := f.holdID != "" && now.Before(f.until)
	if inForce && f.holdID != id {
		return false, fmt.Errorf("%w until %s", ErrHeld, f.until.UTC().Format(time.RFC3339))
	}
	f.holdID, f.until = id, now.Add(d)
	f.shown(f.until.UnixNano())
	return inForce, nil
}

// shown sets what each node's Info says of the hold (0: none).
func (f *Forwarder) shown(until int64) {
	for _, n := range f.nodes {
		n.heldUntil.Store(until)
	}
}

// Held reports whether id's hold is in force.
func (f *Forwarder) Held(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return id != "" && f.holdID == id && f.nodes[0].cfg.Clock.Now().Before(f.until)
}

// Release ends id's hold (nothing if another's is in force).
func (f *Forwarder) Release(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holdID == id {
		f.holdID = ""
		f.shown(0)
	}
}

// HoldHandler serves ForwardHoldPath.
func (f *Forwarder) HoldHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.nodes[0].authorized(w, r) {
			return
		}
		var held bool
		switch r.Method {
		case http.MethodPost:
			var req ForwardHold
			if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
				http.Error(w, fmt.Sprintf("a hold: %v", err), http.StatusBadRequest)
				return
			}
			var err error
			switch held, err = f.Hold(req.ID, time.Duration(req.Seconds)*time.Second); {
			case errors.Is(err, ErrHeld):
				http.Error(w, err.Error(), http.StatusConflict)
				return
			case err != nil:
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		case http.MethodGet:
			held = f.Held(r.URL.Query().Get("id"))
		case http.MethodDelete:
			f.Release(r.URL.Query().Get("id"))
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			http.Error(w, "POST, GET or DELETE", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Held bool `json:"held"`
		}{held})
	})
}
