package sim

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/engine"
	"github.com/chutemq/chute/internal/replica"
)

// TestCheckerFlags feeds the checker hand-made histories, one defect
// each, and expects it named.
func TestCheckerFlags(t *testing.T) {
	pub := func(idx uint64, id string, seq uint64, dup bool) replica.Result {
		return replica.Result{Index: idx, Cmd: &replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{ID: id}}},
			Published: []engine.PubResult{{Seq: seq, Duplicate: dup}}}
	}
	recv := func(idx uint64, at int64, id string, seq uint64, deadline int64) replica.Result {
		return replica.Result{Index: idx, Time: at, Cmd: &replica.Command{Op: replica.OpReceive, Queue: "q"},
			Delivered: []replica.Delivery{{Seq: seq, Deliv: 1, Deadline: deadline, ID: id, Body: []byte(id)}}}
	}
	ack := func(idx uint64, seq uint64) replica.Result {
		return replica.Result{Index: idx, Cmd: &replica.Command{Op: replica.OpAck, Queue: "q", Items: []engine.Item{{Seq: seq}}}, Failed: []error{nil}}
	}
	for _, c := range []struct {
		name    string
		history []replica.Result
		want    string // "" for a clean history
	}{
		{"clean", []replica.Result{pub(1, "a", 1, false), recv(2, 10, "a", 1, 500), recv(3, 500, "a", 1, 900), ack(4, 1)}, ""},
		{"lease overlap", []replica.Result{pub(1, "a", 1, false), recv(2, 10, "a", 1, 500), recv(3, 499, "a", 1, 900)}, "while its lease ran to 500"},
		{"after ack", []replica.Result{pub(1, "a", 1, false), recv(2, 10, "a", 1, 500), ack(3, 1), recv(4, 600, "a", 1, 900)}, "delivered again after its ack"},
		{"extended lease overlap", []replica.Result{pub(1, "a", 1, false), recv(2, 10, "a", 1, 500),
			{Index: 3, Time: 400, Cmd: &replica.Command{Op: replica.OpExtend, Queue: "q", Lease: 500, Items: []engine.Item{{Seq: 1, Deliv: 1}}}, Failed: []error{nil}},
			recv(4, 600, "a", 1, 1100)}, "while its lease ran to 900"},
		{"stored twice", []replica.Result{pub(1, "a", 1, false), pub(2, "a", 2, false)}, "stored twice"},
		{"wrong body", []replica.Result{pub(1, "a", 1, false), func() replica.Result {
			r := recv(2, 10, "a", 1, 500)
			r.Delivered[0].Body = []byte("b")
			return r
		}()}, "with body"},
		{"never published", []replica.Result{recv(1, 10, "x", 7, 500)}, "never published"},
		{"headers lost", []replica.Result{func() replica.Result {
			r := pub(1, "a", 1, false)
			r.Cmd.Msgs[0].Headers = map[string]string{"producer": "p0"}
			return r
		}(), recv(2, 10, "a", 1, 500)}, "with headers"},
	} {
		w := &world{out: &Outcome{}, now: epoch0}
		w.chk = newChecker(w)
		rn, err := consensus.Bootstrap(consensus.Config{ID: 1, Peers: []uint64{1}})
		if err != nil {
			t.Fatal(err)
		}
		n := &node{w: w, id: 1, rn: rn}
		for _, r := range c.history {
			w.chk.applied(n, r)
		}
		got := strings.Join(w.out.Violations, "; ")
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: violations %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCheckerLost: a confirmed message never acked is reported at the end.
func TestCheckerLost(t *testing.T) {
	w := &world{out: &Outcome{}, now: epoch0}
	w.chk = newChecker(w)
	rn, _ := consensus.Bootstrap(consensus.Config{ID: 1, Peers: []uint64{1}})
	n := &node{w: w, id: 1, rn: rn}
	w.chk.applied(n, replica.Result{Index: 1, Cmd: &replica.Command{Op: replica.OpPublish, Queue: "q", Msgs: []replica.Msg{{ID: "a"}}},
		Published: []engine.PubResult{{Seq: 1}}})
	w.chk.confirm("a", engine.PubResult{Seq: 1})
	if w.chk.done() {
		t.Fatal("done with a confirmed message not acked")
	}
	w.chk.finish()
	if len(w.out.Violations) != 1 || !strings.Contains(w.out.Violations[0], "never acked") {
		t.Fatalf("violations %q", w.out.Violations)
	}
}

// TestLinearModels: porcupine with the two models accepts an ordered
// history and refuses one out of real-time order.
func TestLinearModels(t *testing.T) {
	pub := func(call, ret int64, seqs ...uint64) porcupine.Operation {
		var out []engine.PubResult
		for _, s := range seqs {
			out = append(out, engine.PubResult{Seq: s})
		}
		return porcupine.Operation{Call: call, Return: ret, Input: len(seqs), Output: out}
	}
	if !porcupine.CheckOperations(publishModel, []porcupine.Operation{pub(0, 10, 1, 2), pub(5, 30, 4), pub(20, 25, 3)}) {
		t.Error("concurrent publishes in either order refused")
	}
	if porcupine.CheckOperations(publishModel, []porcupine.Operation{pub(0, 10, 5), pub(20, 30, 3)}) {
		t.Error("a later publish with a smaller sequence accepted")
	}
	adm := func(call, ret int64, q int, create bool, err error) porcupine.Operation {
		return porcupine.Operation{Call: call, Return: ret, Input: adminInput{queue: q, create: create}, Output: adminOutput{err: err}}
	}
	if !porcupine.CheckOperations(adminModel, []porcupine.Operation{adm(0, 10, 0, true, nil), adm(5, 15, 0, true, engine.ErrExists),
		adm(20, 30, 0, false, nil), adm(25, 35, 1, false, engine.ErrQueueNotFound)}) {
		t.Error("a legal admin history refused")
	}
	if porcupine.CheckOperations(adminModel, []porcupine.Operation{adm(0, 10, 0, true, nil), adm(20, 30, 0, true, nil)}) {
		t.Error("two successful creates of one queue accepted")
	}
	place := func(call, ret int64, name, shard int, unplace bool, err error, in int) porcupine.Operation {
		return porcupine.Operation{Call: call, Return: ret, Input: placeInput{name: name, shard: shard, unplace: unplace},
			Output: placeOutput{err: err, in: in}}
	}
	exists := &replica.PlacedError{Name: "p0", Shard: 1}
	if !porcupine.CheckOperations(placeModel, []porcupine.Operation{place(0, 10, 0, 1, false, nil, 0), place(5, 15, 0, 2, false, exists, 1),
		place(20, 30, 0, 1, false, nil, 0), place(40, 50, 0, 0, true, nil, 0), place(60, 70, 0, 2, false, nil, 0), place(0, 70, 1, 2, false, nil, 0)}) {
		t.Error("a legal place history refused")
	}
	if porcupine.CheckOperations(placeModel, []porcupine.Operation{place(0, 10, 0, 1, false, nil, 0), place(20, 30, 0, 2, false, nil, 0)}) {
		t.Error("a name placed in two shards accepted")
	}
	if porcupine.CheckOperations(placeModel, []porcupine.Operation{place(0, 10, 0, 1, false, nil, 0), place(20, 30, 0, 0, true, nil, 0),
		place(40, 50, 0, 2, false, exists, 1)}) {
		t.Error("a refusal after the name was freed accepted")
	}
}
