package replica

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/chutemq/chute"
	"github.com/chutemq/chute/internal/consensus"
	"github.com/chutemq/chute/internal/engine"
)

func genCommand(t *rapid.T) *Command {
	c := &Command{Op: Op(rapid.IntRange(1, int(opEnd)-1).Draw(t, "op")),
		Node: rapid.Uint64().Draw(t, "node"), ID: rapid.Uint64().Draw(t, "id"),
		Time: rapid.Int64().Draw(t, "time"), Queue: rapid.String().Draw(t, "queue"),
		Client: rapid.String().Draw(t, "client"), ClientSeq: rapid.Uint64().Draw(t, "cseq")}
	v2 := c.Op >= OpUpdateQueue || rapid.Bool().Draw(t, "v2") // the fields only version 2 carries
	headers := rapid.MapOfN(rapid.String(), rapid.String(), 0, 3)
	config := func() {
		if !v2 {
			c.Visibility = time.Duration(rapid.Int64().Draw(t, "vis"))
			c.MaxDeliveries = rapid.Int().Draw(t, "maxd")
			return
		}
		c.Config = &chute.QueueConfig{VisibilityTimeout: time.Duration(rapid.Int64().Draw(t, "vis")),
			MaxDeliveries: rapid.Int().Draw(t, "maxd"), DeadLetterQueue: rapid.String().Draw(t, "dlq"),
			MessageTTL: time.Duration(rapid.Int64().Draw(t, "ttl")), MaxMessages: rapid.Int64().Draw(t, "maxm"),
			Backoff:    chute.Backoff{Kind: chute.BackoffExponential, Delay: time.Duration(rapid.Int64().Draw(t, "bo")), Jitter: rapid.Float64().Draw(t, "jitter")},
			Attributes: headers.Draw(t, "attrs"), Compression: chute.CompressionNone, CompressMin: chute.DefaultCompressMin}
		if len(c.Config.Attributes) == 0 {
			c.Config.Attributes = nil
		}
	}
	switch c.Op {
	case OpCreateQueue, OpUpdateQueue:
		config()
	case OpCreateTopic:
		if v2 {
			c.Topic = &chute.TopicConfig{DedupWindow: time.Duration(rapid.Int64Min(1).Draw(t, "dedup")), Group: rapid.String().Draw(t, "group")}
		}
	case OpPublish:
		c.Session, c.SessionSeq = rapid.String().Draw(t, "session"), rapid.Uint64().Draw(t, "sseq")
		c.Msgs = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Msg {
			m := Msg{Prio: rapid.Uint8().Draw(t, "prio"), Delay: time.Duration(rapid.Int64().Draw(t, "delay")),
				ID: rapid.String().Draw(t, "mid"), Body: rapid.SliceOf(rapid.Byte()).Draw(t, "body")}
			if v2 {
				m.Key, m.Headers, m.TTL = rapid.String().Draw(t, "key"), headers.Draw(t, "headers"), time.Duration(rapid.Int64().Draw(t, "ttl"))
				m.Zstd = rapid.Bool().Draw(t, "zstd")
			}
			return m
		}), 0, 5).Draw(t, "msgs")
	case OpSubscribe:
		c.Sub = rapid.String().Draw(t, "sub")
		config()
		if v2 {
			c.Filter = headers.Draw(t, "filter")
		}
	case OpCancel, OpRedriveMsgs:
		c.Refs = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) chute.MessageRef {
			return chute.MessageRef{Seq: rapid.Uint64().Draw(t, "seq"), ID: rapid.String().Draw(t, "id")}
		}), 0, 5).Draw(t, "refs")
		if c.Op == OpRedriveMsgs {
			c.Outboxes = rapid.SliceOfN(rapid.String(), 0, 3).Draw(t, "outboxes")
		}
	case OpClusterVersion, OpSetBreaker:
		c.Max = rapid.Int().Draw(t, "max")
	case OpCreateSchedule:
		c.Sched = &engine.ScheduleDef{Target: rapid.String().Draw(t, "target"), Prio: rapid.Uint8().Draw(t, "prio"),
			Key: rapid.String().Draw(t, "key"), Body: rapid.SliceOfN(rapid.Byte(), 1, 10).Draw(t, "body")}
		c.Sched.Spec.Cron = rapid.String().Draw(t, "cron")
		c.Sched.Spec.Every = time.Duration(rapid.Int64().Draw(t, "every"))
	case OpFire:
		c.SessionSeq = rapid.Uint64().Draw(t, "slot")
	case OpCarry:
		c.Carry = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) CarryMsg {
			return CarryMsg{Seq: rapid.Uint64().Draw(t, "seq"),
				Msg: Msg{Prio: rapid.Uint8().Draw(t, "prio"), ID: rapid.String().Draw(t, "mid"), Key: rapid.String().Draw(t, "key"),
					Headers: headers.Draw(t, "headers"), Body: rapid.SliceOf(rapid.Byte()).Draw(t, "body"), Zstd: rapid.Bool().Draw(t, "zstd")},
				CarryIn: engine.CarryIn{Pub: rapid.Int64().Draw(t, "pub"), Redriven: rapid.Bool().Draw(t, "redriven"),
					Info: engine.DeadInfo{Source: rapid.String().Draw(t, "source"), Reason: engine.Reason(rapid.Uint8().Draw(t, "reason")),
						Deliveries: rapid.IntRange(0, 1<<31-1).Draw(t, "deliveries"), LastError: rapid.String().Draw(t, "err"),
						At: rapid.Int64().Draw(t, "at"), OrigSeq: rapid.Uint64().Draw(t, "oseq"), Key: rapid.String().Draw(t, "dkey")}}}
		}), 0, 3).Draw(t, "dead")
	case OpTx:
		c.TxID = rapid.String().Draw(t, "txid")
		c.TxPubs = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) TxPub {
			return TxPub{Target: rapid.String().Draw(t, "target"), Session: rapid.String().Draw(t, "session"),
				SessionSeq: rapid.Uint64().Draw(t, "sseq"), Msgs: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Msg {
					return Msg{Prio: rapid.Uint8().Draw(t, "prio"), ID: rapid.String().Draw(t, "mid"), Key: rapid.String().Draw(t, "key"),
						Headers: headers.Draw(t, "headers"), TTL: time.Duration(rapid.Int64().Draw(t, "ttl")), Body: rapid.SliceOf(rapid.Byte()).Draw(t, "body")}
				}), 0, 3).Draw(t, "msgs")}
		}), 0, 3).Draw(t, "pubs")
		c.TxSettles = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) TxSettle {
			st := TxSettle{Queue: rapid.String().Draw(t, "queue"),
				Type: rapid.SampledFrom([]engine.RecordType{engine.RecAck, engine.RecNack, engine.RecReturn}).Draw(t, "type")}
			for range rapid.IntRange(0, 3).Draw(t, "n") {
				st.Items = append(st.Items, engine.Item{Seq: rapid.Uint64().Draw(t, "seq"), Deliv: rapid.Uint16().Draw(t, "deliv"),
					Value: rapid.Int64().Draw(t, "value"), Err: rapid.String().Draw(t, "err")})
				st.QueueIDs = append(st.QueueIDs, rapid.Uint32().Draw(t, "qid"))
			}
			return st
		}), 0, 3).Draw(t, "settles")
	case OpUnsubscribe:
		c.Sub = rapid.String().Draw(t, "sub")
	case OpUnplace:
		c.Lease = time.Duration(rapid.Int64().Draw(t, "minage"))
	case OpReceive:
		c.Max, c.Lease = rapid.Int().Draw(t, "max"), time.Duration(rapid.Int64().Draw(t, "lease"))
	case OpRedrive:
		c.Max = rapid.Int().Draw(t, "max")
		c.Outboxes = rapid.SliceOfN(rapid.String(), 0, 3).Draw(t, "outboxes")
	case OpAck, OpNack, OpExtend:
		if c.Op == OpExtend {
			c.Lease = time.Duration(rapid.Int64().Draw(t, "lease"))
		}
		c.QueueID = rapid.Uint32().Draw(t, "qid")
		c.Items = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) engine.Item {
			it := engine.Item{Seq: rapid.Uint64().Draw(t, "seq"), Deliv: rapid.Uint16().Draw(t, "deliv"), Value: rapid.Int64().Draw(t, "value")}
			if v2 {
				it.Err = rapid.String().Draw(t, "err")
			}
			return it
		}), 0, 5).Draw(t, "items")
		if v2 && len(c.Items) > 0 && rapid.Bool().Draw(t, "unstarted") {
			c.Unstarted = make([]bool, len(c.Items))
			c.Unstarted[0] = true
		}
	}
	return c
}

// TestCommandRoundTrip: Decode gives back what Encode wrote, and refuses
// every strict prefix of it.
func TestCommandRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCommand(t)
		b := c.Encode(nil)
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		norm := func(c *Command) {
			c.v = 0
			for i := range c.Msgs {
				if len(c.Msgs[i].Body) == 0 {
					c.Msgs[i].Body = nil
				}
				if len(c.Msgs[i].Headers) == 0 {
					c.Msgs[i].Headers = nil
				}
			}
			if len(c.Filter) == 0 {
				c.Filter = nil
			}
			if len(c.Refs) == 0 {
				c.Refs = nil
			}
			if len(c.TxPubs) == 0 {
				c.TxPubs = nil
			}
			if len(c.TxSettles) == 0 {
				c.TxSettles = nil
			}
			for i := range c.TxPubs {
				p := &c.TxPubs[i]
				if len(p.Msgs) == 0 {
					p.Msgs = nil
				}
				for j := range p.Msgs {
					if len(p.Msgs[j].Body) == 0 {
						p.Msgs[j].Body = nil
					}
					if len(p.Msgs[j].Headers) == 0 {
						p.Msgs[j].Headers = nil
					}
				}
			}
			for i := range c.TxSettles {
				if len(c.TxSettles[i].Items) == 0 {
					c.TxSettles[i].Items, c.TxSettles[i].QueueIDs = nil, nil
				}
			}
			if len(c.Msgs) == 0 {
				c.Msgs = nil
			}
			if len(c.Carry) == 0 {
				c.Carry = nil
			}
			if len(c.Outboxes) == 0 {
				c.Outboxes = nil
			}
			for i := range c.Carry {
				if m := &c.Carry[i].Msg; len(m.Body) == 0 {
					m.Body = nil
				}
				if m := &c.Carry[i].Msg; len(m.Headers) == 0 {
					m.Headers = nil
				}
			}
			if len(c.Items) == 0 {
				c.Items = nil
			}
		}
		norm(c)
		norm(got)
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("decoded %+v, encoded %+v", got, c)
		}
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := Decode(b[:cut]); !errors.Is(err, ErrBadCommand) {
			t.Fatalf("a prefix of %d of %d bytes: %v", cut, len(b), err)
		}
		// Written in the lowest version that carries it; a binary of
		// version 1 reads what version 1 can say, and refuses the rest.
		if b[0] != c.Version() {
			t.Fatalf("written as version %d, Version says %d", b[0], c.Version())
		}
		if _, err := decodeUpTo(b, 1); (err == nil) != (c.Version() == 1) {
			t.Fatalf("a version %d command read by a version 1 binary: %v", c.Version(), err)
		}
	})
}

// TestCommandVersion1: commands version 1 can carry are written in it,
// byte for byte as a version 1 binary wrote them (testdata/v1-commands,
// from d54aff4), and read back the same.
func TestCommandVersion1(t *testing.T) {
	b, err := os.ReadFile("testdata/v1-commands")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(b))
	if len(lines) < 8 {
		t.Fatalf("%d commands in the file", len(lines))
	}
	for _, line := range lines {
		old, err := hex.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		c, err := decodeUpTo(old, 1)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := c.Encode(nil); !bytes.Equal(got, old) {
			t.Errorf("%v: written again as %x, version 1 wrote %s", c.Op, got, line)
		}
	}
	// One field of version 2 makes it version 2, which version 1 refuses.
	c := Command{Op: OpPublish, Queue: "q", Msgs: []Msg{{Body: []byte("x"), Key: "k"}}}
	if _, err := decodeUpTo(c.Encode(nil), 1); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("a keyed publish read by version 1: %v", err)
	}
}

// TestDecodeAnyBytes: arbitrary bytes decode or are refused, never panic.
func TestDecodeAnyBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOf(rapid.Byte()).Draw(t, "b")
		if c, err := Decode(b); err == nil && c == nil {
			t.Fatal("no command and no error")
		} else if err != nil && !errors.Is(err, ErrBadCommand) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

// entries encodes commands as the consecutive log entries from 1.
func entries(cmds ...Command) []consensus.Entry {
	es := make([]consensus.Entry, len(cmds))
	for i := range cmds {
		es[i] = consensus.Entry{Index: uint64(i + 1), Term: 1, Data: cmds[i].Encode(nil)}
	}
	return es
}

// TestShard: publish, receive, ack through commands; two shards applying
// the same log agree on every result and on the state hash; a refusal is
// a result, not a failure.
func TestShard(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	log := entries(
		Command{Op: OpCreateQueue, Queue: "q", Time: t0, Visibility: time.Second, MaxDeliveries: 2},
		Command{Op: OpPublish, Queue: "q", Time: t0 + 1, Session: "p", SessionSeq: 1,
			Msgs: []Msg{{ID: "a", Body: []byte("A")}, {ID: "b", Body: []byte("B"), Prio: 9}}},
		Command{Op: OpPublish, Queue: "q", Time: t0 + 2, Session: "p", SessionSeq: 1, // a retry
			Msgs: []Msg{{ID: "a", Body: []byte("A")}, {ID: "b", Body: []byte("B"), Prio: 9}}},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 3, Max: 10, Lease: time.Second},
		Command{Op: OpAck, Queue: "q", Time: t0 + 4, Items: []engine.Item{{Seq: 2, Deliv: 1}, {Seq: 1, Deliv: 7}}},
		// A leader whose clock is behind: the engine's time does not go back.
		Command{Op: OpReceive, Queue: "q", Time: t0 - 1e9, Max: 10},
		Command{Op: OpReceive, Queue: "nope", Time: t0 + 5, Max: 1},
	)
	a, b := NewShard(), NewShard()
	var res []Result
	for _, e := range log {
		ra, err := a.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("index %d: %+v and %+v", e.Index, ra, rb)
		}
		res = append(res, ra)
	}
	if a.Hash() != b.Hash() || a.Applied() != uint64(len(log)) {
		t.Fatal("two shards that applied one log differ")
	}
	if p := res[1].Published; len(p) != 2 || p[0].Seq != 1 || p[1].Seq != 2 || p[0].Duplicate {
		t.Fatalf("publish: %+v", p)
	}
	if p := res[2].Published; len(p) != 2 || !p[0].Duplicate || !p[1].Duplicate || p[1].Seq != 2 {
		t.Fatalf("retried publish: %+v", p)
	}
	d := res[3].Delivered
	if len(d) != 2 || d[0].ID != "b" || string(d[0].Body) != "B" || d[1].ID != "a" || d[0].Deadline != t0+3+int64(time.Second) {
		t.Fatalf("receive (priority 9 first): %+v", d)
	}
	if f := res[4].Failed; len(f) != 2 || f[0] != nil || !errors.Is(f[1], engine.ErrStaleReceipt) {
		t.Fatalf("ack: %v", f)
	}
	if res[5].Time != t0+4 || len(res[5].Delivered) != 0 {
		t.Fatalf("receive with a clock behind: time %d (want %d), %+v", res[5].Time, t0+4, res[5].Delivered)
	}
	if !errors.Is(res[6].Err, engine.ErrQueueNotFound) {
		t.Fatalf("receive from an unknown queue: %v", res[6].Err)
	}

	// A shard that differs by one command hashes differently.
	c := NewShard()
	for _, e := range log[:4] {
		if _, err := c.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if c.Hash() == a.Hash() {
		t.Fatal("different states, one hash")
	}
	// Out of order, or damaged: an error, the shard stops.
	if _, err := c.Apply(log[5]); err == nil {
		t.Fatal("entry 6 applied after 4")
	}
	if _, err := NewShard().Apply(consensus.Entry{Index: 1, Data: []byte{9, 9}}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("garbage entry: %v", err)
	}
}

// TestShardSnapshot: a shard restored from a snapshot has the same state
// (hash) and goes on applying the log as the original does.
func TestShardSnapshot(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	var cmds []Command
	cmds = append(cmds, Command{Op: OpCreateQueue, Queue: "q", Time: t0, Visibility: time.Second, MaxDeliveries: 3})
	for i := range 20 {
		cmds = append(cmds, Command{Op: OpPublish, Queue: "q", Time: t0 + int64(i), Msgs: []Msg{{ID: fmt.Sprint(i), Body: []byte(fmt.Sprint("body", i)), Prio: uint8(i % 10)}}})
	}
	cmds = append(cmds, Command{Op: OpReceive, Queue: "q", Time: t0 + 100, Max: 5, Lease: time.Second})
	tx := Command{Op: OpTx, Time: t0 + 220, TxID: "t1",
		TxPubs:    []TxPub{{Target: "q", Msgs: []Msg{{ID: "tx", Key: "k", Headers: map[string]string{"h": "v"}, Body: []byte("tx")}}}},
		TxSettles: []TxSettle{{Queue: "q", Type: engine.RecAck, Items: []engine.Item{{Seq: 9, Deliv: 1}}, QueueIDs: []uint32{1}}}}
	cmds = append(cmds,
		Command{Op: OpAck, Queue: "q", Time: t0 + 200, Items: []engine.Item{{Seq: 10, Deliv: 1}, {Seq: 20, Deliv: 1}}},
		// Version 2: a transaction, acking one and publishing one, then
		// its retry (the first result, nothing applied again).
		Command{Op: OpClusterVersion, Time: t0 + 210, Max: 2},
		tx, tx,
		Command{Op: OpReceive, Queue: "q", Time: t0 + 300, Max: 30, Lease: time.Second},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 5e9, Max: 30, Lease: time.Second}) // after the leases ran out
	log := entries(cmds...)
	whole := NewShard()
	var txRes []Result
	for _, e := range log {
		r, err := whole.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		if r.Cmd.Op == OpTx {
			txRes = append(txRes, r)
		}
	}
	if len(txRes) != 2 || txRes[0].Err != nil || len(txRes[0].TxPublished) != 1 || txRes[0].TxPublished[0][0].Seq != 21 ||
		!reflect.DeepEqual(txRes[1].TxPublished, txRes[0].TxPublished) || txRes[1].Err != nil {
		t.Fatalf("the transaction and its retry: %+v", txRes)
	}
	if st, _ := whole.QueueStats("q"); st.Totals.Acked != 3 {
		t.Fatalf("acked %d, want 3 (two, then one in the transaction, once)", st.Totals.Acked)
	}
	for cut := 1; cut < len(log); cut++ {
		a := NewShard()
		for _, e := range log[:cut] {
			if _, err := a.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		b, err := RestoreShard(a.Snapshot())
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if b.Hash() != a.Hash() || b.Applied() != a.Applied() {
			t.Fatalf("cut %d: the restored shard differs", cut)
		}
		for _, e := range log[cut:] {
			ra, err := a.Apply(e)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := b.Apply(e)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ra, rb) {
				t.Fatalf("cut %d, index %d: %+v after a restore, %+v without", cut, e.Index, rb, ra)
			}
		}
		if a.Hash() != b.Hash() {
			t.Fatalf("cut %d: states differ at the end", cut)
		}
	}
	if _, err := RestoreShard([]byte{1, 2, 3}); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("garbage snapshot: %v", err)
	}
}

// TestExactlyOnce: a command numbered at or below its client's last is
// not applied again and answers as the first did, also after a restore
// from a snapshot.
func TestExactlyOnce(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	create := Command{Op: OpCreateQueue, Queue: "x", Time: t0, Client: "a", ClientSeq: 1}
	del := Command{Op: OpDeleteQueue, Queue: "x", Time: t0 + 1, Client: "a", ClientSeq: 2}
	again := Command{Op: OpCreateQueue, Queue: "x", Time: t0 + 2, Client: "b", ClientSeq: 1} // b's first: creates
	log := entries(create, create, del, again, del)
	s := NewShard()
	var res []Result
	for i, e := range log {
		if i == 3 { // restart from a snapshot in the middle
			var err error
			if s, err = RestoreShard(s.Snapshot()); err != nil {
				t.Fatal(err)
			}
		}
		r, err := s.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("create, then its retry: %v, %v (the retry answers as the first)", res[0].Err, res[1].Err)
	}
	if res[2].Err != nil || res[3].Err != nil {
		t.Fatalf("delete, then b's create: %v, %v", res[2].Err, res[3].Err)
	}
	// a's delete retried after b created x again: not applied twice.
	if res[4].Err != nil {
		t.Fatalf("the retried delete: %v", res[4].Err)
	}
	if _, err := s.eng.QueueStats("x"); err != nil {
		t.Fatalf("x was deleted by a retry: %v", err)
	}
	// A remembered refusal keeps its kind through a snapshot.
	s2 := NewShard()
	for _, e := range entries(Command{Op: OpDeleteQueue, Queue: "nope", Time: t0, Client: "c", ClientSeq: 1}) {
		s2.Apply(e)
	}
	s3, err := RestoreShard(s2.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	r, err := s3.Apply(consensus.Entry{Index: 2, Data: (&Command{Op: OpDeleteQueue, Queue: "nope", Time: t0, Client: "c", ClientSeq: 1}).Encode(nil)})
	if err != nil || !errors.Is(r.Err, engine.ErrQueueNotFound) {
		t.Fatalf("a remembered refusal after a restore: %v, %v", r.Err, err)
	}
}

// TestShardTopics: a topic fans a publish out to its subscriptions, each
// a queue of its own (with its own dead-letter queue); unsubscribing ends
// one; a restored snapshot and a replay agree; refusals are results.
func TestShardTopics(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	log := entries(
		Command{Op: OpCreateTopic, Queue: "t", Time: t0},
		Command{Op: OpSubscribe, Queue: "t", Sub: "s1", Time: t0 + 1, Visibility: time.Second, MaxDeliveries: 1},
		Command{Op: OpSubscribe, Queue: "t", Sub: "s2", Time: t0 + 2},
		Command{Op: OpPublish, Queue: "t", Time: t0 + 3, Msgs: []Msg{{ID: "a", Body: []byte("A")}}},
		Command{Op: OpReceive, Queue: "s1", Time: t0 + 4, Max: 10},
		Command{Op: OpReceive, Queue: "s2", Time: t0 + 5, Max: 10},
		Command{Op: OpUnsubscribe, Queue: "t", Sub: "s2", Time: t0 + 6},
		Command{Op: OpPublish, Queue: "t", Time: t0 + 7, Msgs: []Msg{{ID: "b", Body: []byte("B")}}},
		Command{Op: OpReceive, Queue: "s2", Time: t0 + 8, Max: 10},
		Command{Op: OpSubscribe, Queue: "nope", Sub: "s3", Time: t0 + 9},
		Command{Op: OpCreateTopic, Queue: "t", Time: t0 + 10},
		Command{Op: OpReceive, Queue: "s1", Time: t0 + 3e9, Max: 10}, // s1's lease of a ran out: max deliveries 1, dead
		Command{Op: OpReceive, Queue: "s1.dlq", Time: t0 + 3e9 + 1, Max: 10},
		Command{Op: OpDeleteTopic, Queue: "t", Time: t0 + 3e9 + 2},
	)
	a, res := applyRestoring(t, log)
	for i := range 3 {
		if res[i].Err != nil {
			t.Fatalf("entry %d: %v", i+1, res[i].Err)
		}
	}
	if d := res[4].Delivered; len(d) != 1 || string(d[0].Body) != "A" {
		t.Fatalf("s1 received %+v", d)
	}
	if d := res[5].Delivered; len(d) != 1 || d[0].ID != "a" {
		t.Fatalf("s2 received %+v", d)
	}
	if !errors.Is(res[8].Err, engine.ErrQueueNotFound) {
		t.Fatalf("receive from an unsubscribed subscription: %v %+v", res[8].Err, res[8].Delivered)
	}
	if !errors.Is(res[9].Err, engine.ErrTopicNotFound) || !errors.Is(res[10].Err, engine.ErrExists) {
		t.Fatalf("subscribe to no topic: %v; create twice: %v", res[9].Err, res[10].Err)
	}
	if d := res[11].Delivered; len(d) != 1 || d[0].ID != "b" {
		t.Fatalf("s1 after its lease of a ran out: %+v (a dead, b ready)", d)
	}
	if d := res[12].Delivered; len(d) != 1 || d[0].ID != "a" {
		t.Fatalf("s1.dlq: %+v", d)
	}
	if res[13].Err != nil || len(a.Topics()) != 0 {
		t.Fatalf("delete the topic: %v, %d topics left", res[13].Err, len(a.Topics()))
	}
}

// applyRestoring applies log to a new shard, checking after every entry
// that the shard's snapshot restores to the same state hash.
func applyRestoring(t *testing.T, log []consensus.Entry) (*Shard, []Result) {
	t.Helper()
	a := NewShard()
	var res []Result
	for i, e := range log {
		r, err := a.Apply(e)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
		b, err := RestoreShard(a.Snapshot())
		if err != nil || b.Hash() != a.Hash() {
			t.Fatalf("after entry %d: restored %v, hashes equal %v", i+1, err, err == nil && b.Hash() == a.Hash())
		}
	}
	return a, res
}

// TestShardDeadLetters: redrive, purge, pause and resume as commands; a
// redriven message keeps its body (its record is kept), through
// snapshots too.
func TestShardDeadLetters(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	log := entries(
		Command{Op: OpCreateQueue, Queue: "q", Time: t0, Visibility: time.Second, MaxDeliveries: 1},
		Command{Op: OpPublish, Queue: "q", Time: t0 + 1, Msgs: []Msg{{ID: "a", Body: []byte("A")}, {ID: "b", Body: []byte("B")}}},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 2, Max: 10},
		Command{Op: OpNack, Queue: "q", Time: t0 + 3, Items: []engine.Item{{Seq: 1, Deliv: 1, Value: -1}, {Seq: 2, Deliv: 1, Value: -1}}},
		Command{Op: OpRedrive, Queue: "q.dlq", Time: t0 + 4, Max: 1},
		Command{Op: OpPause, Queue: "q", Time: t0 + 5},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 6, Max: 10},
		Command{Op: OpResume, Queue: "q", Time: t0 + 7},
		Command{Op: OpReceive, Queue: "q", Time: t0 + 8, Max: 10},
		Command{Op: OpPurge, Queue: "q.dlq", Time: t0 + 9},
		Command{Op: OpRedrive, Queue: "nope", Time: t0 + 10},
	)
	_, res := applyRestoring(t, log)
	if res[4].Err != nil || res[4].Count != 1 {
		t.Fatalf("redrive: %v, %d", res[4].Err, res[4].Count)
	}
	if len(res[6].Delivered) != 0 {
		t.Fatalf("a paused queue delivered %+v", res[6].Delivered)
	}
	if d := res[8].Delivered; len(d) != 1 || d[0].ID != "a" || string(d[0].Body) != "A" {
		t.Fatalf("the redriven message: %+v", d)
	}
	if res[9].Err != nil || res[9].Count != 1 {
		t.Fatalf("purge: %v, %d", res[9].Err, res[9].Count)
	}
	if !errors.Is(res[10].Err, engine.ErrQueueNotFound) {
		t.Fatalf("redrive of no queue: %v", res[10].Err)
	}
}

// TestShardCarry: OpCarry puts dead letters carried
// from another shard's outbox in once each: a retry puts nothing in
// again, a retry whose batch grew meanwhile only the new ones; the
// letters keep their death and body through snapshots; a carry without
// its outbox is refused.
func TestShardCarry(t *testing.T) {
	const t0 = int64(1_800_000_000_000_000_000)
	dm := func(seq uint64, body string) CarryMsg {
		return CarryMsg{Seq: seq, Msg: Msg{Prio: 2, ID: "id-" + body, Key: "k", Body: []byte(body)}, CarryIn: engine.CarryIn{Pub: t0 - 5,
			Info: engine.DeadInfo{Source: "a", Reason: engine.ReasonMaxDeliveries, Deliveries: 3, LastError: "boom", At: t0 - 1, OrigSeq: seq, Key: "k"}}}
	}
	back := func(at int64, queue string, seq uint64) Command {
		m := dm(seq, "back")
		m.Redriven, m.Info = true, engine.DeadInfo{}
		return Command{Op: OpCarry, Queue: queue, Time: at, Client: "chute.fwd/2/" + queue, ClientSeq: seq, Carry: []CarryMsg{m}}
	}
	carry := func(at int64, dead ...CarryMsg) Command {
		return Command{Op: OpCarry, Queue: "shared", Time: at, Client: "chute.fwd/1/shared", ClientSeq: dead[len(dead)-1].Seq, Carry: dead}
	}
	log := entries(
		Command{Op: OpClusterVersion, Time: t0, Max: 4},
		carry(t0, dm(5, "x"), dm(9, "y")),
		carry(t0+1, dm(5, "x"), dm(9, "y")),              // a retry
		carry(t0+2, dm(5, "x"), dm(9, "y"), dm(12, "z")), // a retry that grew
		Command{Op: OpReceive, Queue: "shared", Time: t0 + 3, Max: 10},
		Command{Op: OpCarry, Queue: "shared", Time: t0 + 4, Carry: []CarryMsg{dm(20, "w")}},
		// A redriven message carried to a queue that is not here: refused,
		// and not remembered: carried again once the queue is made.
		back(t0+5, "b", 30),
		Command{Op: OpCreateQueue, Queue: "b", Time: t0 + 6},
		back(t0+7, "b", 30),
		// A redrive whose letters' source is in another shard: an outbox
		// of the source's name takes them.
		Command{Op: OpCarry, Queue: "dl2", Time: t0 + 8, Client: "chute.fwd/1/dl2", ClientSeq: 3, Carry: []CarryMsg{dm(3, "v")}},
		Command{Op: OpRedrive, Queue: "dl2", Time: t0 + 9, Outboxes: []string{"a"}},
	)
	a, res := applyRestoring(t, log)
	res = res[1:]
	for i, want := range []int64{2, 0, 1} {
		if res[i].Err != nil || res[i].Count != want {
			t.Fatalf("carry %d: %d in, %v; want %d", i+1, res[i].Count, res[i].Err, want)
		}
	}
	if p := res[2].Published; len(p) != 3 || !p[0].Duplicate || !p[1].Duplicate || p[2].Duplicate || p[2].Seq <= res[0].Published[1].Seq {
		t.Fatalf("the grown retry's results %+v (the first's %+v)", p, res[0].Published)
	}
	got := res[3].Delivered
	if len(got) != 3 {
		t.Fatalf("received %d, want 3: %+v", len(got), got)
	}
	for i, body := range []string{"x", "y", "z"} {
		d, want := got[i], dm([]uint64{5, 9, 12}[i], body)
		if string(d.Body) != body || d.ID != want.Msg.ID || d.Key != "k" || d.Prio != 2 || d.Pub != want.Pub || d.Dead == nil || *d.Dead != want.Info {
			t.Fatalf("delivery %d: %+v (death %+v), want %+v", i, d, d.Dead, want)
		}
	}
	if !errors.Is(res[4].Err, engine.ErrInvalidConfig) {
		t.Fatalf("a carry without its outbox: %v", res[4].Err)
	}
	if st, err := a.eng.QueueStats("shared"); err != nil || st.InFlight != 3 {
		t.Fatalf("shared: %+v, %v", st, err)
	}
	if !errors.Is(res[5].Err, engine.ErrQueueNotFound) || res[7].Err != nil || res[7].Count != 1 {
		t.Fatalf("redriven into no queue: %v; again once it is there: %d in, %v", res[5].Err, res[7].Count, res[7].Err)
	}
	if st, err := a.eng.QueueStats("b"); err != nil || st.Ready != 1 || st.Totals.Redriven != 1 {
		t.Fatalf("b: %+v, %v", st, err)
	}
	if res[9].Err != nil || res[9].Count != 1 {
		t.Fatalf("a redrive to an outbox: %d moved, %v", res[9].Count, res[9].Err)
	}
	if ready, _, _, ok := a.Counts("a"); !ok || ready != 1 {
		t.Fatalf("the outbox a: %d ready (there: %v)", ready, ok)
	}
}
